"""Marker: the marks a replica sends after a poll, for its vendor partitions and tasks."""

from __future__ import annotations

from datetime import UTC, datetime

from detector.assembly import build_rules
from detector.config import PipelineConfig
from detector.normalizing import build_normalizer
from detector.scale.marking import Marker
from detector.scale.tasks import Task, TaskFactory
from detector.scale.topology import ScaleSettings, Topology
from detector.scale.wire import Outgoing, read
from detector.sources.record import Position
from tests.clock import Clock, at

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEVER = datetime.min.replace(tzinfo=UTC)
CONFIG = PipelineConfig()
RULES = build_rules(CONFIG)
TOPOLOGY = Topology.plan(ScaleSettings(enabled=True, partitions=3), RULES, models=False)
IP = TOPOLOGY.topic("ip")
ACTOR = TOPOLOGY.topic("actor")
VENDOR = ("vendor", 0)
Partition = tuple[str, int]
Mark = tuple[str, str, int, datetime, bool]
"""(topic, producer, partition, time, idle)."""


def decoded(outgoing: list[Outgoing]) -> list[Mark]:
    found = []
    for record in outgoing:
        assert record.partition is not None  # a mark goes to every partition by number
        mark = read(record.value, Position(record.topic, 0, record.partition))
        assert mark.item is None and record.time == mark.time
        found.append((record.topic, mark.producer, record.partition, mark.time, mark.idle))
    return found


def everywhere(topic: str, producer: str, time: datetime, *, idle: bool = False) -> list[Mark]:
    return [(topic, producer, p, time, idle) for p in range(TOPOLOGY.partitions)]


def tasks() -> dict[Partition, Task]:
    factory = TaskFactory(CONFIG, TOPOLOGY, RULES, build_normalizer(CONFIG), None)
    return {(IP, 0): factory.task("ip", 0), (ACTOR, 0): factory.task("actor", 0)}


def no_watermark(partition: Partition) -> datetime | None:
    raise AssertionError(f"no task here: {partition}")


