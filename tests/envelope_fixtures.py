"""Envelope fixtures: published vendor records wrapped the way each shipper documents it.

Every fixture in ``tests/data/envelopes`` is built here from records of
``tests/data/samples`` (see its ATTRIBUTION.md), wrapped as the shipper or cloud
service documents its wrapper (base64 and gzip where it does). Shipper metadata
(host names, stream names, ids) are placeholders; the inner records are as published.
Regenerate with ``python3 -m tests.envelope_fixtures``; a test keeps files and code equal.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from detector.events.envelopes import unwrap
from detector.events.model import Event
from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.samples import Sample, load_samples

__all__ = ["FIXTURES", "FIXTURES_DIR", "Fixture", "fixture_text"]

FIXTURES_DIR = Path(__file__).parent / "data" / "envelopes"

TIME_FIELD = {
    "cloudtrail": "eventTime",
    "okta_system_log": "published",
    "k8s_audit": "requestReceivedTimestamp",
    "azure_entra_id": "time",
    "github_audit": "created_at",
    "gcp_audit": "timestamp",
}


@dataclass(frozen=True)
class Fixture:
    """One fixture file: its envelope documents and the published records inside them."""

    documents: list[Any]
    inner: list[Any]
    """The published records, in the order their events come out of ``documents``."""


def published(name: str, count: int, skip: int = 0, need: str = "") -> list[Any]:
    """``count`` published records of one sample file that carry their own time (and ``need``).

    Only records that become one event bare are used: a fixture proves the envelope, and
    the records the parsers cannot read are the parsers' tests' business.
    """
    return list(_usable(name, need)[skip : skip + count])


@cache
def _usable(name: str, need: str) -> tuple[Any, ...]:
    time_field = TIME_FIELD[name]
    normalizer = Normalizer(Taxonomy.bundled())

    def usable(item: Sample) -> bool:
        event = item.event
        if not isinstance(event, dict) or not event.get(time_field) or (need and need not in event):
            return False
        results = normalizer.normalize(RawRecord(_json(event).encode(), Position("sample", 1)))
        return unwrap(event) == [event] and [type(r) for r in results] == [Event]

    return tuple(item.event for item in load_samples(name) if usable(item))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _gzip_b64(value: Any) -> str:
    packed = gzip.compress(_json(value).encode(), mtime=0)  # mtime 0: the same bytes every run
    return base64.b64encode(packed).decode()


def _epoch_ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def cloudtrail_s3() -> Fixture:
    records = published("cloudtrail", 3)
    return Fixture([{"Records": records}], records)


def azure_diagnostic() -> Fixture:
    records = published("azure_entra_id", 3)
    return Fixture([{"records": records}], records)


def wazuh() -> Fixture:
    records = published("github_audit", 2, skip=3)
    return Fixture([{"integration": "github", "github": r} for r in records], records)


def logstash() -> Fixture:
    okta = published("okta_system_log", 2)
    plain = [
        {
            "@timestamp": "2024-01-01T00:00:00.000Z",
            "@version": "1",
            "host": "shipper-1",
            "message": _json(r),
            "type": "okta",
        }
        for r in okta
    ]
    k8s = published("k8s_audit", 2)
    filebeat = [
        {
            "@timestamp": "2024-01-01T00:00:00.000Z",
            "event": {"original": _json(r)},
            "log": {"file": {"path": "/var/log/kubernetes/audit.log"}, "offset": 0},
            "input": {"type": "filestream"},
            "agent": {"type": "filebeat", "version": "8.12.0"},
            "ecs": {"version": "8.0.0"},
        }
        for r in k8s
    ]
    return Fixture(plain + filebeat, okta + k8s)


def logstash_cloudtrail() -> Fixture:
    # Logstash's cloudtrail codec: one event per record, eventTime moved into @timestamp.
    records = published("cloudtrail", 3, skip=10, need="eventID")
    docs = [
        {
            **{k: v for k, v in r.items() if k != "eventTime"},
            "@timestamp": r["eventTime"],
            "@version": "1",
        }
        for r in records
    ]
    return Fixture(docs, records)


def fluent() -> Fixture:
    k8s = published("k8s_audit", 2, skip=4)
    tailed = [
        {"log": _json(r) + "\n", "stream": "stdout", "time": "2024-01-01T00:00:00.000000000Z"}
        for r in k8s
    ]
    okta = published("okta_system_log", 1, skip=5)
    with_date = [{"date": 1704067200.0, "log": _json(r)} for r in okta]
    github = published("github_audit", 3, skip=6)
    forward = [[1704067200, github[0]], [[1704067200, github[1]], [1704067201, github[2]]]]
    return Fixture(tailed + with_date + forward, k8s + okta + github)


def vector() -> Fixture:
    okta = published("okta_system_log", 2, skip=8)
    docs = [
        {
            "file": "/var/log/okta/system.log",
            "host": "vector-0",
            "message": _json(r),
            "source_type": "file",
            "timestamp": "2024-01-01T00:00:00.000000Z",
        }
        for r in okta
    ]
    return Fixture(docs, okta)


def splunk_hec() -> Fixture:
    github = published("github_audit", 2, skip=10)
    as_objects = [
        {
            "time": 1704067200.0,
            "host": "hec-sender",
            "source": "github",
            "sourcetype": "_json",
            "index": "audit",
            "event": r,
        }
        for r in github
    ]
    cloudtrail = published("cloudtrail", 2, skip=20)
    as_text = {
        "time": "1704067200.000",
        "sourcetype": "aws:cloudtrail",
        "event": _json(cloudtrail[0]),
    }
    # Nested: HEC → a Logstash document → a CloudTrail file.
    nested = {
        "time": 1704067200,
        "host": "hec-sender",
        "event": {
            "@timestamp": "2024-01-01T00:00:00.000Z",
            "message": _json({"Records": [cloudtrail[1]]}),
        },
    }
    return Fixture([*as_objects, as_text, nested], github + cloudtrail)


def eventbridge() -> Fixture:
    api_calls = published("cloudtrail", 2, skip=30)
    sign_in = next(r for r in published("cloudtrail", 600) if r.get("eventName") == "ConsoleLogin")
    docs = [
        {
            "version": "0",
            "id": f"00000000-0000-0000-0000-00000000000{n}",
            "detail-type": kind,
            "source": "aws.signin"
            if kind.startswith("AWS Console")
            else "aws." + r.get("eventSource", "unknown").split(".")[0],
            "account": r.get("recipientAccountId", "123456789012"),
            "time": r["eventTime"],
            "region": r.get("awsRegion", "us-east-1"),
            "resources": [],
            "detail": r,
        }
        for n, (kind, r) in enumerate(
            [("AWS API Call via CloudTrail", r) for r in api_calls]
            + [("AWS Console Sign In via CloudTrail", sign_in)]
        )
    ]
    return Fixture(docs, [*api_calls, sign_in])


def _subscription(records: list[Any], stream: str) -> dict[str, Any]:
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "CloudTrail/logs",
        "logStream": stream,
        "subscriptionFilters": ["ciwatch"],
        "logEvents": [
            {"id": f"{n:056d}", "timestamp": _epoch_ms(r["eventTime"]), "message": _json(r)}
            for n, r in enumerate(records)
        ],
    }


_CONTROL = {
    "messageType": "CONTROL_MESSAGE",
    "owner": "CloudwatchLogs",
    "logGroup": "",
    "logStream": "",
    "subscriptionFilters": [],
    "logEvents": [
        {
            "id": "",
            "timestamp": 1704067200000,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
        }
    ],
}


def cloudwatch_logs() -> Fixture:
    decoded = published("cloudtrail", 2, skip=40)
    via_lambda = published("cloudtrail", 2, skip=42)
    docs = [
        _subscription(decoded, "123456789012_CloudTrail_us-east-1"),
        {
            "awslogs": {
                "data": _gzip_b64(_subscription(via_lambda, "123456789012_CloudTrail_us-east-1"))
            }
        },
        {"awslogs": {"data": _gzip_b64(_CONTROL)}},
    ]
    return Fixture(docs, decoded + via_lambda)


def firehose() -> Fixture:
    records = published("cloudtrail", 3, skip=50)
    batch = {
        "invocationId": "00000000-0000-0000-0000-000000000000",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/ciwatch",
        "region": "us-east-1",
        "records": [
            {
                "recordId": "49546986683135544286507457936321625675700192471156785154",
                "approximateArrivalTimestamp": 1704067200000,
                "data": _gzip_b64(_subscription(records[:2], "stream-a")),
            },
            {
                "recordId": "49546986683135544286507457936321625675700192471156785155",
                "approximateArrivalTimestamp": 1704067200000,
                "data": _gzip_b64(_subscription(records[2:], "stream-b")),
            },
            {
                "recordId": "49546986683135544286507457936321625675700192471156785156",
                "approximateArrivalTimestamp": 1704067200000,
                "data": _gzip_b64(_CONTROL),
            },
        ],
    }
    return Fixture([batch], records)


def _kinesis_record(data: str, n: int) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": f"key-{n}",
            "sequenceNumber": f"4959031477432740934127580389880059713426731856283{n:05d}",
            "data": data,
            "approximateArrivalTimestamp": 1704067200.5,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:4959031477432740934127580389880059713426731856283{n:05d}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/ciwatch-reader",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/cloudtrail",
    }


def kinesis() -> Fixture:
    records = published("cloudtrail", 4, skip=70)
    plain = [base64.b64encode(_json(r).encode()).decode() for r in records[:2]]
    via_logs = _gzip_b64(_subscription(records[2:], "stream-k"))
    items = [_kinesis_record(data, n) for n, data in enumerate([*plain, via_logs])]
    return Fixture([{"Records": items}], records)


def _pubsub_message(record: Any, n: int) -> dict[str, Any]:
    return {
        "data": base64.b64encode(_json(record).encode()).decode(),
        "attributes": {"logging.googleapis.com/timestamp": "2024-01-01T00:00:00Z"},
        "messageId": str(1000 + n),
        "publishTime": "2024-01-01T00:00:01.000Z",
    }


def pubsub() -> Fixture:
    # Cloud Logging sinks publish LogEntry records; GKE's among them become k8s_audit events.
    pushed = published("gcp_audit", 3, skip=20) + published("k8s_audit", 1, skip=8)
    pulled = published("gcp_audit", 2, skip=40) + published("okta_system_log", 1, skip=12)
    push = [
        {"message": _pubsub_message(r, n), "subscription": "projects/p/subscriptions/ciwatch"}
        for n, r in enumerate(pushed)
    ]
    pull = {
        "receivedMessages": [
            {"ackId": f"ack-{n}", "message": _pubsub_message(r, 10 + n)}
            for n, r in enumerate(pulled)
        ]
    }
    return Fixture([*push, pull], pushed + pulled)


def _connect_schema(value: Any) -> dict[str, Any]:
    """The JsonConverter schema of a JSON value (struct, array, string, int64, ...)."""
    if isinstance(value, Mapping):
        fields = [{**_connect_schema(v), "field": k} for k, v in value.items()]
        return {"type": "struct", "fields": fields, "optional": True}
    if isinstance(value, list):
        return {
            "type": "array",
            "items": _connect_schema(value[0] if value else ""),
            "optional": True,
        }
    kinds: list[tuple[type, str]] = [(bool, "boolean"), (int, "int64"), (float, "double")]
    kind = next((name for cls, name in kinds if isinstance(value, cls)), "string")
    return {"type": kind, "optional": True}


def kafka_connect() -> Fixture:
    github = published("github_audit", 2, skip=14)
    structs = [{"schema": _connect_schema(r), "payload": r} for r in github]
    azure = published("azure_entra_id", 1, skip=5)
    strings = [
        {"schema": {"type": "string", "optional": False}, "payload": _json(r)} for r in azure
    ]
    return Fixture(structs + strings, github + azure)


def cloudtrail_lookup() -> Fixture:
    records = published("cloudtrail", 3, skip=60, need="eventID")
    entries = [
        {
            "EventId": r["eventID"],
            "EventName": r["eventName"],
            "ReadOnly": str(r.get("readOnly", "false")).lower(),
            "EventTime": r["eventTime"],
            "EventSource": r.get("eventSource", ""),
            "Username": (r.get("userIdentity") or {}).get("userName", ""),
            "Resources": [],
            "CloudTrailEvent": _json(r),
        }
        for r in records
    ]
    return Fixture([{"Events": entries}], records)


def _lake_text(value: Any) -> str:
    """A column value as the Lake's query engine returns it: text, structs as ``{k=v, ...}``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k.lower()}={_lake_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_lake_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def cloudtrail_lake() -> Fixture:
    records = published("cloudtrail", 3, skip=70, need="eventID")
    rows = [
        [
            {
                k.lower(): (
                    r[k].replace("T", " ").replace("Z", ".000")
                    if k == "eventTime"
                    else _lake_text(r[k])
                )
            }
            for k in r
        ]
        for r in records
    ]
    page = {
        "QueryStatus": "FINISHED",
        "QueryStatistics": {"ResultsCount": 3, "TotalResultsCount": 3, "BytesScanned": 4096},
        "QueryResultRows": rows,
    }
    return Fixture([page], records)


