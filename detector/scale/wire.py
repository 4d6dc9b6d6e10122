"""The records of the internal topics: a normalized event with carried counts, a note, a mark.

An event record is the event (its raw vendor record included: rules may read
raw fields) plus ``carried``: key kind → the packed window counts a stage keyed
by that kind computed for it. A note tells an actor's task that a rule alert
raised in another stage named the actor; a mark, that a producer has passed an
event time. The record key is the partitioning key (:meth:`Topology.key`).

Format 2, written since the scale-out overhead was cut, is one version byte,
one flags byte, the header's length (4 bytes, big-endian), the header — an
orjson array, fields by position — and, for an event, its raw record as JSON
after the header. The raw record is read lazily (:class:`RawDocument`): a
stage whose rules never look into it neither parses it nor encodes it again
for the next stage (it hands on the bytes it read; the first stage hands on
the vendor record's own text, which the normalizer keeps). Format 1 (an
orjson object with keys, the raw record inside) is still read: internal
topics outlive an upgrade. Anything else is not an internal record
(:data:`UNREADABLE`): the daemon dead-letters it, which counts it.

Integers beyond 64 bits and lone surrogates, which orjson does not write, are
written with the standard library's json (a flag bit says so), as the
event-time sorter does.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from detector.errors import CiwatchError
from detector.events.decoding import RawDocument
from detector.events.fields import parse_time
from detector.events.model import (
    ActorType,
    Category,
    DeadLetter,
    DeadLetterReason,
    Event,
    Outcome,
    new_event,
)
from detector.frozen import quick_init
from detector.sources.record import Position, RawRecord

__all__ = [
    "FORMAT",
    "UNREADABLE",
    "Note",
    "Outgoing",
    "Received",
    "broadcast_mark",
    "decode",
    "encode_event",
    "encode_first",
    "encode_mark",
    "encode_note",
    "not_internal",
    "read",
    "source_producer",
]

FORMAT = 2
"""The format written (see the module); format 1 is still read."""
UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError, CiwatchError)
"""What decoding a record that is not an internal one raises."""
_EXCERPT = 200
_PREFIX = struct.Struct(">BBI")
"""Format, flags, header length."""
_HEADER_STDLIB = 1
_RAW_STDLIB = 2
_EVENT, _NOTE, _MARK = "e", "n", "m"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_CATEGORIES = {member.value: member for member in Category}
_OUTCOMES = {member.value: member for member in Outcome}
_ACTOR_TYPES = {member.value: member for member in ActorType}
_EMPTY_RAW = b"{}"


@quick_init
@dataclass(frozen=True, slots=True)
class Note:
    """Rule alert ``alert_id`` (``rule``) named ``actor`` at ``time``; linking lasts ``until``."""

    actor: str
    rule: str
    alert_id: str
    time: datetime
    until: datetime


@quick_init
@dataclass(frozen=True, slots=True)
class Outgoing:
    """A record to produce to an internal topic; ``time``: its event's (to produce in order).

    ``partition``: set for marks, which go to every partition; else the key decides.
    """

    topic: str
    key: str
    value: bytes
    time: datetime
    partition: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class Received:
    """An internal record read back: who produced it, its event time, and what it holds.

    ``item`` None: a mark (the producer has passed ``time``; ``idle``: it has nothing to send).
    """

    producer: str
    time: datetime
    item: Event | Note | None
    carried: dict[str, list[int]]
    idle: bool = False


def _dumps(value: Any) -> tuple[bytes, bool]:
    """``value`` as JSON, and whether the standard library wrote it (see the module)."""
    try:
        return orjson.dumps(value), False
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode(), True


def _frame(header: list[Any], raw: bytes = b"", *, raw_stdlib: bool = False) -> bytes:
    encoded, stdlib = _dumps(header)
    flags = (_HEADER_STDLIB if stdlib else 0) | (_RAW_STDLIB if raw_stdlib else 0)
    return _PREFIX.pack(FORMAT, flags, len(encoded)) + encoded + raw


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(micros: int) -> datetime:
    # Positionally: the keyword form takes twice as long, read for every record.
    return _EPOCH + timedelta(0, 0, micros)


def _raw_bytes(raw: Mapping[str, Any]) -> tuple[bytes, bool]:
    if isinstance(raw, RawDocument):
        return raw.encoded, raw.stdlib  # as read: never parsed again to be written
    return _dumps(raw) if raw else (_EMPTY_RAW, False)


def encode_event(
    event: Event, carried: Mapping[str, Sequence[int]], *, producer: str = ""
) -> bytes:
    """``event`` (without its position: the reader's is the internal record's) and its counts."""
    # Packed counts (several window lanes in one integer) pass 64 bits: as text.
    counts = {kind: [str(n) for n in packed] for kind, packed in carried.items()}
    # The kinds are StrEnum members: written as their values, without an enum lookup each.
    header = [
        _EVENT, producer, _micros(event.time), event.source, event.action,
        event.category, event.outcome, event.actor, event.actor_type,
        event.id, event.ip, event.country, event.user_agent, event.target,
        event.privileged, dict(event.attributes), counts,
    ]  # fmt: skip
    raw, stdlib = _raw_bytes(event.raw)
    return _frame(header, raw, raw_stdlib=stdlib)


def source_producer(partition: tuple[str, int]) -> str:
    """The producer name of a vendor partition's reader (``events[3]``)."""
    return f"{partition[0]}[{partition[1]}]"


