"""Raw records → normalized Events or DeadLetters. Never raises on bad input.

Steps per record: size limit, JSON decode (strict, then lenient about control
characters inside strings as some vendors publish them), object check, depth
limit, envelope unwrapping, parser choice (the stream's configured format or
auto-detection per event), parsing, then taxonomy: category, privileged flag
and automation identities.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from operator import attrgetter, getitem
from typing import Any, cast

import orjson

from detector.errors import ConfigError
from detector.events.decoding import RawDocument, decode_json, deeper_than, shallow, too_deep
from detector.events.envelopes import Failed, Found, Opener, Reader
from detector.events.fields import is_mapping
from detector.events.model import (
    ActorType,
    DeadLetter,
    DeadLetterReason,
    Event,
    ParseError,
    Skipped,
    SkipReason,
    new_event,
)
from detector.events.parsers import PARSERS, Parsed, Parser
from detector.events.parsers.choice import ParserChoice
from detector.events.taxonomy import Taxonomy
from detector.events.typed import TypedDecoder
from detector.sources.framing import (
    BOM,
    FRAGMENT_DETAIL,
    BadRecord,
    CompressionError,
    DecompressedTooLargeError,
    Piece,
    PieceKind,
    compression_of,
    decompress,
    looks_like_fragment,
    opens_batch,
    split_values,
)
from detector.sources.record import Position, RawRecord

__all__ = ["AUTO", "Limits", "Normalized", "Normalizer"]

AUTO = "auto"
_EXCERPT_CHARS = 300
_SHAPE = slice(0, 8)
"""A record's first bytes, which tell its shape: ``{"kind":``, ``{"eventV``, ..."""
_VALUE = attrgetter("value")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one record may cost; larger or deeper input is dead-lettered."""

    max_record_bytes: int = 1 << 20
    max_depth: int = 64
    max_decompressed_bytes: int = 64 << 20
    """What one gzip or zstd record may expand to; past it the rest is not read (``too_large``)."""


@dataclass(slots=True)
class Normalized:
    """The outcome of a batch: events in input order, dead letters and skipped non-events."""

    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class Normalizer:
    """Turns raw records into events with the registered parsers and a taxonomy.

    ``formats`` maps a stream (topic or file path) to a parser name, overriding
    auto-detection for that stream; ``default_format`` applies to the rest.
    ``parsers`` replaces the registered parsers (tests, custom deployments).

    With a ``clock`` (the daemon's wall clock) and a ``max_future_skew``, an
    event dated further ahead of the clock than the skew is a ``future_time``
    dead letter: one record stamped in a far year must not move the watermark
    past every real event. Without a clock (replay, ``ciwatch normalize``)
    event times are not compared with the wall clock.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        formats: Mapping[str, str] | None = None,
        default_format: str = AUTO,
        limits: Limits | None = None,
        parsers: Mapping[str, Parser] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_future_skew: timedelta | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.limits = limits or Limits()
        self._parsers = dict(parsers) if parsers else {n: cls() for n, cls in PARSERS.items()}
        self._detection = ParserChoice(self._parsers.values())
        self._formats = dict(formats or {})
        for where, name in [*self._formats.items(), ("default_format", default_format)]:
            if name != AUTO and name not in self._parsers:
                known = ", ".join(sorted(self._parsers))
                raise ConfigError(f"unknown format {name!r} (known: auto, {known})", where=where)
        self._default_format = default_format
        self._opener = Opener()
        self._triggers = self._opener.triggers | self._detection.triggers
        """The keys envelopes and parsers recognise documents by, read in one pass."""
        self._reader = Reader(self._decode_inner, self.limits.max_record_bytes)
        self._typed = {stream: self._typed_decoder(name) for stream, name in self._formats.items()}
        self._default_typed = self._typed_decoder(default_format)
        self._clock = clock if max_future_skew else None
        self._max_future_skew = max_future_skew or timedelta(0)
        self._latest_time: datetime | None = None
        """Events after this are ``future_time``; the clock is read once per batch or record."""

    def normalize_batch(self, records: Iterable[RawRecord]) -> Normalized:
        """Each record's events, dead letters and skips, in the records' order."""
        out = Normalized()
        self._read_clock()
        batch = records if isinstance(records, list) else list(records)
        order = _by_shape(batch)
        results: list[Event | DeadLetter | list[Event | DeadLetter | Skipped]]
        if order is None:
            results = list(map(self._outcome, batch))
        else:
            results = [[]] * len(batch)
            for index in order:
                results[index] = self._outcome(batch[index])
        events = out.events
        for result in results:
            if type(result) is Event:  # most records: one plain event
                events.append(result)
            elif isinstance(result, list):
                for item in result:
                    _sort_into(out, item)
            else:
                _sort_into(out, result)
        return out

    def normalize(self, record: RawRecord) -> list[Event | DeadLetter | Skipped]:
        """All events in one record (an envelope may hold several), or why not.

        A record may also hold several documents: a JSON array of them, concatenated
        objects or JSON Lines, gzip or zstd compressed (framing); each is checked and
        normalized on its own.
        """
        self._read_clock()
        return self._normalize_record(record)

    def _typed_decoder(self, name: str) -> TypedDecoder | None:
        """A typed decoder for a declared log type whose parser says what it reads."""
        if name == AUTO or self._parsers[name].reads is None:
            return None
        return TypedDecoder(self._parsers[name], self._opener.triggers, self.limits.max_depth)

    def _read_clock(self) -> None:
        if self._clock is not None:
            self._latest_time = self._clock() + self._max_future_skew

    def _normalize_record(self, record: RawRecord) -> list[Event | DeadLetter | Skipped]:
        return _listed(self._outcome(record))

    def _outcome(
        self, record: RawRecord
    ) -> Event | DeadLetter | list[Event | DeadLetter | Skipped]:
        """What :meth:`normalize` gives for ``record``: one item where it makes one (most
        records: one JSON object without an envelope, taken straight to its parser), else
        the list of them."""
        value, position = record.value, record.position
        if isinstance(record, BadRecord):  # the source already knows why (a cut file, bad gzip)
            return _dead(DeadLetterReason(record.reason), record.detail, position, value)
        if len(value) > self.limits.max_record_bytes:
            limit = self.limits.max_record_bytes
            return _dead(
                DeadLetterReason.TOO_LARGE, f"{len(value)} bytes > {limit}", position, value
            )
        typed = self._typed.get(position.stream, self._default_typed)
        if typed is not None and (event := self._typed_event(typed, value, position)) is not None:
            return event
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return self._unframe(value, position, exc)
        # An object that cannot be too deep skips _document's other checks.
        if type(doc) is dict and shallow(value, self.limits.max_depth):
            return self._opened(doc, position, RawDocument(value))
        return self._document(doc, value, position, RawDocument(value))

    def _typed_event(self, typed: TypedDecoder, value: bytes, position: Position) -> Event | None:
        """The event of a record on a declared stream through its parser's typed decoder, or
        None where the general path must answer: it would say why a record is no event,
        hash a record without an id, or read what typed decoding leaves out."""
        doc = typed.decode(value)
        if doc is None:
            return None
        parser = typed.parser
        try:
            parsed = parser.parse(doc)
        except Exception:  # refused, or a parser bug: the general path says which
            return None
        if not parsed.vendor_id or (
            self._latest_time is not None and parsed.time > self._latest_time
        ):
            return None
        source = parsed.source or parser.name
        return self._build(source, parsed, doc, position, RawDocument(value))

    def _document(
        self, doc: Any, value: bytes, position: Position, raw: RawDocument | None = None
    ) -> list[Event | DeadLetter | Skipped]:
        """One decoded document (``value`` its JSON text): checked, then its envelopes opened.
        A bare event's vendor document is ``raw`` if given (``value`` as text), else ``doc``."""
        if type(doc) is not dict:
            if opens_batch(doc):
                return self._batch(doc, value, position)
            if not isinstance(doc, Mapping | list):  # a list may be Fluentd's [time, record]
                detail = f"top level is {type(doc).__name__}, not an object"
                return [_dead(DeadLetterReason.NOT_AN_OBJECT, detail, position, value)]
        if too_deep(value, doc, self.limits.max_depth):
            detail = f"nesting deeper than {self.limits.max_depth}"
            return [_dead(DeadLetterReason.TOO_DEEP, detail, position, value)]
        return self._open_envelopes(doc, position, raw)

    def _batch(
        self, docs: list[Any], value: bytes, position: Position
    ) -> list[Event | DeadLetter | Skipped]:
        """A JSON array of documents: each element is a document of its own."""
        if not docs:
            return [Skipped(SkipReason.EMPTY_BATCH, position)]
        max_depth = self.limits.max_depth
        # The array is one level; only when the whole could be too deep is each element walked.
        walk = too_deep(value, docs, max_depth + 1)
        out: list[Event | DeadLetter | Skipped] = []
        for doc in docs:
            if walk and isinstance(doc, Mapping | list) and deeper_than(doc, max_depth):
                detail = f"nesting deeper than {max_depth}"
                out.append(_dead(DeadLetterReason.TOO_DEEP, detail, position, doc))
            elif opens_batch(doc):
                out.extend(self._batch(doc, value, position))
            else:
                out.extend(self._open_envelopes(doc, position))
        return out

    def _unframe(
        self, value: bytes, position: Position, error: ValueError
    ) -> list[Event | DeadLetter | Skipped]:
        """A record that is not one strict JSON value: decompress, drop a BOM, then split."""
        limits = self.limits
        if compression_of(value):
            try:
                value = decompress(value, limits.max_decompressed_bytes)
            except DecompressedTooLargeError as exc:
                detail = f"{exc} (max_decompressed_bytes): the rest is not read"
                return [_dead(DeadLetterReason.TOO_LARGE, detail, position, b"")]
            except CompressionError as exc:
                detail = f"cannot decompress: {exc}"
                return [_dead(DeadLetterReason.INVALID_JSON, detail, position, value)]
        if value.startswith(BOM):
            value = value[len(BOM) :]
        try:
            doc = decode_json(value)
        except ValueError as exc:
            error = exc
        else:
            if len(value) > limits.max_record_bytes and not opens_batch(doc):
                detail = f"{len(value)} bytes (decompressed) > {limits.max_record_bytes}"
                return [_dead(DeadLetterReason.TOO_LARGE, detail, position, value)]
            return self._document(doc, value, position)
        pieces = list(split_values(value, limits.max_record_bytes))
        if len(pieces) <= 1 and not (pieces and pieces[0].size > limits.max_record_bytes):
            return [_undecodable(value, error, position)]  # one bad value, not several
        out: list[Event | DeadLetter | Skipped] = []
        for piece in pieces:
            out.extend(self._piece(piece, position))
        return out

    def _piece(self, piece: Piece, position: Position) -> list[Event | DeadLetter | Skipped]:
        """One of several values found in a record."""
        limit = self.limits.max_record_bytes
        if piece.size > limit:
            detail = f"{piece.size} bytes > {limit}"
            return [_dead(DeadLetterReason.TOO_LARGE, detail, position, piece.data)]
        if piece.kind is PieceKind.VALUE:
            try:
                doc = decode_json(piece.data)
            except ValueError as exc:
                return [_undecodable(piece.data, exc, position)]
            return self._document(doc, piece.data, position)
        if looks_like_fragment(piece.data):
            return [_dead(DeadLetterReason.JSON_FRAGMENT, FRAGMENT_DETAIL, position, piece.data)]
        if piece.kind is PieceKind.UNTERMINATED:
            detail = f"the record ends inside a JSON value that starts at line {piece.line}"
        else:
            detail = f"not JSON, at line {piece.line} of the record (skipped to the next line)"
        return [_dead(DeadLetterReason.INVALID_JSON, detail, position, piece.data)]

    def _open_envelopes(
        self, doc: Any, position: Position, raw: RawDocument | None = None
    ) -> list[Event | DeadLetter | Skipped]:
        return _listed(self._opened(doc, position, raw))

    def _opened(
        self, doc: Any, position: Position, raw: RawDocument | None = None
    ) -> Event | DeadLetter | list[Event | DeadLetter | Skipped]:
        """A bare vendor event's event (or dead letter), or what its envelope holds."""
        # The envelopes' and the parsers' trigger keys, in one pass over a document's keys.
        keys = self._triggers.intersection(doc) if type(doc) is dict else None
        envelope = self._opener.recognise(doc, keys)
        if envelope is None:  # most records: a bare vendor event
            return self._normalize_doc(doc, position, raw=raw, keys=keys)
        out: list[Event | DeadLetter | Skipped] = []
        for item in self._opener.open_as(envelope, doc, self._reader):
            if isinstance(item, Found):
                out.append(self._normalize_doc(item.doc, position, item.fallback_time))
            elif isinstance(item, Failed):
                detail = f"{item.envelope}: {item.detail}"
                out.append(_dead(DeadLetterReason.BAD_ENVELOPE, detail, position, item.value))
            else:
                out.append(Skipped(item, position))
        return out

    def _decode_inner(self, text: str | bytes) -> Any:
        """JSON text inside an envelope, within the same size and depth limits as a record."""
        value = text.encode() if isinstance(text, str) else text
        if len(value) > self.limits.max_record_bytes:
            raise ValueError(f"{len(value)} bytes > {self.limits.max_record_bytes}")
        doc = decode_json(value)
        if isinstance(doc, Mapping | list) and too_deep(value, doc, self.limits.max_depth):
            raise ValueError(f"nesting deeper than {self.limits.max_depth}")
        return doc

    def _normalize_doc(
        self,
        doc: Any,
        position: Position,
        fallback_time: Any = None,
        raw: Mapping[str, Any] | None = None,
        keys: frozenset[str] | None = None,
    ) -> Event | DeadLetter:
        """``keys``: ``doc``'s among :attr:`_triggers`, if read already."""
        if type(doc) is not dict and not is_mapping(doc):
            detail = f"{type(doc).__name__}, not an object"
            return _dead(DeadLetterReason.NOT_AN_OBJECT, detail, position, doc)
        name = self._formats.get(position.stream, self._default_format)
        parser = self._detection.choose(doc, keys) if name == AUTO else self._parsers[name]
        if parser is None:
            return _dead(
                DeadLetterReason.UNKNOWN_FORMAT, "no parser recognises this shape", position, doc
            )
        try:
            try:
                parsed = parser.parse(doc)
            except ParseError as exc:
                parsed = _parse_with_shipper_time(parser, doc, fallback_time, exc)
        except ParseError as exc:
            return _dead(exc.reason, exc.message, position, doc, parser.name)
        except Exception as exc:  # a parser bug must cost one record, not the daemon
            detail = f"{type(exc).__name__}: {exc}"
            return _dead(DeadLetterReason.PARSER_ERROR, detail, position, doc, parser.name)
        if self._latest_time is not None and parsed.time > self._latest_time:
            return self._from_the_future(parsed, doc, position, parser.name)
        return self._build(
            parsed.source or parser.name, parsed, doc, position, doc if raw is None else raw
        )

    def _from_the_future(
        self, parsed: Parsed, doc: Mapping[str, Any], position: Position, format_name: str
    ) -> DeadLetter:
        skew = int(self._max_future_skew.total_seconds())
        detail = (
            f"event time {parsed.time.isoformat()} is more than {skew}s ahead of the wall clock "
            "(normalizer.max_future_skew)"
        )
        return _dead(DeadLetterReason.FUTURE_TIME, detail, position, doc, format_name)

    def _build(
        self,
        source: str,
        parsed: Parsed,
        doc: Mapping[str, Any],
        position: Position,
        raw: Mapping[str, Any],
    ) -> Event:
        classification = self.taxonomy.classify(source, parsed.taxonomy_key or parsed.action)
        actor_type = parsed.actor_type
        if actor_type is not ActorType.SERVICE and self.taxonomy.is_automation(
            source, parsed.actor
        ):
            actor_type = ActorType.SERVICE
        # Positionally, in Event's field order: 16 keywords make CPython build a dict for
        # the call, about 1 µs per event; and through quick_builder, which saves another
        # 0.6 µs of the frozen __init__'s stores.
        return new_event(
            parsed.time,
            source,
            parsed.action,
            classification.category,
            parsed.outcome,
            parsed.actor,
            actor_type,
            f"{source}:{parsed.vendor_id}" if parsed.vendor_id else _stable_id(source, doc),
            position,
            parsed.ip,
            parsed.country,
            parsed.user_agent,
            parsed.target,
            classification.privileged,
            parsed.attributes,
            raw,
        )


def _by_shape(records: list[RawRecord]) -> list[int] | None:
    """The records' indices with records of one shape together (their first bytes, which
    name their first key); None when they all start alike, as on a topic of one log type.

    Records of one log type after another normalize faster than interleaved ones (the same
    parser and the same paths in a row: about 11 against 13.4 µs per record on a generated
    world of four log types, docs/performance-history.md). The order changes what runs
    when, never an outcome: no record's outcome depends on another's.
    """
    shapes: list[bytes] = list(map(getitem, map(_VALUE, records), repeat(_SHAPE)))
    if not shapes or shapes.count(shapes[0]) == len(shapes):
        return None
    return sorted(range(len(records)), key=cast("Callable[[int], bytes]", shapes.__getitem__))


def _listed(
    found: Event | DeadLetter | list[Event | DeadLetter | Skipped],
) -> list[Event | DeadLetter | Skipped]:
    """One outcome, or the list of them, as a list."""
    return found if isinstance(found, list) else [found]


def _sort_into(out: Normalized, item: Event | DeadLetter | Skipped) -> None:
    """``item`` into its list of ``out``."""
    if isinstance(item, Event):
        out.events.append(item)
    elif isinstance(item, Skipped):
        out.skipped.append(item)
    else:
        out.dead_letters.append(item)


def _parse_with_shipper_time(
    parser: Parser, doc: Mapping[str, Any], fallback: Any, error: ParseError
) -> Parsed:
    """For an event without a time, the parser's result with the shipper's time, else ``error``.

    The event's own time always wins: the shipper's (the document's own Logstash or
    Filebeat ``@timestamp``, else the envelope's) is only used when it has none.
    """
    if error.reason is not DeadLetterReason.MISSING_TIME:
        raise error
    shipped = doc.get("@timestamp") or fallback
    if shipped is None or doc.get(parser.time_field) == shipped:
        raise error
    return parser.parse({**doc, parser.time_field: shipped})


def _undecodable(value: bytes, error: ValueError, position: Position) -> DeadLetter:
    """Why one value does not decode: a line of pretty-printed JSON, too deep, or not JSON."""
    # Past orjson's own nesting limit the decoder refuses; that is depth, not syntax.
    if any(word in str(error).lower() for word in ("recursion", "depth limit")):
        return _dead(DeadLetterReason.TOO_DEEP, str(error), position, value)
    if looks_like_fragment(value):
        return _dead(DeadLetterReason.JSON_FRAGMENT, FRAGMENT_DETAIL, position, value)
    return _dead(DeadLetterReason.INVALID_JSON, str(error), position, value)


def _stable_id(source: str, doc: Mapping[str, Any]) -> str:
    """A content hash for events without a vendor id: the same event always gets the same id."""
    try:
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        canonical = json.dumps(doc, sort_keys=True, default=str).encode()
    digest = hashlib.sha256(source.encode() + b"\0" + canonical).hexdigest()
    return f"{source}:{digest[:32]}"


def _dead(
    reason: DeadLetterReason,
    detail: str,
    position: Position,
    value: Any,
    format_name: str | None = None,
) -> DeadLetter:
    return DeadLetter(reason, detail, position, _excerpt(value), format_name)


def _excerpt(value: Any) -> str:
    if isinstance(value, bytes):
        text = value[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    else:
        try:
            text = orjson.dumps(value).decode()
        except TypeError:
            text = repr(value)
    return text[:_EXCERPT_CHARS]
