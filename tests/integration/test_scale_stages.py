"""`ciwatch run` scaled out into keyed stages on a real broker: exactly replay's alerts.

A six-partition backlog of a generated world (with a password spray, whose
victims cross from the IP stage to the actor stage as notes) is caught up by
the stages (detector.scale.stage): once in one run, and once with the process
killed (SIGKILL: no clean save) once a snapshot is on a changelog, and restarted
from the changelogs. Each delivers the alert
ids `ciwatch replay` raises on the same records; alerts sent again after a kill
keep their ids. Two replicas of one group, one killed: the other takes over
its partitions with their state and processes every record.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from detector.errors import SourceError
from detector.scale.changelog import Changelog
from detector.scale.topology import Topology
from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import (
    Daemon,
    delivered_ids,
    expected_ids,
    loop_cpu,
    metrics,
    read_alerts,
    scrape,
    total,
    wait_for,
    write_config,
)
from tests.integration.test_daemon_partitions import PARTITIONS, produce_round_robin
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

QUIET_S = 6.0
"""No record processed for this long, nothing held: caught up (a merge wait is 2 s)."""


def scaled_config(
    broker: EmbeddedBroker,
    topic: str,
    port: int,
    webhook: str,
    directory: Path,
    client: str = "kafka-python",
) -> Path:
    config = write_config(directory / "ciwatch.yaml", broker, topic, port, webhook, client=client)
    scale = f"  scale: {{enabled: true, partitions: {PARTITIONS}, topic_prefix: '{topic}'}}\n"
    config.write_text(config.read_text().replace("service:\n", f"service:\n{scale}", 1))
    return config


def consumed(port: int, topic: str | None = None) -> float:
    """Records the process processed (of ``topic``, or of every topic); 0 before it is up."""
    try:
        _, text = scrape(port)
    except httpx.TransportError:
        return 0.0
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "ciwatch_records_consumed"
        for sample in family.samples
        if sample.name.endswith("_total") and topic in (None, sample.labels["topic"])
    )


def quiet(port: int) -> Callable[[], bool]:
    """A condition: the process consumed nothing new for :data:`QUIET_S` and holds nothing."""
    last = {"count": -1.0, "since": time.monotonic()}

    def check() -> bool:
        now, count = time.monotonic(), consumed(port)
        if count != last["count"]:
            last.update(count=count, since=now)
            return False
        try:
            buffered = total(metrics(port), "ciwatch_merge_buffered_records")
        except httpx.TransportError:
            return False
        return buffered == 0 and now - last["since"] >= QUIET_S

    return check


def backlog(
    broker: EmbeddedBroker,
    world: list[bytes],
    tmp_path: Path,
    receiver: Receiver,
    topic: str,
    client: str = "kafka-python",
) -> tuple[Path, int, set[str]]:
    broker.create_topics([topic], partitions=PARTITIONS)
    port = free_port()
    config = scaled_config(broker, topic, port, receiver.url, tmp_path, client)
    expected = expected_ids(config, world, tmp_path)
    assert len(expected) >= 16
    produce_round_robin(broker, topic, world)  # the backlog is there before the stages start
    return config, port, expected


CLIENTS = pytest.mark.parametrize("client", ["kafka-python", "confluent"])


@CLIENTS
def test_the_stages_catch_up_a_backlog_and_raise_what_replay_raises(
    broker: EmbeddedBroker, world: list[bytes], tmp_path: Path, receiver: Receiver, client: str
) -> None:
    topic = f"events-scale-backlog-{client}"
    config, port, expected = backlog(broker, world, tmp_path, receiver, topic, client)
    started = time.monotonic()
    daemon = Daemon(config)
    wait_for(lambda: consumed(port, topic) == len(world), "every source record processed")
    wait_for(lambda: delivered_ids(tmp_path / "alerts.jsonl") >= expected, "replay's alerts")
    wait_for(quiet(port), "the stages caught up")
    elapsed = time.monotonic() - started - QUIET_S
    found = metrics(port)
    stages = loop_cpu(port)
    assert daemon.stop() == 0
    assert stages["produce"] > 0 and stages["detect"] > 0  # the stages handed on, and detected
    records = total(found, "ciwatch_records_consumed")
    print(f"scaled ({client}): {len(world)} source records, {records:.0f} records over all topics"
          f" in {elapsed:.1f}s: {len(world) / elapsed:.0f} source records/s;"
          f" late {total(found, 'ciwatch_late_events')}")  # fmt: skip
    assert delivered_ids(tmp_path / "alerts.jsonl") == expected
    assert receiver.first_sends() == expected
    assert total(found, "ciwatch_late_events") == 0
    assert "scale-out: stages ip → actor" in daemon.log.read_text()


# It timed out once in CI (the restarted replica delivered not every id within the wait), as
# kafka-python 3.0 could lose a group join that completed between two polls and rejoin for
# ever; KafkaSource now completes such a join (detector/sources/kafka_python_fixes.py).
@CLIENTS
def test_a_killed_and_restarted_replica_resumes_from_the_changelogs(
    broker: EmbeddedBroker, world: list[bytes], tmp_path: Path, receiver: Receiver, client: str
) -> None:
    topic = f"events-scale-killed-{client}"
    config, port, expected = backlog(broker, world, tmp_path, receiver, topic, client)
    alerts = tmp_path / "alerts.jsonl"
    first = Daemon(config)
    wait_for(lambda: len(delivered_ids(alerts)) >= len(expected) // 3, "a third of the alerts")
    # A small world can be read whole within the first snapshot's second: wait for one.
    wait_for(lambda: snapshot_saved(broker, topic), "a snapshot on a changelog")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    sent_before = len(read_alerts(alerts))
    first_log = len(first.log.read_bytes())
    second = Daemon(config)

    def restored() -> bool:  # state came back from the changelogs
        return b"restored generation" in second.log.read_bytes()[first_log:]

    # The killed replica's group membership holds its partitions until its session ends:
    # with every alert delivered before the kill, only the restore says the second has them.
    wait_for(restored, "the second replica's tasks restored from the changelogs")
    wait_for(lambda: delivered_ids(alerts) >= expected, "replay's alerts after the restart")
    wait_for(quiet(port), "the stages caught up")
    assert second.stop() == 0
    print(f"{sent_before} alerts before the kill; {len(read_alerts(alerts))} in all")
    assert delivered_ids(alerts) == expected


def snapshot_saved(broker: EmbeddedBroker, topic: str) -> bool:
    """Whether a stage's changelog holds a complete snapshot, read as a replica restores it."""
    for name in Topology(topic, ("ip", "actor"), PARTITIONS).changelogs:
        changelog = Changelog({"bootstrap_servers": broker.bootstrap}, name)
        try:
            if any(changelog.restore(partition) for partition in range(PARTITIONS)):
                return True
        except SourceError:  # a snapshot being written: the next look finds it whole
            pass
        finally:
            changelog.close()
    return False