def encode_first(event: Event) -> bytes:
    """A vendor event for the first stage, from its vendor partition's reader."""
    position = event.position
    reader = ("", 0) if position is None else (position.stream, position.partition or 0)
    return encode_event(event, {}, producer=source_producer(reader))


def encode_mark(producer: str, time: datetime, *, idle: bool = False) -> bytes:
    return _frame([_MARK, producer, _micros(time), idle])


def broadcast_mark(
    producer: str, time: datetime, topics: Iterable[str], partitions: int, *, idle: bool = False
) -> list[Outgoing]:
    """``producer``'s mark to every partition of each of ``topics``: a mark is for all."""
    value = encode_mark(producer, time, idle=idle)
    return [Outgoing(t, "", value, time, p) for t in topics for p in range(partitions)]


def encode_note(note: Note, *, producer: str = "") -> bytes:
    times = _micros(note.time), _micros(note.until)
    return _frame([_NOTE, producer, note.actor, note.rule, note.alert_id, *times])


def decode(value: bytes, position: Position) -> tuple[Event, dict[str, list[int]]] | Note:
    """An event or note record; ValueError (with the reason) if it is not one."""
    found = read(value, position)
    if found.item is None:
        raise ValueError("a mark, not an event or a note")
    if isinstance(found.item, Note):
        return found.item
    return found.item, found.carried


def read(value: bytes, position: Position) -> Received:
    """Any internal record, marks included; ValueError (with the reason) if it is not one."""
    if value[:1] == b"{":
        return _read_format_1(value, position)
    if len(value) < _PREFIX.size:
        raise ValueError("not an internal record: too short")
    version, flags, length = _PREFIX.unpack_from(value)
    if version != FORMAT:
        raise ValueError(f"internal record of unknown format {version} (this version reads 1-2)")
    end = _PREFIX.size + length
    body = value[_PREFIX.size : end]
    header = json.loads(body) if flags & _HEADER_STDLIB else orjson.loads(body)
    kind, producer = header[0], str(header[1])
    if kind == _EVENT:
        raw = RawDocument(value[end:], stdlib=bool(flags & _RAW_STDLIB))
        event, carried = _event(header, raw, position)
        return Received(producer, event.time, event, carried)
    if kind == _NOTE:
        note = Note(header[2], header[3], header[4], _moment(header[5]), _moment(header[6]))
        return Received(producer, note.time, note, {})
    if kind == _MARK:
        return Received(producer, _moment(header[2]), None, {}, bool(header[3]))
    raise ValueError(f"internal record of unknown kind {kind!r}")


def _event(
    header: list[Any], raw: RawDocument, position: Position
) -> tuple[Event, dict[str, list[int]]]:
    (_, _, micros, source, action, category, outcome, actor, actor_type) = header[:9]
    (id_, ip, country, user_agent, target, privileged, attributes, counts) = header[9:17]
    event = new_event(
        _moment(micros), source, action, _CATEGORIES[category], _OUTCOMES[outcome], actor,
        _ACTOR_TYPES[actor_type], id_, position, ip, country, user_agent, target,
        privileged, attributes, raw,
    )  # fmt: skip
    carried = {str(kind): [int(n) for n in packed] for kind, packed in counts.items()}
    return event, carried


def _read_format_1(value: bytes, position: Position) -> Received:
    """A record of format 1: an orjson object (written before format 2)."""
    data: Any = orjson.loads(value)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    producer = str(data.get("from", ""))
    if "mark" in data:
        return Received(producer, parse_time(data["mark"]), None, {}, bool(data.get("idle")))
    if "note" in data:
        note = data["note"]
        times = parse_time(note["time"]), parse_time(note["until"])
        found = Note(note["actor"], note["rule"], note["alert_id"], *times)
        return Received(producer, found.time, found, {})
    carried = {str(kind): [int(n) for n in counts] for kind, counts in data["carried"].items()}
    event = Event.from_dict(data["event"], position=position)
    return Received(producer, event.time, event, carried)


def not_internal(record: RawRecord) -> DeadLetter:
    """The dead letter of a stage record that is neither an event nor a note, and why."""
    try:
        decode(record.value, record.position)
        reason = "not an internal record: a mark where an event or note was expected"
    except UNREADABLE as exc:
        reason = f"not an internal record: {type(exc).__name__}: {exc}"
    return DeadLetter(
        DeadLetterReason.PARSER_ERROR,
        reason[:300],
        record.position,
        record.value[:_EXCERPT].decode("utf-8", "replace"),
        format="ciwatch-internal",
    )