def test_a_vendor_partition_is_marked_once_its_events_were_processed() -> None:
    assert TOPOLOGY.stages == ("ip", "actor")
    other = ("vendor", 1)
    marker = Marker(TOPOLOGY, idle_after_s=10, clock=Clock())
    marker.own([VENDOR, ("vendor", 1)])
    assert marker.marks({VENDOR: False, other: False}, {}, no_watermark) == []  # none passed
    marker.passed(VENDOR, at(3))
    marker.passed(VENDOR, at(2))  # the newest counts
    sent = decoded(marker.marks({VENDOR: False, other: False}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[0]", at(3))  # each partition its own: not vendor[1]
    marker.passed(other, at(1))
    sent = decoded(marker.marks({VENDOR: False, other: False}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[1]", at(1))  # vendor[0] unchanged


def test_a_vendor_partition_is_idle_only_once_caught_up_and_quiet_for_idle_after_s() -> None:
    clock = Clock()
    marker = Marker(TOPOLOGY, idle_after_s=10, every_s=100, clock=clock)
    marker.own([VENDOR, ("vendor", 1)])
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []  # caught up, not for long
    clock.now = 9.9
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []
    clock.now = 10.0
    sent = decoded(marker.marks({VENDOR: True}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[0]", EPOCH, idle=True)  # never passed anything
    clock.now = 11.0
    marker.passed(VENDOR, at(5))  # a record came: quiet again from now
    sent = decoded(marker.marks({VENDOR: True}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[0]", at(5))
    clock.now = 20.9
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []  # unchanged
    clock.now = 21.0
    sent = decoded(marker.marks({VENDOR: True}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[0]", at(5), idle=True)
    clock.now = 22.0  # behind again: busy
    sent = decoded(marker.marks({VENDOR: False}, {}, no_watermark))
    assert sent == everywhere(IP, "vendor[0]", at(5))
    clock.now = 31.0
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []  # quiet since 22 s only
    clock.now = 32.0
    assert decoded(marker.marks({VENDOR: True}, {}, no_watermark)) == everywhere(
        IP, "vendor[0]", at(5), idle=True
    )


def test_unchanged_marks_wait_for_every_s_then_all_go_again() -> None:
    clock = Clock()
    marker = Marker(TOPOLOGY, idle_after_s=10, every_s=5, clock=clock)
    marker.own([VENDOR, ("vendor", 1)])
    owned = tasks()
    marker.passed(VENDOR, at(3))
    watermarks = {(IP, 0): at(2)}
    expected = [*everywhere(IP, "vendor[0]", at(3)), *everywhere(ACTOR, "ip/0", at(2))]
    assert decoded(marker.marks({VENDOR: False}, owned, watermarks.get)) == expected
    clock.now = 4.9
    assert marker.marks({VENDOR: False}, owned, watermarks.get) == []
    watermarks[IP, 0] = at(4)
    sent = decoded(marker.marks({VENDOR: False}, owned, watermarks.get))
    assert sent == everywhere(ACTOR, "ip/0", at(4))  # only what changed
    clock.now = 5.0
    sent = decoded(marker.marks({VENDOR: False}, owned, watermarks.get))
    assert sent == [*everywhere(IP, "vendor[0]", at(3)), *everywhere(ACTOR, "ip/0", at(4))]


def test_a_task_marks_its_partitions_watermark_idle_when_none_and_nothing_when_never() -> None:
    clock = Clock()
    marker = Marker(TOPOLOGY, idle_after_s=10, every_s=100, clock=clock)
    marker.own([VENDOR, ("vendor", 1)])
    owned = tasks()
    watermarks: dict[Partition, datetime | None] = {(IP, 0): NEVER, (ACTOR, 0): at(9)}

    def watermark(partition: Partition) -> datetime | None:
        return watermarks[partition]

    # A producer of its own not heard from yet: nothing; the actor's task: never marks.
    assert marker.marks({}, owned, watermark) == []
    watermarks[IP, 0] = at(6)
    assert decoded(marker.marks({}, owned, watermark)) == everywhere(ACTOR, "ip/0", at(6))
    watermarks[IP, 0] = None  # every producer idle, nothing held: idle at what it passed
    owned[IP, 0].passed = at(5)
    sent = decoded(marker.marks({}, owned, watermark))
    assert sent == everywhere(ACTOR, "ip/0", at(5), idle=True)
    watermarks[IP, 0] = NEVER
    assert marker.marks({}, owned, watermark) == []  # a new producer: no mark until heard


def test_a_task_that_passed_nothing_is_idle_at_the_epoch() -> None:
    marker = Marker(TOPOLOGY, idle_after_s=10, clock=Clock())
    marker.own([VENDOR, ("vendor", 1)])
    owned = {(IP, 0): tasks()[IP, 0]}
    sent = decoded(marker.marks({}, owned, lambda partition: None))
    assert sent == everywhere(ACTOR, "ip/0", EPOCH, idle=True)


def test_a_revoked_vendor_partition_is_forgotten() -> None:
    clock = Clock()
    marker = Marker(TOPOLOGY, idle_after_s=10, every_s=100, clock=clock)
    marker.own([VENDOR, ("vendor", 1)])
    marker.passed(VENDOR, at(3))
    assert marker.marks({VENDOR: True}, {}, no_watermark) != []
    marker.forget([VENDOR])
    marker.own([VENDOR])
    clock.now = 10.0  # assigned again: what it passed and its quiet time start afresh
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []
    clock.now = 20.0
    assert decoded(marker.marks({VENDOR: True}, {}, no_watermark)) == everywhere(
        IP, "vendor[0]", EPOCH, idle=True
    )


def test_vendor_partitions_not_owned_yet_are_not_marked() -> None:
    """Between a revocation and the next assignment the consumer still lists its old
    partitions, caught up as far as its stale view goes: no mark, idle or not."""
    clock = Clock()
    marker = Marker(TOPOLOGY, idle_after_s=1, every_s=100, clock=clock)
    marker.passed(VENDOR, at(3))
    clock.now = 5.0
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []
    marker.own([VENDOR])
    assert decoded(marker.marks({VENDOR: True}, {}, no_watermark)) == everywhere(
        IP, "vendor[0]", at(3)
    )  # quiet counted from this first poll after the assignment, not before
    marker.forget([VENDOR])
    clock.now = 50.0
    assert marker.marks({VENDOR: True}, {}, no_watermark) == []