def cloudtrail_digest() -> Fixture:
    digest = {
        "awsAccountId": "123456789012",
        "digestStartTime": "2024-01-01T00:00:00Z",
        "digestEndTime": "2024-01-01T01:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "digestS3Object": "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2024/01/01/"
        "123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20240101T010000Z.json.gz",
        "digestPublicKeyFingerprint": "00000000000000000000000000000000",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": "2024-01-01T00:59:00Z",
        "oldestEventTime": "2024-01-01T00:01:00Z",
        "previousDigestS3Bucket": "trail-bucket",
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [
            {
                "s3Bucket": "trail-bucket",
                "s3Object": "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/01/log.json.gz",
                "hashValue": "00",
                "hashAlgorithm": "SHA-256",
                "newestEventTime": "2024-01-01T00:59:00Z",
                "oldestEventTime": "2024-01-01T00:01:00Z",
            }
        ],
    }
    return Fixture([digest], [])


FIXTURES: dict[str, Callable[[], Fixture]] = {
    "cloudtrail_s3": cloudtrail_s3,
    "azure_diagnostic": azure_diagnostic,
    "wazuh": wazuh,
    "logstash": logstash,
    "logstash_cloudtrail": logstash_cloudtrail,
    "fluent": fluent,
    "vector": vector,
    "splunk_hec": splunk_hec,
    "eventbridge": eventbridge,
    "cloudwatch_logs": cloudwatch_logs,
    "firehose": firehose,
    "kinesis": kinesis,
    "pubsub": pubsub,
    "kafka_connect": kafka_connect,
    "cloudtrail_lookup": cloudtrail_lookup,
    "cloudtrail_lake": cloudtrail_lake,
    "cloudtrail_digest": cloudtrail_digest,
}


def fixture_text(name: str) -> str:
    """The fixture file's content: one envelope document per line."""
    return "".join(_json(doc) + "\n" for doc in FIXTURES[name]().documents)


def main() -> None:
    FIXTURES_DIR.mkdir(parents=True, exist_ok=True)
    for name in FIXTURES:
        (FIXTURES_DIR / f"{name}.jsonl").write_text(fixture_text(name), encoding="utf-8")


if __name__ == "__main__":
    main()
