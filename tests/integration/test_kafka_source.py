"""The Kafka source against a real broker: consumer groups, commits, restarts, mixed topics.

Every test runs on both clients (``service.kafka.client``): kafka-python and
confluent-kafka must keep the same contract.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer

from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.broker import EmbeddedBroker
from detector.sources.factory import ConsumerSource, open_source
from detector.sources.files import FileSource
from detector.sources.kafka import KafkaClient, KafkaSettings
from detector.sources.record import RawRecord, next_offsets
from tests.samples import load_samples

pytestmark = pytest.mark.integration

CLIENTS: list[KafkaClient] = ["kafka-python", "confluent"]

WAIT_S = 60.0


def vendor_lines(*names: str) -> list[bytes]:
    return [json.dumps(s.event).encode() for name in names for s in load_samples(name)]


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for index, value in enumerate(values):
        producer.send(topic, key=str(index % 7).encode(), value=value)
    producer.flush()
    producer.close()


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> KafkaClient:
    """The Kafka client library under test."""
    name: KafkaClient = request.param
    return name


def source_settings(
    broker: EmbeddedBroker, topics: list[str], group: str, client: KafkaClient = "kafka-python"
) -> KafkaSettings:
    # This broker makes a group join take about half the session timeout: keep it short.
    return KafkaSettings(
        client=client,
        bootstrap_servers=[broker.bootstrap],
        topics=topics,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def kafka_source(
    broker: EmbeddedBroker, topics: list[str], group: str, client: KafkaClient
) -> ConsumerSource:
    # Each client its own group: both run the same scenario on the same broker.
    return open_source(source_settings(broker, topics, f"{group}-{client}", client))


def consume_until(
    source: ConsumerSource, done: Callable[[list[RawRecord]], bool], *, commit: bool = True
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


def drain(source: ConsumerSource, quiet_s: float = 2.0) -> list[RawRecord]:
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
    broker: EmbeddedBroker, client: KafkaClient
) -> None:
    values = vendor_lines("github_audit", "okta_system_log")
    topics = [f"restart-a-{client}", f"restart-b-{client}"]
    broker.create_topics(topics, partitions=3)
    produce(broker, topics[0], values[:100])
    produce(broker, topics[1], values[100:])

    with kafka_source(broker, topics, "restart-group", client) as first:
        before = consume_until(first, lambda seen: len(seen) >= len(values) // 2)
    with kafka_source(broker, topics, "restart-group", client) as second:
        after = consume_until(second, lambda seen: len(before) + len(seen) >= len(values))
        after += drain(second)

    assert len(set(keys(before)) & set(keys(after))) == 0, "a committed record came again"
    assert len(keys(before + after)) == len(set(keys(before + after))) == len(values)
    assert sorted(r.value for r in before + after) == sorted(values)


def test_uncommitted_records_are_delivered_again(
    broker: EmbeddedBroker, client: KafkaClient
) -> None:
    values = [json.dumps({"n": n}).encode() for n in range(30)]
    topic = f"redeliver-{client}"
    broker.create_topics([topic], partitions=1)
    produce(broker, topic, values)
    with kafka_source(broker, [topic], "redeliver-group", client) as first:
        consume_until(first, lambda seen: len(seen) >= 30, commit=False)
    with kafka_source(broker, [topic], "redeliver-group", client) as second:
        again = consume_until(second, lambda seen: len(seen) >= 30)
    assert [r.value for r in again] == values


def test_kafka_output_equals_file_output_for_mixed_sources(
    broker: EmbeddedBroker, tmp_path: Path, client: KafkaClient
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
    topic = f"mixed-{client}"
    broker.create_topics([topic], partitions=2)
    produce(broker, topic, values)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(values) + b"\n")
    normalizer = Normalizer(Taxonomy.bundled())

    with kafka_source(broker, [topic], "mixed-group", client) as source:
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
    broker: EmbeddedBroker, client: KafkaClient
) -> None:
    values = [json.dumps({"n": n}).encode() for n in range(40)]
    topic = f"moved-{client}"
    broker.create_topics([topic], partitions=2)
    produce(broker, topic, values)
    with kafka_source(broker, [topic], "moved-group", client) as other_replica:
        handled = consume_until(other_replica, lambda seen: len(seen) == len(values))
    committed = next_offsets(record.position for record in handled)
    snapshot = {(topic, 0): committed[(topic, 0)] - 5}  # lists partition 0 only
    settings = source_settings(broker, [topic], f"moved-group-{client}", client)
    with open_source(settings, start_at=snapshot) as restarted:
        again = consume_until(restarted, lambda seen: len(seen) >= 5) + drain(restarted)
    # Partition 0 is re-read from the snapshot; partition 1 is not read from its start.
    assert {record.position.partition for record in again} == {0}
    assert len(again) == 5


def produce_to(broker: EmbeddedBroker, topic: str, partition: int, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for value in values:
        producer.send(topic, value=value, partition=partition)
    producer.flush()
    producer.close()


def poll_until(source: ConsumerSource, done: Callable[[], bool], what: str) -> list[RawRecord]:
    """Poll (without committing) until ``done`` holds; what the polls returned."""
    seen: list[RawRecord] = []
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        seen.extend(source.poll(max_records=100, timeout_s=0.2))
    return seen


def test_caught_up_paused_and_unread_partitions_behave_alike_on_both_clients(
    broker: EmbeddedBroker, client: KafkaClient
) -> None:
    topic = f"merge-contract-{client}"
    broker.create_topics([topic], partitions=2)
    values = [json.dumps({"n": n}).encode() for n in range(20)]
    produce_to(broker, topic, 0, values)  # partition 1 stays empty
    with kafka_source(broker, [topic], "merge-contract", client) as source:
        seen = consume_until(source, lambda seen: len(seen) >= len(values))
        poll_until(source, lambda: not source.unfinished(), "both partitions caught up")
        assert source.assigned() == {(topic, 0), (topic, 1)}
        assert {(tp.topic, tp.partition) for tp in source.lag()} == source.assigned()
    assert [r.value for r in seen] == values
    # A restart where the group committed everything: finished without reading a record.
    with kafka_source(broker, [topic], "merge-contract", client) as source:
        idle = poll_until(
            source, lambda: bool(source.assigned()) and not source.unfinished(), "caught up"
        )
        assert idle == []
        produce_to(broker, topic, 0, values[:5])
        produce_to(broker, topic, 1, values[5:10])
        source.pause_only([(topic, 0)])
        from_1 = consume_until(source, lambda seen: len(seen) >= 5, commit=False)
        from_1 += drain(source, quiet_s=1.0)
        assert {r.position.partition for r in from_1} == {1}, "a paused partition was read"
        source.pause_only([])
        from_0 = consume_until(source, lambda seen: len(seen) >= 5, commit=False)
        assert [r.value for r in from_0] == values[:5]
        source.unread(from_0[2:])
        again = consume_until(source, lambda seen: len(seen) >= 3, commit=False)
        assert [r.position.offset for r in again] == [r.position.offset for r in from_0[2:]]
        poll_until(source, lambda: not source.unfinished(), "caught up again")
