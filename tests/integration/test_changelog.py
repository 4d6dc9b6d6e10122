"""The state changelog against a real broker: chunked snapshots, two slots, crash safety."""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from detector.errors import ConfigError, SourceError
from detector.scale.changelog import Changelog, ChangelogSettings, ensure_topics
from detector.sources.broker import EmbeddedBroker
from detector.sources.kafka import KafkaSettings

pytestmark = pytest.mark.integration

WAIT_S = 30.0
CHUNK = 1024


def make_state(seed: int, actors: int) -> dict[str, Any]:
    """A state shaped like a pipeline snapshot: per-actor counters and hex ids (compress ~2x)."""
    rng = random.Random(seed)
    return {
        "format": 1,
        "actors": {
            f"user{n}": {
                "events": rng.randrange(10_000),
                "repos": [rng.randbytes(8).hex() for _ in range(4)],
                "last_seen": f"2024-05-{rng.randrange(1, 29):02d}T10:00:00Z",
            }
            for n in range(actors)
        },
    }


@pytest.fixture
def connection(broker: EmbeddedBroker) -> dict[str, Any]:
    return KafkaSettings(
        bootstrap_servers=[broker.bootstrap], topics=["unused"]
    ).connection_config()


@pytest.fixture
def changelog_topic(
    broker: EmbeddedBroker, connection: dict[str, Any], request: pytest.FixtureRequest
) -> str:
    name = f"changelog-{request.node.name}"
    ensure_topics(connection, {name: 2}, compacted=[name])
    return name


@pytest.fixture
def changelog(connection: dict[str, Any], changelog_topic: str) -> Iterator[Changelog]:
    opened = Changelog(connection, changelog_topic, chunk_bytes=CHUNK)
    yield opened
    opened.close()


def records(broker: EmbeddedBroker, topic: str, partition: int) -> list[tuple[bytes, bytes]]:
    """Every (key, value) in the partition, in order, read until its end offset."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    tp = TopicPartition(topic, partition)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    end = consumer.end_offsets([tp])[tp]
    found: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + WAIT_S
    while consumer.position(tp) < end:
        assert time.monotonic() < deadline, f"read only {len(found)} records within {WAIT_S}s"
        for batch in consumer.poll(timeout_ms=500).values():
            found.extend((message.key, message.value) for message in batch)
    consumer.close()
    return found


def produce(broker: EmbeddedBroker, topic: str, partition: int, items: dict[bytes, bytes]) -> None:
    """Write raw records to the changelog, as a crashed or foreign writer would have."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for key, value in items.items():
        producer.send(topic, key=key, value=value, partition=partition)
    producer.flush(timeout=WAIT_S)
    producer.close()


def test_a_multi_chunk_state_round_trips(
    changelog: Changelog, broker: EmbeddedBroker, changelog_topic: str
) -> None:
    state = make_state(seed=1, actors=400)
    assert len(orjson.dumps(state)) > 40_000
    changelog.save(0, state, offset=1_234)
    assert changelog.restore(0) == (state, 1_234)
    keys = [key for key, _ in records(broker, changelog_topic, 0)]
    chunks = len(zlib.compress(orjson.dumps(state), 1)) // CHUNK
    assert keys[-1] == b"manifest"
    assert keys[:-1] == [f"A/{n}".encode() for n in range(len(keys) - 1)]
    assert len(keys) - 1 > chunks > 10  # many chunks, each at most CHUNK bytes
    assert all(len(value) <= CHUNK for _, value in records(broker, changelog_topic, 0))


def test_the_newest_of_several_saves_wins_and_keys_stay_bounded(
    changelog: Changelog, connection: dict[str, Any], broker: EmbeddedBroker, changelog_topic: str
) -> None:
    states = [make_state(seed=n, actors=100 + 50 * n) for n in range(4)]
    for n, state in enumerate(states):
        changelog.save(0, state, offset=100 * n)
        assert changelog.restore(0) == (state, 100 * n)
    fresh = Changelog(connection, changelog_topic, chunk_bytes=CHUNK)
    assert fresh.restore(0) == (states[-1], 300)
    fresh.close()
    keys = {key.decode() for key, _ in records(broker, changelog_topic, 0)}
    assert {key.split("/")[0] for key in keys} == {"A", "B", "manifest"}


def test_a_save_interrupted_before_its_manifest_leaves_the_previous_snapshot(
    changelog: Changelog, connection: dict[str, Any], broker: EmbeddedBroker, changelog_topic: str
) -> None:
    before = make_state(seed=2, actors=200)
    changelog.save(1, before, offset=50)  # slot A, generation 1
    # The next save writes slot B; a crash after its chunks leaves them without a manifest.
    torn = {f"B/{n}".encode(): (2).to_bytes(8, "big") + b"x" * 900 for n in range(30)}
    produce(broker, changelog_topic, 1, torn)
    restarted = Changelog(connection, changelog_topic, chunk_bytes=CHUNK)
    assert restarted.restore(1) == (before, 50)
    after = make_state(seed=3, actors=150)
    restarted.save(1, after, offset=80)  # overwrites slot B, then names it
    restarted.close()
    assert changelog.restore(1) == (after, 80)