def committed(broker: EmbeddedBroker, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offsets on ``topic``, per partition (read, never joining it)."""
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    try:
        return {p: reader.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        reader.close(autocommit=False)


@CLIENTS
def test_a_killed_replicas_partitions_and_state_move_to_the_other(
    broker: EmbeddedBroker, world: list[bytes], tmp_path: Path, receiver: Receiver, client: str
) -> None:
    """Two replicas of one group, one SIGKILLed: the other restores its tasks and reads all.

    The two catch up the backlog at their own pace and hand each stage their
    events hours apart; the producers' marks put them back in event time, so
    the alerts are replay's. The survivor restores the killed replica's tasks
    with what their reorders held and reads on after the last record read; what
    those tasks handed on after their last snapshot is handed on again, and
    counts as late where the next stage is past it by more than the duplicate
    window (printed, with the survivor's count at the kill, not asserted).
    """
    topic = f"events-scale-replicas-{client}"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    broker.create_topics([topic], partitions=PARTITIONS)
    port, second_port = free_port(), free_port()
    config = scaled_config(broker, topic, port, receiver.url, first_dir, client)
    second_config = scaled_config(broker, topic, second_port, receiver.url, second_dir, client)
    expected = expected_ids(config, world, tmp_path)
    produce_round_robin(broker, topic, world)
    first, second = Daemon(config), Daemon(second_config)
    actors = f"{topic}.by-actor"

    def both_at_work() -> bool:  # each processed (so saved) actor-stage tasks
        return consumed(port, actors) > 0 and consumed(second_port, actors) > 0

    wait_for(both_at_work, "both replicas at work in the actor stage")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    late_at_kill = total(metrics(second_port), "ciwatch_late_events")

    def restored() -> set[str]:
        return set(re.findall(r"changelog (\S+\[\d+\]): restored", second.log.read_text()))

    # It may be done with its own partitions before the group notices the kill.
    wait_for(lambda: bool(restored()), "the killed replica's tasks restored by the other")
    ends = {p: len(range(p, len(world), PARTITIONS)) for p in range(PARTITIONS)}
    group = f"{topic}-group"
    wait_for(lambda: committed(broker, group, topic) == ends, "every source record committed")
    wait_for(quiet(second_port), "the surviving replica caught up")
    found = metrics(second_port)
    assert second.stop() == 0
    late = total(found, "ciwatch_late_events")
    print(
        f"survivor restored {len(restored())} partitions; late {late} ({late_at_kill} at the kill)"
    )
    alerts = delivered_ids(first_dir / "alerts.jsonl") | delivered_ids(second_dir / "alerts.jsonl")
    assert alerts == expected
