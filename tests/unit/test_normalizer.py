"""The normalizer's guarantees: bad input becomes a dead letter with a reason, never a crash."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import groupby, zip_longest
from typing import Any, cast

import orjson
import pytest

from detector.errors import ConfigError
from detector.events.model import DeadLetter, DeadLetterReason, Event, Skipped
from detector.events.normalizer import Limits, Normalizer
from detector.events.parsers import Parsed, Parser
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.samples import load_samples, sample, sample_names

GITHUB_EVENT = {
    "@timestamp": 1606929874512,
    "action": "team.add_member",
    "actor": "octocat",
    "_document_id": "xJJFlFOhQ6b-5vaAFy9Rjw",
    "org": "octo-corp",
}


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(Taxonomy.bundled())


def run(normalizer: Normalizer, value: bytes | Mapping[str, Any], stream: str = "t") -> list[Any]:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return normalizer.normalize(RawRecord(raw, Position(stream, 7, 0)))


def reasons(results: list[Any]) -> list[str]:
    return [r.reason.value if isinstance(r, DeadLetter) else "event" for r in results]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "too_deep"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"hello": "world"}', "unknown_format"),
        (b'{"action": "repo.create", "actor": "octocat"}', "missing_time"),
        (b'{"action": "repo.create", "created_at": 1606929874512}', "missing_actor"),
        (b'{"action": "repo.create", "actor": "x", "created_at": "yesterday"}', "invalid_time"),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_its_reason(
    normalizer: Normalizer, value: bytes, reason: str
) -> None:
    [dead] = run(normalizer, value)
    assert isinstance(dead, DeadLetter)
    assert dead.reason.value == reason
    assert dead.position == Position("t", 7, 0)
    assert dead.detail


def test_oversized_record_is_dead_lettered_with_a_short_excerpt() -> None:
    normalizer = Normalizer(Taxonomy.bundled(), limits=Limits(max_record_bytes=1000))
    [dead] = run(normalizer, b'{"a": "' + b"x" * 5000 + b'"}')
    assert dead.reason is DeadLetterReason.TOO_LARGE
    assert "5009 bytes > 1000" in dead.detail
    assert len(dead.excerpt) <= 300


def test_a_well_formed_event_becomes_an_event(normalizer: Normalizer) -> None:
    [event] = run(normalizer, GITHUB_EVENT)
    assert isinstance(event, Event)
    assert (event.source, event.actor, event.action) == (
        "github_audit",
        "octocat",
        "team.add_member",
    )
    assert event.time.isoformat() == "2020-12-02T17:24:34.512000+00:00"
    assert event.id == "github_audit:xJJFlFOhQ6b-5vaAFy9Rjw"
    assert event.position == Position("t", 7, 0)
    assert event.raw == GITHUB_EVENT


@pytest.mark.parametrize(
    "envelope",
    [
        {"Records": [GITHUB_EVENT, GITHUB_EVENT]},
        {"records": [GITHUB_EVENT, GITHUB_EVENT]},
    ],
)
def test_batch_envelopes_yield_every_record(normalizer: Normalizer, envelope: Any) -> None:
    assert reasons(run(normalizer, envelope)) == ["event", "event"]


def test_wrapper_envelopes_are_unwrapped(normalizer: Normalizer) -> None:
    wazuh = {"integration": "github", "github": GITHUB_EVENT}
    fixture = {"source": "docs", "case": "example", "expected_alert": None, "event": wazuh}
    for envelope in (wazuh, fixture):
        [event] = run(normalizer, envelope)
        assert isinstance(event, Event)
        assert event.raw == GITHUB_EVENT


def test_a_bad_item_in_a_batch_costs_only_itself(normalizer: Normalizer) -> None:
    results = run(normalizer, {"Records": [GITHUB_EVENT, 42, {"hello": 1}]})
    assert reasons(results) == ["event", "not_an_object", "unknown_format"]


def test_events_without_vendor_id_get_a_stable_content_hash(normalizer: Normalizer) -> None:
    event = {key: value for key, value in GITHUB_EVENT.items() if key != "_document_id"}
    [first] = run(normalizer, event)
    [again] = run(normalizer, dict(reversed(list(event.items()))))
    [other] = run(normalizer, {**event, "actor": "someone-else"})
    assert first.id == again.id
    assert first.id != other.id
    assert first.id.startswith("github_audit:")


class _BrokenParser(Parser):
    name = "broken"
    priority = 0

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return True

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        raise KeyError("a bug")


def test_a_parser_bug_is_a_dead_letter_not_a_crash() -> None:
    normalizer = Normalizer(Taxonomy.bundled(), parsers={"broken": _BrokenParser()})
    [dead] = run(normalizer, GITHUB_EVENT)
    assert dead.reason is DeadLetterReason.PARSER_ERROR
    assert dead.format == "broken"
    assert "KeyError" in dead.detail


def test_a_stream_format_overrides_detection() -> None:
    okta_login = sample("okta_system_log", "Login Event")
    normalizer = Normalizer(Taxonomy.bundled(), formats={"github-topic": "github_audit"})
    [forced] = run(normalizer, okta_login, stream="github-topic")
    [detected] = run(normalizer, okta_login, stream="okta-topic")
    assert isinstance(forced, DeadLetter)
    assert forced.format == "github_audit"
    assert isinstance(detected, Event)
    assert detected.source == "okta_system_log"


def test_an_unknown_format_in_config_fails_naming_the_stream() -> None:
    with pytest.raises(ConfigError, match="github-topic: unknown format 'nope'"):
        Normalizer(Taxonomy.bundled(), formats={"github-topic": "nope"})


def test_control_characters_inside_strings_are_accepted(normalizer: Normalizer) -> None:
    raw = orjson.dumps(GITHUB_EVENT).replace(b"octo-corp", b"octo\x01corp")
    assert reasons(run(normalizer, raw)) == ["event"]


def test_a_batch_of_interleaved_log_types_gives_each_records_outcome_in_order(
    normalizer: Normalizer,
) -> None:
    # Every published sample, the log types interleaved as on a topic they share, and
    # records that are no event among them: the batch is normalized a shape at a time.
    # Among them the records a batch's plain path hands to the general one: no JSON, no
    # object, compressed, too deep, too large, inside an envelope, and heartbeats.
    by_type = [[orjson.dumps(s.event) for s in load_samples(name)] for name in sample_names()]
    values = [value for row in zip_longest(*by_type) for value in row if value is not None]
    sample_event = orjson.dumps(GITHUB_EVENT)
    deep = b'{"a":' * 66 + b"1" + b"}" * 66
    bad = [
        b"{oops", b"[]", b'"text"', gzip.compress(b"{}"), b'{"hello": "world"}', deep,
        b'{"pad": "' + b"x" * 400 + b'"}', b'{"Records": [' + sample_event + b"]}",
        b'{"messageType": "CONTROL_MESSAGE", "logEvents": []}',
        b'[{"a": [[]]}, ' + sample_event + b"]",
    ]  # fmt: skip
    for index in range(0, len(values), 50):
        values[index] = bad[index // 50 % len(bad)]
    records = [RawRecord(value, Position("t", offset)) for offset, value in enumerate(values)]
    limited = Normalizer(Taxonomy.bundled(), limits=Limits(max_record_bytes=400))
    for each, least in ((normalizer, 1_000), (limited, 100)):
        batch = each.normalize_batch(records)
        one_by_one = [item for record in records for item in each.normalize(record)]
        assert len(batch.events) > least
        assert batch.events == [i for i in one_by_one if isinstance(i, Event)]
        assert batch.dead_letters == [i for i in one_by_one if isinstance(i, DeadLetter)]
        assert batch.skipped == [i for i in one_by_one if isinstance(i, Skipped)]
        assert {d.reason for d in batch.dead_letters} >= {
            DeadLetterReason.INVALID_JSON, DeadLetterReason.TOO_DEEP, DeadLetterReason.NOT_AN_OBJECT
        }  # fmt: skip


class _Noting(Parser):
    """Takes documents with its name as a key; notes each it parses in :data:`_PARSED`."""

    priority = 0

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return self.name in doc

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        _PARSED.append(self.name)
        return Parsed(time=datetime(2026, 1, 1, tzinfo=UTC), action="x", actor="a")


class _Kind(_Noting):
    name = "kind"


class _Uuid(_Noting):
    name = "uuid"


_PARSED: list[str] = []


def test_a_batch_normalizes_records_of_one_shape_one_after_another() -> None:
    _PARSED.clear()
    normalizer = Normalizer(Taxonomy.bundled(), parsers={"kind": _Kind(), "uuid": _Uuid()})
    values = [b'{"kind": 1}', b'{"uuid": 2}'] * 10
    records = [RawRecord(value, Position("t", offset)) for offset, value in enumerate(values)]
    events = normalizer.normalize_batch(records).events
    assert [key for key, _ in groupby(_PARSED)] in (["kind", "uuid"], ["uuid", "kind"])
    assert [cast(Position, event.position).offset for event in events] == list(range(20))


def test_normalize_batch_splits_events_and_dead_letters(normalizer: Normalizer) -> None:
    records = [
        RawRecord(orjson.dumps(GITHUB_EVENT), Position("f", 1)),
        RawRecord(b"{oops", Position("f", 2)),
        RawRecord(gzip.compress(b"{}"), Position("f", 3)),
    ]
    result = normalizer.normalize_batch(records)
    assert [e.position for e in result.events] == [Position("f", 1)]
    assert [d.position for d in result.dead_letters] == [Position("f", 2), Position("f", 3)]
