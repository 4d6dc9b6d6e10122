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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from detector.errors import ConfigError
from detector.events.envelopes import unwrap
from detector.events.model import (
    ActorType,
    DeadLetter,
    DeadLetterReason,
    Event,
    ParseError,
)
from detector.events.parsers import PARSERS, Parsed, Parser
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord

__all__ = ["AUTO", "Limits", "Normalized", "Normalizer"]

AUTO = "auto"
_EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one record may cost; larger or deeper input is dead-lettered."""

    max_record_bytes: int = 1 << 20
    max_depth: int = 64


@dataclass(slots=True)
class Normalized:
    """The outcome of a batch: events in input order, and dead letters."""

    events: list[Event] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class Normalizer:
    """Turns raw records into events with the registered parsers and a taxonomy.

    ``formats`` maps a stream (topic or file path) to a parser name, overriding
    auto-detection for that stream; ``default_format`` applies to the rest.
    ``parsers`` replaces the registered parsers (tests, custom deployments).
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        *,
        formats: Mapping[str, str] | None = None,
        default_format: str = AUTO,
        limits: Limits | None = None,
        parsers: Mapping[str, Parser] | None = None,
    ) -> None:
        self.taxonomy = taxonomy
        self.limits = limits or Limits()
        self._parsers = dict(parsers) if parsers else {n: cls() for n, cls in PARSERS.items()}
        self._detect_order = sorted(self._parsers.values(), key=lambda p: (p.priority, p.name))
        self._formats = dict(formats or {})
        for where, name in [*self._formats.items(), ("default_format", default_format)]:
            if name != AUTO and name not in self._parsers:
                known = ", ".join(sorted(self._parsers))
                raise ConfigError(f"unknown format {name!r} (known: auto, {known})", where=where)
        self._default_format = default_format

    def normalize_batch(self, records: Iterable[RawRecord]) -> Normalized:
        out = Normalized()
        for record in records:
            for item in self.normalize(record):
                if isinstance(item, Event):
                    out.events.append(item)
                else:
                    out.dead_letters.append(item)
        return out

    def normalize(self, record: RawRecord) -> list[Event | DeadLetter]:
        """All events in one record (an envelope may hold several), or why not."""
        value, position = record.value, record.position
        if len(value) > self.limits.max_record_bytes:
            limit = self.limits.max_record_bytes
            return [
                _dead(DeadLetterReason.TOO_LARGE, f"{len(value)} bytes > {limit}", position, value)
            ]
        try:
            doc = _decode(value)
        except ValueError as exc:
            # Past orjson's own nesting limit the decoder refuses; that is depth, not syntax.
            deep = any(word in str(exc).lower() for word in ("recursion", "depth limit"))
            reason = DeadLetterReason.TOO_DEEP if deep else DeadLetterReason.INVALID_JSON
            return [_dead(reason, str(exc), position, value)]
        if not isinstance(doc, Mapping):
            detail = f"top level is {type(doc).__name__}, not an object"
            return [_dead(DeadLetterReason.NOT_AN_OBJECT, detail, position, value)]
        if _too_deep(value, doc, self.limits.max_depth):
            detail = f"nesting deeper than {self.limits.max_depth}"
            return [_dead(DeadLetterReason.TOO_DEEP, detail, position, value)]
        return [self._normalize_doc(item, position) for item in unwrap(doc)]

    def _normalize_doc(self, doc: Any, position: Position) -> Event | DeadLetter:
        if not isinstance(doc, Mapping):
            detail = f"envelope item is {type(doc).__name__}, not an object"
            return _dead(DeadLetterReason.NOT_AN_OBJECT, detail, position, doc)
        parser = self._choose(doc, position.stream)
        if parser is None:
            return _dead(
                DeadLetterReason.UNKNOWN_FORMAT, "no parser recognises this shape", position, doc
            )
        try:
            parsed = parser.parse(doc)
        except ParseError as exc:
            return _dead(exc.reason, exc.message, position, doc, parser.name)
        except Exception as exc:  # a parser bug must cost one record, not the daemon
            detail = f"{type(exc).__name__}: {exc}"
            return _dead(DeadLetterReason.PARSER_ERROR, detail, position, doc, parser.name)
        return self._build(parsed.source or parser.name, parsed, doc, position)

    def _choose(self, doc: Mapping[str, Any], stream: str) -> Parser | None:
        name = self._formats.get(stream, self._default_format)
        if name != AUTO:
            return self._parsers[name]
        for parser in self._detect_order:
            if parser.matches(doc):
                return parser
        return None

    def _build(
        self, source: str, parsed: Parsed, doc: Mapping[str, Any], position: Position
    ) -> Event:
        classification = self.taxonomy.classify(source, parsed.taxonomy_key or parsed.action)
        actor_type = parsed.actor_type
        if actor_type is not ActorType.SERVICE and self.taxonomy.is_automation(
            source, parsed.actor
        ):
            actor_type = ActorType.SERVICE
        return Event(
            time=parsed.time,
            source=source,
            action=parsed.action,
            category=classification.category,
            outcome=parsed.outcome,
            actor=parsed.actor,
            actor_type=actor_type,
            id=f"{source}:{parsed.vendor_id}" if parsed.vendor_id else _stable_id(source, doc),
            position=position,
            ip=parsed.ip,
            country=parsed.country,
            user_agent=parsed.user_agent,
            target=parsed.target,
            privileged=classification.privileged,
            attributes=parsed.attributes,
            raw=doc,
        )


def _decode(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as strict_error:
        try:
            # Vendors (AWS docs among them) publish raw control characters inside strings.
            return json.loads(value.decode("utf-8"), strict=False)
        except (ValueError, RecursionError):
            raise ValueError(str(strict_error)) from None


def _too_deep(value: bytes, doc: Mapping[str, Any], max_depth: int) -> bool:
    # Counting brackets in C is cheap; only records that could be too deep are walked.
    if value.count(b"{") + value.count(b"[") <= max_depth:
        return False
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, Mapping) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, Mapping | list))
    return False


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