def test_a_partition_never_saved_restores_to_none(changelog: Changelog) -> None:
    assert changelog.restore(1) is None


def test_partitions_are_independent(changelog: Changelog) -> None:
    first, second, third = (make_state(seed=n, actors=60) for n in (10, 11, 12))
    changelog.save(0, first, offset=7)
    changelog.save(1, second, offset=9)
    changelog.save(0, third, offset=8)
    assert changelog.restore(0) == (third, 8)
    assert changelog.restore(1) == (second, 9)


def test_chunks_of_another_generation_are_an_error_naming_topic_and_partition(
    changelog: Changelog, broker: EmbeddedBroker, changelog_topic: str
) -> None:
    changelog.save(0, make_state(seed=4, actors=50), offset=1)  # slot A, generation 1
    produce(broker, changelog_topic, 0, {b"A/0": (7).to_bytes(8, "big") + b"stale"})
    with pytest.raises(SourceError, match=rf"{changelog_topic}\[0\].*generation 7"):
        changelog.restore(0)


def test_a_corrupt_chunk_fails_the_checksum(
    changelog: Changelog, broker: EmbeddedBroker, changelog_topic: str
) -> None:
    changelog.save(1, make_state(seed=5, actors=50), offset=1)
    produce(broker, changelog_topic, 1, {b"A/0": (1).to_bytes(8, "big") + b"flipped"})
    with pytest.raises(SourceError, match=rf"{changelog_topic}\[1\].*checksum"):
        changelog.restore(1)


def test_ensure_topics_creates_missing_topics_and_refuses_a_partition_mismatch(
    broker: EmbeddedBroker, connection: dict[str, Any]
) -> None:
    wanted = {"ensure-input": 3, "ensure-changelog": 3}
    ensure_topics(connection, wanted, compacted=["ensure-changelog"])
    ensure_topics(connection, wanted, compacted=["ensure-changelog"])  # existing: no change
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    described = admin.describe_topics(list(wanted))
    assert {topic["name"]: len(topic["partitions"]) for topic in described} == wanted
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted]
    configs = admin.describe_configs(resources, config_filter="all")["topic"]
    admin.close()
    assert configs["ensure-changelog"]["cleanup.policy"]["value"] == "compact"
    assert configs["ensure-changelog"]["segment.bytes"]["value"] == str(64 * 1024 * 1024)
    assert configs["ensure-input"].get("cleanup.policy", {}).get("value") != "compact"
    with pytest.raises(ConfigError, match="topic ensure-changelog: has 3 partitions, 5 expected"):
        ensure_topics(connection, {"ensure-changelog": 5})


def test_chunk_bytes_below_one_kibibyte_is_refused() -> None:
    with pytest.raises(ValueError, match="chunk_bytes"):
        ChangelogSettings(chunk_bytes=512)


def test_save_and_restore_timing_of_a_five_megabyte_state(
    connection: dict[str, Any], changelog_topic: str
) -> None:
    """Not asserted: prints how long a 5 MB state takes (the README quotes it)."""
    state = make_state(seed=6, actors=33_000)
    size = len(orjson.dumps(state))
    changelog = Changelog(connection, changelog_topic)
    started = time.perf_counter()
    changelog.save(0, state, offset=1)
    saved = time.perf_counter()
    changelog.close()
    reader = Changelog(connection, changelog_topic)
    restored = reader.restore(0)
    done = time.perf_counter()
    reader.close()
    compressed = len(zlib.compress(orjson.dumps(state), 1))
    print(f"changelog: {size / 1e6:.1f} MB state ({compressed / 1e6:.1f} MB compressed):"
          f" save {saved - started:.2f}s, restore {done - saved:.2f}s")  # fmt: skip
    assert restored == (state, 1)


def test_an_unreadable_manifest_is_an_error_and_the_next_save_replaces_it(
    changelog: Changelog, broker: EmbeddedBroker, changelog_topic: str
) -> None:
    changelog.save(0, make_state(seed=7, actors=50), offset=3)
    produce(broker, changelog_topic, 0, {b"manifest": b"{not json"})
    with pytest.raises(
        SourceError, match=rf"{changelog_topic}\[0\].*unreadable changelog manifest"
    ):
        changelog.restore(0)
    fresh = make_state(seed=8, actors=50)
    changelog.save(0, fresh, offset=4)  # the caller started afresh
    assert changelog.restore(0) == (fresh, 4)
