"""Envelopes: published records wrapped as each shipper documents it give the same events.

The fixtures in tests/data/envelopes hold published records of tests/data/samples
wrapped by tests/envelope_fixtures.py; every envelope must yield exactly the events
those records give bare (a golden comparison), with no dead letters.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import orjson
import pytest

from detector.events.envelopes import ENVELOPES, MAX_LEVELS, Opener, unwrap
from detector.events.model import DeadLetter, DeadLetterReason, Event, Skipped, SkipReason
from detector.events.normalizer import Limits, Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.envelope_fixtures import FIXTURES, FIXTURES_DIR, fixture_text
from tests.samples import sample

NORMALIZER = Normalizer(Taxonomy.bundled())
# How many known non-events each fixture holds on purpose.
EXPECTED_SKIPS = {
    "cloudwatch_logs": [SkipReason.HEARTBEAT],
    "firehose": [SkipReason.HEARTBEAT],
    "cloudtrail_digest": [SkipReason.CLOUDTRAIL_DIGEST],
}


def normalize(doc: Any, normalizer: Normalizer = NORMALIZER) -> list[Any]:
    raw = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return normalizer.normalize(RawRecord(raw, Position("envelope", 1)))


def comparable(event: Event) -> dict[str, Any]:
    out = event.to_dict()
    del out["position"]
    return out


def fixture_documents(name: str) -> list[bytes]:
    return (FIXTURES_DIR / f"{name}.jsonl").read_bytes().splitlines()


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_files_are_what_the_generator_writes(name: str) -> None:
    assert (FIXTURES_DIR / f"{name}.jsonl").read_text(encoding="utf-8") == fixture_text(name)


@pytest.mark.parametrize("name", FIXTURES)
def test_wrapped_published_records_give_the_events_of_the_bare_records(name: str) -> None:
    results = [r for line in fixture_documents(name) for r in normalize(line)]
    dead = [r.to_dict() for r in results if isinstance(r, DeadLetter)]
    assert dead == []
    events = [comparable(r) for r in results if isinstance(r, Event)]
    bare = [comparable(r) for inner in FIXTURES[name]().inner for r in normalize(inner)]
    assert events == bare
    assert [r.reason for r in results if isinstance(r, Skipped)] == EXPECTED_SKIPS.get(name, [])


def test_logstash_cloudtrail_without_event_time_takes_the_timestamp() -> None:
    line = fixture_documents("logstash_cloudtrail")[0]
    assert b'"eventTime"' not in line
    [event] = normalize(line)
    assert isinstance(event, Event)
    assert event.source == "cloudtrail"
    assert event.time.isoformat().startswith(json.loads(line)["@timestamp"][:19])


def test_the_inner_time_wins_over_the_shipper_time() -> None:
    record = sample("okta_system_log", "Login Event")
    [bare] = normalize(record)
    for wrapped in (
        {"time": 946684800, "event": record, "sourcetype": "_json"},
        {"@timestamp": "2000-01-01T00:00:00Z", "message": json.dumps(record)},
        {"detail-type": "Okta", "time": "2000-01-01T00:00:00Z", "detail": record},
    ):
        [event] = normalize(wrapped)
        assert event.time == bare.time != bare.time.replace(year=2000)


def test_the_shipper_time_fills_in_for_an_event_without_one() -> None:
    record = {k: v for k, v in sample("okta_system_log", "Login Event").items() if k != "published"}
    assert [r.reason for r in normalize(record)] == [DeadLetterReason.MISSING_TIME]
    [event] = normalize({"time": 946684800, "event": record, "host": "h"})
    assert event.time.isoformat() == "2000-01-01T00:00:00+00:00"


def test_an_ecs_document_with_a_plain_text_message_is_not_opened() -> None:
    ecs = {
        "@timestamp": "2024-01-01T00:00:00Z",
        "message": "{user} signed in",
        "event": {"action": "user-login", "original": "not json"},
        "user": {"name": "alice"},
    }
    assert unwrap(ecs) == [ecs]
    [event] = normalize(ecs)
    assert isinstance(event, Event)
    assert event.raw == ecs


@pytest.mark.parametrize(
    ("doc", "detail"),
    [
        (
            {"awslogs": {"data": "not base64!"}},
            "cloudwatch_lambda: awslogs.data is not valid base64",
        ),
        (
            {"awslogs": {"data": base64.b64encode(b"\x1f\x8b\x08garbage").decode()}},
            "cloudwatch_lambda: awslogs.data is not valid gzip",
        ),
        (
            {"awslogs": {"data": base64.b64encode(gzip.compress(b"{oops")).decode()}},
            "cloudwatch_lambda: inner payload is not JSON",
        ),
        (
            {"Events": [{"CloudTrailEvent": "{truncated"}]},
            "cloudtrail_lookup_event: inner payload is not JSON",
        ),
        ({"Events": [{"CloudTrailEvent": 42}]}, "cloudtrail_lookup_event: CloudTrailEvent is int"),
        ({"message": {"messageId": "1"}, "subscription": "s"}, "pubsub: message has no data"),
        ({"time": 1, "event": "plain text, not JSON"}, "splunk_hec: inner payload is not JSON"),
    ],
)
def test_an_envelope_that_cannot_be_opened_is_a_bad_envelope_dead_letter(
    doc: Any, detail: str
) -> None:
    [dead] = normalize(doc)
    assert isinstance(dead, DeadLetter)
    assert dead.reason is DeadLetterReason.BAD_ENVELOPE
    assert dead.detail.startswith(detail), dead.detail


def test_a_bad_record_in_a_firehose_batch_costs_only_itself() -> None:
    good = sample("cloudtrail", "IAM User")
    wrapped = {"logEvents": [{"id": "1", "timestamp": 0, "message": json.dumps(good)}]}
    data = base64.b64encode(gzip.compress(json.dumps(wrapped).encode())).decode()
    batch = {
        "invocationId": "i",
        "records": [{"recordId": "1", "data": "%%%"}, {"recordId": "2", "data": data}],
    }
    results = normalize(batch)
    assert [type(r).__name__ for r in results] == ["DeadLetter", "Event"]


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    normalizer = Normalizer(Taxonomy.bundled(), limits=Limits(max_record_bytes=10_000))
    bomb = base64.b64encode(gzip.compress(b" " * 5_000_000)).decode()
    [dead] = normalize({"awslogs": {"data": bomb}}, normalizer)
    assert dead.reason is DeadLetterReason.BAD_ENVELOPE
    assert "decompresses to more than 10000 bytes" in dead.detail


def test_inner_json_obeys_the_depth_limit() -> None:
    deep = "[" * 100 + "]" * 100
    [dead] = normalize({"Events": [{"CloudTrailEvent": deep}]})
    assert dead.reason is DeadLetterReason.BAD_ENVELOPE
    assert "nesting deeper than 64" in dead.detail


def test_nesting_of_envelopes_is_bounded() -> None:
    record = sample("cloudtrail", "IAM User")
    doc: Any = record
    for _ in range(MAX_LEVELS):
        doc = {"Records": [doc]}
    [event] = normalize(doc)
    assert isinstance(event, Event)
    [dead] = normalize({"Records": [doc]})
    assert dead.reason is DeadLetterReason.BAD_ENVELOPE
    assert f"nested deeper than {MAX_LEVELS}" in dead.detail


@pytest.mark.parametrize(
    "empty", [{"Records": []}, {"records": []}, {"logEvents": []}, {"Events": []}]
)
def test_an_empty_batch_is_a_counted_skip(empty: Any) -> None:
    assert normalize(empty) == [Skipped(SkipReason.EMPTY_BATCH, Position("envelope", 1))]


def test_skips_are_counted_in_a_batch() -> None:
    lines = fixture_documents("cloudwatch_logs") + fixture_documents("cloudtrail_digest")
    records = [RawRecord(line, Position("f", n)) for n, line in enumerate(lines)]
    result = NORMALIZER.normalize_batch(records)
    assert [s.reason for s in result.skipped] == [
        SkipReason.HEARTBEAT,
        SkipReason.CLOUDTRAIL_DIGEST,
    ]
    assert result.dead_letters == []


def test_azure_records_are_not_mistaken_for_firehose_and_back() -> None:
    opener = Opener()
    azure = {"records": [sample("azure_entra_id", "OIDC")]}
    firehose = {"invocationId": "i", "records": [{"recordId": "1", "data": ""}]}
    assert opener.recognise(azure).name == "azure_diagnostic"  # type: ignore[union-attr]
    assert opener.recognise(firehose).name == "firehose"  # type: ignore[union-attr]


def test_lists_that_are_not_fluentd_entries_stay_not_an_object() -> None:
    assert [r.reason for r in normalize(b"[1, 2]")] == [DeadLetterReason.NOT_AN_OBJECT]


def test_every_envelope_has_a_fixture_or_a_test() -> None:
    covered = {
        "cloudtrail_s3",
        "azure_diagnostic",
        "wazuh",
        "sample_fixture",
        "logstash",
        "fluent_log",
        "fluentd",
        "vector",
        "splunk_hec",
        "eventbridge",
        "cloudwatch_logs",
        "kinesis",
        "cloudwatch_lambda",
        "firehose",
        "firehose_record",
        "pubsub",
        "pubsub_pull",
        "kafka_connect",
        "cloudtrail_lookup",
        "cloudtrail_lookup_event",
        "cloudtrail_lake",
        "cloudtrail_digest",
    }
    assert set(ENVELOPES) == covered
