"""Auto-detection: which parser a record is for, asking only the parsers it could be for.

Every record would otherwise ask every parser's :meth:`~Parser.matches` in
priority order (a GitHub record asked nine before its own). A parser's
``triggers`` are keys its ``matches`` needs at least one of, so the parsers
worth asking follow from which trigger keys a record has: one set intersection
per record, the candidates per combination cached. The answer is the same as
asking all of them: a skipped parser would have said no.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

from detector.events.parsers.base import Parser

__all__ = ["ParserChoice"]

_MAX_CACHED = 1024
"""Trigger-key combinations remembered; hostile key mixes must not grow the cache."""


class ParserChoice:
    """The first parser, by ``(priority, name)``, whose ``matches`` accepts a document."""

    def __init__(self, parsers: Iterable[Parser]) -> None:
        self._ordered = tuple(sorted(parsers, key=lambda p: (p.priority, p.name)))
        self._triggers = frozenset().union(
            *(p.triggers for p in self._ordered if p.triggers is not None)
        )
        self._candidates: dict[frozenset[str], tuple[Parser, ...]] = {}

    @property
    def triggers(self) -> frozenset[str]:
        """Every key some parser's ``matches`` needs."""
        return self._triggers

    def choose(self, doc: Mapping[str, Any], keys: frozenset[str] | None = None) -> Parser | None:
        """The parser for ``doc``, or None when no parser recognises it.

        ``keys``: the keys of ``doc`` among a set of keys that holds :attr:`triggers`, if
        the caller has them (the normalizer reads the envelopes' and the parsers' in one
        pass); they choose the same parsers as ``doc``'s own trigger keys.
        """
        # candidates() inline when the combination is known, as it almost always is: a
        # call less for every record.
        found = self._candidates.get(self._triggers.intersection(doc) if keys is None else keys)
        for parser in self.candidates(doc, keys) if found is None else found:
            if parser.matches(doc):
                return parser
        return None

    def candidates(
        self, doc: Mapping[str, Any], keys: frozenset[str] | None = None
    ) -> tuple[Parser, ...]:
        """The parsers that could accept ``doc``, in the order they are asked."""
        hits = self._triggers.intersection(doc) if keys is None else keys
        found = self._candidates.get(hits)
        if found is None:
            found = self._candidates_for(hits)
            if len(self._candidates) < _MAX_CACHED:
                self._candidates[hits] = found
        return found

    def _candidates_for(self, hits: Set[str]) -> tuple[Parser, ...]:
        return tuple(
            parser
            for parser in self._ordered
            if parser.triggers is None or not parser.triggers.isdisjoint(hits)
        )
