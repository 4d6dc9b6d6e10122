"""The Kafka source against a real broker: consumer groups, commits, restarts, mixed topics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer

from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.base import Source
from detector.sources.broker import EmbeddedBroker
from detector.sources.files import FileSource
from detector.sources.kafka import KafkaSettings, KafkaSource
from detector.sources.record import RawRecord, next_offsets
from tests.samples import load_samples

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def vendor_lines(*names: str) -> list[bytes]:
    return [json.dumps(s.event).encode() for name in names for s in load_samples(name)]


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for index, value in enumerate(values):
        producer.send(topic, key=str(index % 7).encode(), value=value)
    producer.flush()
    producer.close()


def source_settings(broker: EmbeddedBroker, topics: list[str], group: str) -> KafkaSettings:
    # This broker makes a group join take about half the session timeout: keep it short.
    return KafkaSettings(
        bootstrap_servers=[broker.bootstrap],
        topics=topics,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def kafka_source(broker: EmbeddedBroker, topics: list[str], group: str) -> KafkaSource:
    return KafkaSource(source_settings(broker, topics, group))


def consume_until(
    source: Source, done: Callable[[list[RawRecord]], bool], *, commit: bool = True
) -> list[RawRecord]:
    """Poll whole batches, committing each, until ``done`` holds or the wait runs out."""
    seen: list[RawRecord] = []
    deadline = time.monotonic() + WAIT_S
    while not done(seen):
        assert time.monotonic() < deadline, f"only {len(seen)} records within {WAIT_S}s"
        batch = source.poll(max_records=100, timeout_s=0.5)
        seen.extend(batch)
        if commit:
            source.commit(r.position for r in batch)
    return seen


def drain(source: Source, quiet_s: float = 2.0) -> list[RawRecord]:
    """Whatever still arrives until the topic has been quiet for ``quiet_s``."""
    extra: list[RawRecord] = []
    quiet_until = time.monotonic() + quiet_s
    while time.monotonic() < quiet_until:
        batch = source.poll(max_records=100, timeout_s=0.2)
        if batch:
            extra.extend(batch)
            quiet_until = time.monotonic() + quiet_s
    return extra


def keys(records: list[RawRecord]) -> list[tuple[str, int | None, int]]:
    return [(r.position.stream, r.position.partition, r.position.offset) for r in records]


def test_restart_resumes_after_commits_without_duplicates_or_gaps(
    broker: EmbeddedBroker,
) -> None:
    values = vendor_lines("github_audit", "okta_system_log")
    broker.create_topics(["restart-a", "restart-b"], partitions=3)
    produce(broker, "restart-a", values[:100])
    produce(broker, "restart-b", values[100:])

    with kafka_source(broker, ["restart-a", "restart-b"], "restart-group") as first:
        before = consume_until(first, lambda seen: len(seen) >= len(values) // 2)
    with kafka_source(broker, ["restart-a", "restart-b"], "restart-group") as second:
        after = consume_until(second, lambda seen: len(before) + len(seen) >= len(values))
        after += drain(second)

    assert len(set(keys(before)) & set(keys(after))) == 0, "a committed record came again"
    assert len(keys(before + after)) == len(set(keys(before + after))) == len(values)
    assert sorted(r.value for r in before + after) == sorted(values)


def test_uncommitted_records_are_delivered_again(broker: EmbeddedBroker) -> None:
    values = [json.dumps({"n": n}).encode() for n in range(30)]
    broker.create_topics(["redeliver"], partitions=1)
    produce(broker, "redeliver", values)
    with kafka_source(broker, ["redeliver"], "redeliver-group") as first:
        consume_until(first, lambda seen: len(seen) >= 30, commit=False)
    with kafka_source(broker, ["redeliver"], "redeliver-group") as second:
        again = consume_until(second, lambda seen: len(seen) >= 30)
    assert [r.value for r in again] == values


def test_kafka_output_equals_file_output_for_mixed_sources(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    values = vendor_lines(
        "github_audit",
        "gitlab_audit",
        "k8s_audit",
        "okta_system_log",
        "cloudtrail",
        "azure_entra_id",
    )
    values.append(b"{not json")
    broker.create_topics(["mixed"], partitions=2)
    produce(broker, "mixed", values)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(values) + b"\n")
    normalizer = Normalizer(Taxonomy.bundled())

    with kafka_source(broker, ["mixed"], "mixed-group") as source:
        from_kafka = normalizer.normalize_batch(
            consume_until(source, lambda seen: len(seen) >= len(values))
        )
    with FileSource([path]) as files:
        from_file = normalizer.normalize_batch(r for batch in files.batches() for r in batch)

    def comparable(items: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps({**i, "position": None}, sort_keys=True) for i in items)

    # Some published samples are fragments (no time, no actor): they are dead letters on both paths.
    assert len(from_kafka.events) == len(from_file.events) > len(values) // 2
    assert comparable([e.to_dict() for e in from_kafka.events]) == comparable(
        [e.to_dict() for e in from_file.events]
    )
    assert comparable([d.to_dict() for d in from_kafka.dead_letters]) == comparable(
        [d.to_dict() for d in from_file.dead_letters]
    )


def test_a_partition_missing_from_the_snapshot_resumes_at_the_committed_offset(
    broker: EmbeddedBroker,
) -> None:
    values = [json.dumps({"n": n}).encode() for n in range(40)]
    broker.create_topics(["moved"], partitions=2)
    produce(broker, "moved", values)
    with kafka_source(broker, ["moved"], "moved-group") as other_replica:
        handled = consume_until(other_replica, lambda seen: len(seen) == len(values))
    committed = next_offsets(record.position for record in handled)
    snapshot = {("moved", 0): committed[("moved", 0)] - 5}  # lists partition 0 only
    settings = source_settings(broker, ["moved"], "moved-group")
    with KafkaSource(settings, start_at=snapshot) as restarted:
        again = consume_until(restarted, lambda seen: len(seen) >= 5) + drain(restarted)
    # Partition 0 is re-read from the snapshot; partition 1 is not read from its start.
    assert {record.position.partition for record in again} == {0}
    assert len(again) == 5
