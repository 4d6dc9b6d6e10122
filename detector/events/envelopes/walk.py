"""Opening a document's envelopes, nested up to a bound, into the documents to parse.

:class:`Opener` holds one instance of every registered envelope and an index from
trigger key to candidates, so recognising a plain vendor event costs one set
intersection. :meth:`Opener.open` walks nested envelopes (Splunk HEC → Logstash
``message`` → CloudTrail ``Records``) and returns, in order, the documents found
with their fallback time, the known non-events, and the envelopes that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import Any, NamedTuple

from detector.events.envelopes.base import ENVELOPES, Envelope, EnvelopeError, Reader, is_object
from detector.events.model import SkipReason

__all__ = ["MAX_LEVELS", "Failed", "Found", "Opener"]

MAX_LEVELS = 5
"""How many envelopes may nest; deeper is a ``bad_envelope`` (a hostile or looping wrapper)."""


class Found(NamedTuple):
    """A document to parse, with the closest shipper time known for it (or None)."""

    doc: Any
    fallback_time: Any = None


class Failed(NamedTuple):
    """An envelope that could not be opened: which one, why, and what it held."""

    envelope: str
    detail: str
    value: Any


Opened = Found | Failed | SkipReason
_MAX_CACHED = 1024


class Opener:
    """Recognises and opens the registered envelopes (or the ones given)."""

    def __init__(
        self, envelopes: Iterable[Envelope] | None = None, *, max_levels: int = MAX_LEVELS
    ) -> None:
        chosen = list(envelopes) if envelopes is not None else [e() for e in ENVELOPES.values()]
        ordered = sorted(chosen, key=lambda e: (e.priority, e.name))
        self.max_levels = max_levels
        self._ordered = tuple(ordered)
        self._triggers = frozenset().union(*(e.triggers for e in ordered))
        self._candidates: dict[str | frozenset[str], tuple[Envelope, ...]] = {
            key: self._candidates_for(frozenset({key})) for key in self._triggers
        }
        self._for_lists = tuple(e for e in ordered if e.for_lists)

    @property
    def triggers(self) -> frozenset[str]:
        """Every key some envelope's ``matches`` needs."""
        return self._triggers

    def recognise(self, doc: Any, keys: frozenset[str] | None = None) -> Envelope | None:
        """The envelope ``doc`` is, or None for a document to parse as it is.

        ``keys``: the keys of a ``dict`` ``doc`` among a set of keys that holds
        :attr:`triggers`, if the caller has them (the normalizer reads the envelopes'
        and the parsers' in one pass).
        """
        if keys is None:
            if type(doc) is not dict:
                if type(doc) is list:
                    return next((e for e in self._for_lists if e.matches(doc)), None)
                if not is_object(doc):
                    return None
            if self._triggers.isdisjoint(doc):
                return None
        elif keys.isdisjoint(self._triggers):
            return None
        hits = self._triggers.intersection(doc)
        key: str | frozenset[str] = next(iter(hits)) if len(hits) == 1 else frozenset(hits)
        candidates = self._candidates.get(key)
        if candidates is None:
            candidates = self._candidates_for(hits)
            if len(self._candidates) < _MAX_CACHED:  # hostile key mixes must not grow it
                self._candidates[key] = candidates
        for envelope in candidates:
            if envelope.matches(doc):
                return envelope
        return None

    def _candidates_for(self, hits: Set[str]) -> tuple[Envelope, ...]:
        return tuple(e for e in self._ordered if not e.triggers.isdisjoint(hits))

    def open(self, doc: Any, reader: Reader) -> list[Opened]:
        """Everything inside ``doc``, in order; ``[Found(doc)]`` when it is no envelope.

        Inner JSON texts are decoded with ``reader`` (the normalizer's size and depth limits).
        """
        envelope = self.recognise(doc)
        if envelope is None:  # most records: no envelope, found with one set test
            return [Found(doc)]
        return self.open_as(envelope, doc, reader)

    def open_as(self, envelope: Envelope, doc: Any, reader: Reader) -> list[Opened]:
        """Everything inside ``doc``, which :meth:`recognise` found to be ``envelope``."""
        out: list[Opened] = []
        self._open_one(envelope, doc, None, 0, reader, out)
        return out

    def _walk(self, doc: Any, fallback: Any, level: int, reader: Reader, out: list[Opened]) -> None:
        envelope = self.recognise(doc)
        if envelope is None:
            out.append(Found(doc, fallback))
        else:
            self._open_one(envelope, doc, fallback, level, reader, out)

    def _open_one(
        self,
        envelope: Envelope,
        doc: Any,
        fallback: Any,
        level: int,
        reader: Reader,
        out: list[Opened],
    ) -> None:
        if level >= self.max_levels:
            detail = f"envelopes nested deeper than {self.max_levels} levels"
            out.append(Failed(envelope.name, detail, doc))
            return
        try:
            opening = envelope.open(doc, reader)
        except EnvelopeError as exc:
            out.append(Failed(envelope.name, str(exc), doc))
            return
        if opening is None:
            out.append(Found(doc, fallback))
            return
        if isinstance(opening, SkipReason):
            out.append(opening)
            return
        if not opening:
            out.append(SkipReason.EMPTY_BATCH)
            return
        for inner in opening:
            value = inner.value
            if type(value) is str or type(value) is bytes:
                try:
                    value = reader.decode(value)
                except ValueError as exc:
                    out.append(Failed(envelope.name, f"inner payload is not JSON: {exc}", value))
                    continue
            time = fallback if inner.fallback_time is None else inner.fallback_time
            nested = self.recognise(value)
            if nested is not None:
                self._open_one(nested, value, time, level + 1, reader, out)
            elif type(value) is list:
                for item in value:  # a JSON array inside an envelope is a batch of items
                    self._walk(item, time, level + 1, reader, out)
            else:
                out.append(Found(value, time))
