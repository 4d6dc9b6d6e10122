"""The records of the internal topics: a normalized event with carried counts, or a note.

An event record is the event as :meth:`Event.to_dict` gives it (its raw record
included: rules may read raw fields), plus ``carried``: key kind → the packed
window counts a stage keyed by that kind computed for it. A note tells an
actor's task that a rule alert raised in another stage named the actor. Both
are orjson; the record key is the partitioning key (:meth:`Topology.key`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from detector.errors import CiwatchError
from detector.events.fields import parse_time
from detector.events.model import DeadLetter, DeadLetterReason, Event, isoformat
from detector.sources.record import Position, RawRecord

__all__ = [
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

UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, CiwatchError)
"""What decoding a record that is not an internal one raises."""
_EXCERPT = 200


@dataclass(frozen=True, slots=True)
class Note:
    """Rule alert ``alert_id`` (``rule``) named ``actor`` at ``time``; linking lasts ``until``."""

    actor: str
    rule: str
    alert_id: str
    time: datetime
    until: datetime


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


def encode_event(
    event: Event, carried: Mapping[str, Sequence[int]], *, producer: str = ""
) -> bytes:
    data = event.to_dict(with_raw=True)
    del data["position"]  # the reader's position is the internal record's
    # Packed counts (several window lanes in one integer) pass 64 bits: as text.
    counts = {kind: [str(n) for n in packed] for kind, packed in carried.items()}
    return orjson.dumps({"from": producer, "event": data, "carried": counts})


def source_producer(partition: tuple[str, int]) -> str:
    """The producer name of a vendor partition's reader (``events[3]``)."""
    return f"{partition[0]}[{partition[1]}]"


def encode_first(event: Event) -> bytes:
    """A vendor event for the first stage, from its vendor partition's reader."""
    position = event.position
    reader = ("", 0) if position is None else (position.stream, position.partition or 0)
    return encode_event(event, {}, producer=source_producer(reader))


def encode_mark(producer: str, time: datetime, *, idle: bool = False) -> bytes:
    return orjson.dumps({"from": producer, "mark": isoformat(time), "idle": idle})


def broadcast_mark(
    producer: str, time: datetime, topics: Iterable[str], partitions: int, *, idle: bool = False
) -> list[Outgoing]:
    """``producer``'s mark to every partition of each of ``topics``: a mark is for all."""
    value = encode_mark(producer, time, idle=idle)
    return [Outgoing(t, "", value, time, p) for t in topics for p in range(partitions)]


def encode_note(note: Note, *, producer: str = "") -> bytes:
    return orjson.dumps(
        {
            "from": producer,
            "note": {
                "actor": note.actor,
                "rule": note.rule,
                "alert_id": note.alert_id,
                "time": isoformat(note.time),
                "until": isoformat(note.until),
            },
        }
    )


def decode(value: bytes, position: Position) -> tuple[Event, dict[str, list[int]]] | Note:
    """An event or note record; ValueError (with the reason) if it is not one."""
    return _item(_object(value), position)


def read(value: bytes, position: Position) -> Received:
    """Any internal record, marks included; ValueError (with the reason) if it is not one."""
    data = _object(value)
    producer = str(data.get("from", ""))
    if "mark" in data:
        return Received(producer, parse_time(data["mark"]), None, {}, bool(data.get("idle")))
    item = _item(data, position)
    if isinstance(item, Note):
        return Received(producer, item.time, item, {})
    return Received(producer, item[0].time, item[0], item[1])


def _object(value: bytes) -> dict[str, Any]:
    data: Any = orjson.loads(value)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _item(data: dict[str, Any], position: Position) -> tuple[Event, dict[str, list[int]]] | Note:
    if "note" in data:
        note = data["note"]
        times = parse_time(note["time"]), parse_time(note["until"])
        return Note(note["actor"], note["rule"], note["alert_id"], *times)
    carried = {str(kind): [int(n) for n in counts] for kind, counts in data["carried"].items()}
    return Event.from_dict(data["event"], position=position), carried


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
