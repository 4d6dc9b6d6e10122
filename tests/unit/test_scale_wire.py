"""The internal records' format: what goes in comes out, old records still read, others refused."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from detector.events.decoding import RawDocument
from detector.events.model import ActorType, Category, DeadLetterReason, Event, Outcome, isoformat
from detector.scale.wire import (
    FORMAT,
    UNREADABLE,
    Note,
    decode,
    encode_event,
    encode_first,
    encode_mark,
    encode_note,
    not_internal,
    read,
)
from detector.sources.record import Position, RawRecord

AT = datetime(2026, 3, 4, 5, 6, 7, 891_011, tzinfo=UTC)
WHERE = Position("ciwatch.by-actor", 42, 3)
RAW = {"eventName": "ConsoleLogin", "nested": {"list": [1, "two", None]}, "n": 2**40}
CARRIED = {"ip": [2**70 + 5, 0, 17]}


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "time": AT, "source": "cloudtrail", "action": "ConsoleLogin",
        "category": Category.AUTHENTICATION, "outcome": Outcome.FAILURE, "actor": "alice",
        "actor_type": ActorType.HUMAN, "id": "evt-1", "position": Position("events", 7, 2),
        "ip": "203.0.113.9", "country": "NL", "user_agent": "curl/8", "target": None,
        "privileged": True, "attributes": {"account": "123"}, "raw": RAW,
    }  # fmt: skip
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_an_event_comes_back_whole_with_its_counts_and_the_readers_position() -> None:
    sent = event()
    found = read(encode_event(sent, CARRIED, producer="ip/3"), WHERE)
    assert found.producer == "ip/3"
    assert found.time == AT
    assert found.carried == CARRIED
    assert isinstance(found.item, Event)
    assert found.item == event(position=WHERE)  # every field but raw (not compared)
    assert dict(found.item.raw) == RAW
    assert decode(encode_event(sent, CARRIED), WHERE) == (found.item, CARRIED)


def test_the_raw_record_is_parsed_only_when_read_and_handed_on_as_it_came() -> None:
    first = read(encode_first(event()), WHERE)
    assert first.producer == "events[2]"
    assert isinstance(first.item, Event)
    raw = first.item.raw
    assert isinstance(raw, RawDocument)
    assert not raw.parsed  # nothing looked at it yet
    again = encode_event(first.item, CARRIED, producer="ip/0")
    assert again.endswith(raw.encoded)  # the bytes read, not parsed and written again
    assert not raw.parsed
    assert raw["nested"] == {"list": [1, "two", None]}
    assert raw.parsed
    assert "eventName" in raw and "missing" not in raw
    assert len(raw) == 3 and list(raw) == list(RAW)


def test_what_orjson_cannot_write_goes_through_the_standard_library() -> None:
    huge, surrogate = {"big": 2**80, "name": "bad \ud800"}, "mallory \udc00"
    sent = event(raw=huge, actor=surrogate)
    found = read(encode_event(sent, {}), WHERE)
    assert isinstance(found.item, Event)
    assert dict(found.item.raw) == huge
    assert found.item.actor == surrogate
    kinds = (sent.category, sent.outcome, sent.actor_type)
    assert (found.item.category, found.item.outcome, found.item.actor_type) == kinds
    handed_on = read(encode_event(found.item, {}), WHERE)
    assert isinstance(handed_on.item, Event)
    assert dict(handed_on.item.raw) == huge


def test_an_event_without_raw_fields_has_an_empty_raw_record() -> None:
    found = read(encode_event(event(raw={}), {}), WHERE)
    assert isinstance(found.item, Event)
    assert dict(found.item.raw) == {}


def test_marks_and_notes_come_back() -> None:
    mark = read(encode_mark("events[1]", AT, idle=True), WHERE)
    assert (mark.producer, mark.time, mark.item, mark.idle) == ("events[1]", AT, None, True)
    note = Note("bob", "password_spray", "alert-9", AT, datetime(2026, 3, 5, tzinfo=UTC))
    found = read(encode_note(note, producer="ip/4"), WHERE)
    assert (found.producer, found.time, found.item) == ("ip/4", AT, note)
    assert decode(encode_note(note), WHERE) == note


def format_1_event(sent: Event, carried: dict[str, list[int]], producer: str) -> bytes:
    """A record as the format-1 encoder wrote it (an orjson object with keys)."""
    data = sent.to_dict(with_raw=True)
    del data["position"]
    counts = {kind: [str(n) for n in packed] for kind, packed in carried.items()}
    return orjson.dumps({"from": producer, "event": data, "carried": counts})


def test_records_of_format_1_left_in_a_topic_by_the_previous_version_still_read() -> None:
    found = read(format_1_event(event(), CARRIED, "ip/1"), WHERE)
    assert (found.producer, found.time, found.carried) == ("ip/1", AT, CARRIED)
    assert found.item == event(position=WHERE)
    assert isinstance(found.item, Event)
    assert dict(found.item.raw) == RAW
    handed_on = read(encode_event(found.item, {}), WHERE)  # and go on in format 2
    assert isinstance(handed_on.item, Event)
    assert dict(handed_on.item.raw) == RAW
    mark = orjson.dumps({"from": "events[0]", "mark": isoformat(AT), "idle": False})
    assert read(mark, WHERE).time == AT
    until = "2026-03-05T00:00:00Z"
    note = {"actor": "bob", "rule": "r", "alert_id": "a", "time": isoformat(AT), "until": until}
    found = read(orjson.dumps({"from": "ip/2", "note": note}), WHERE)
    assert isinstance(found.item, Note)
    assert found.item.actor == "bob"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (bytes([FORMAT + 1, 0, 0, 0, 0, 2]) + b"[]", "unknown format 3"),
        (b"\x02\x00", "too short"),
        (b"\x02\x00\x00\x00\x00\x09" + b'["x","p"]', "unknown kind 'x'"),
        (b"\x02\x00\x00\x00\x00\x05" + b'["x","p"]', ""),
        (b"not json", ""),
        (b"[1, 2]", "unknown format 91"),
    ],
)
def test_anything_else_is_not_an_internal_record_and_says_why(value: bytes, why: str) -> None:
    with pytest.raises(UNREADABLE, match=why or None):
        read(value, WHERE)
    letter = not_internal(RawRecord(value, WHERE))
    assert letter.reason is DeadLetterReason.PARSER_ERROR
    assert letter.detail.startswith("not an internal record")
    assert letter.format == "ciwatch-internal"


def test_a_mark_where_an_event_was_expected_is_a_dead_letter() -> None:
    letter = not_internal(RawRecord(encode_mark("ip/0", AT), WHERE))
    assert "a mark" in letter.detail
