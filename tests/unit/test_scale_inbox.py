"""Inbox: the stage partitions a replica owns, read back in event time through the marks."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from detector.assembly import build_rules
from detector.config import PipelineConfig
from detector.events.model import ActorType, Category, Event, Outcome
from detector.scale.inbox import Inbox
from detector.scale.topology import ScaleSettings, Topology
from detector.scale.wire import encode_event, encode_mark, source_producer
from detector.sources.record import Position, RawRecord
from tests.clock import T0, Clock, at

NEVER = datetime.min.replace(tzinfo=UTC)
TOPOLOGY = Topology.plan(
    ScaleSettings(enabled=True, partitions=3), build_rules(PipelineConfig()), models=False
)
IP = TOPOLOGY.topic("ip")
ACTOR = TOPOLOGY.topic("actor")
Partition = tuple[str, int]


def event(minute: int) -> Event:
    return Event(
        time=at(minute),
        source="github_audit",
        action="user.login",
        category=Category.AUTHENTICATION,
        outcome=Outcome.FAILURE,
        actor="alice",
        actor_type=ActorType.HUMAN,
        id=f"e{minute}",
        ip="198.51.100.7",
    )


class Fed:
    """A source that hands out what was fed to it since the last poll."""

    def __init__(self, unfinished: set[Partition] | None = None) -> None:
        self.records: list[RawRecord] = []
        self._unfinished = unfinished or set()

    def feed(self, *records: RawRecord) -> None:
        self.records.extend(records)

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        taken, self.records = self.records[:max_records], self.records[max_records:]
        return taken

    def unfinished(self) -> set[Partition]:
        return set(self._unfinished)

    def assigned(self) -> set[Partition]:
        return set()

    def pause_only(self, partitions: Collection[Partition]) -> None:
        pass


class StagePartition:
    """Partition 0 of a stage topic: its records, numbered as they are written."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.offset = 0

    def _next(self, value: bytes) -> RawRecord:
        record = RawRecord(value, Position(self.topic, self.offset, 0))
        self.offset += 1
        return record

    def event(self, producer: str, minute: int) -> RawRecord:
        return self._next(encode_event(event(minute), {}, producer=producer))

    def mark(self, producer: str, minute: int, *, idle: bool = False) -> RawRecord:
        return self._next(encode_mark(producer, at(minute), idle=idle))

    def raw(self, value: bytes) -> RawRecord:
        return self._next(value)


def inbox(source: Fed, clock: Clock | None = None, wait_s: float = 60) -> Inbox:
    return Inbox(source, TOPOLOGY, sources={"vendor": 2}, wait_s=wait_s, clock=clock or Clock())


def minutes(box: Inbox, records: list[RawRecord]) -> list[int]:
    """The event minute of each stage record polled."""
    return [int((box.received[r.position].time - T0).total_seconds()) // 60 for r in records]


def test_interleaved_producers_come_out_in_event_time_once_all_marked_past() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    vendor = RawRecord(b"{}", Position("vendor", 0, 1))
    written = [actor.event("ip/0", 3), actor.event("ip/1", 1)]
    written += [actor.event("ip/0", 5), actor.event("ip/1", 2)]
    source.feed(*written, vendor)
    assert box.poll() == [vendor]  # a vendor record passes at once; ip/2 never heard from
    assert box.watermark((ACTOR, 0)) == NEVER
    source.feed(actor.mark("ip/0", 9), actor.mark("ip/1", 9), actor.mark("ip/2", 9))
    released = box.poll()
    assert minutes(box, released) == [1, 2, 3, 5]
    assert [r.position.offset for r in released] == [1, 3, 0, 2]
    assert len(box) == 0
    assert box.watermark((ACTOR, 0)) == at(1)  # released, not processed yet
    box.processed([r.position for r in released])
    assert box.watermark((ACTOR, 0)) == at(9)


def test_at_most_max_records_are_released_per_poll_oldest_first() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    source.feed(actor.event("ip/0", 1), actor.event("ip/1", 2))
    source.feed(actor.event("ip/0", 4), actor.event("ip/1", 5))
    source.feed(actor.mark("ip/0", 9), actor.mark("ip/1", 9))
    assert box.poll(max_records=10) == []  # ip/2 never heard from
    source.feed(actor.mark("ip/2", 0, idle=True))
    assert minutes(box, box.poll(max_records=2)) == [1, 2]
    assert minutes(box, box.poll(max_records=2)) == [4, 5]


def test_commit_points_stop_at_the_lowest_offset_held_or_unprocessed() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    source.feed(actor.event("ip/0", 3), actor.event("ip/1", 1), actor.event("ip/0", 5))
    assert box.poll() == []
    assert box.commit_points() == {(ACTOR, 0): 0}  # offset 0 is held
    assert box.commit_points() == {}  # only what moved
    source.feed(*(actor.mark(f"ip/{n}", 9) for n in range(3)))
    released = box.poll()
    assert [r.position.offset for r in released] == [1, 0, 2]
    assert box.commit_points() == {}  # released, not processed: offset 0 still holds it
    box.processed([r.position for r in released[:1]])
    assert box.commit_points() == {}
    box.processed([r.position for r in released[1:2]])  # offsets 0 and 1 processed: 2 is not
    assert box.commit_points() == {(ACTOR, 0): 2}
    box.processed([r.position for r in released[2:]])
    assert box.commit_points() == {(ACTOR, 0): 6}  # the polled end: past the marks too


def test_a_partition_that_only_read_marks_commits_past_them() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    source.feed(actor.mark("ip/0", 1), actor.mark("ip/1", 1, idle=True))
    assert box.poll() == []
    assert box.commit_points() == {(ACTOR, 0): 2}


def test_undecodable_stage_records_pass_at_once_and_hold_the_commit_point_until_processed() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    garbage = [actor.raw(b"not json"), actor.raw(b"[1]"), actor.raw(b'{"event": {}}')]
    source.feed(*garbage, actor.mark("ip/0", 1))
    assert box.poll() == garbage  # for the daemon to dead-letter
    assert box.received == {}
    assert box.commit_points() == {(ACTOR, 0): 0}
    box.processed([r.position for r in garbage[:2]])
    assert box.commit_points() == {(ACTOR, 0): 2}
    box.processed([r.position for r in garbage[2:]])
    assert box.commit_points() == {(ACTOR, 0): 4}


def test_forget_drops_what_a_revoked_partition_held() -> None:
    source = Fed()
    box = inbox(source)
    actor = StagePartition(ACTOR)
    kept = StagePartition(IP)
    source.feed(actor.event("ip/0", 3), kept.event("vendor[0]", 2))
    assert box.poll() == []
    assert len(box) == 2 and len(box.received) == 2
    box.forget([(ACTOR, 0)])
    assert len(box) == 1
    assert [p.stream for p in box.received] == [IP]
    assert box.commit_points() == {(IP, 0): 0}  # the forgotten partition is not committed
    assert box.watermark((ACTOR, 0)) == NEVER  # its producers are waited for afresh


def test_the_first_stage_waits_for_a_silent_vendor_partition_for_wait_s_only() -> None:
    clock = Clock()
    source = Fed()
    box = inbox(source, clock, wait_s=5)
    ip = StagePartition(IP)
    assert source_producer(("vendor", 1)) == "vendor[1]"
    source.feed(ip.event("vendor[0]", 1), ip.mark("vendor[0]", 2))
    assert box.poll() == []  # vendor[1] never heard from
    assert box.watermark((IP, 0)) == NEVER
    clock.now = 4.9
    assert box.poll() == []
    clock.now = 5.0
    released = box.poll()
    assert minutes(box, released) == [1]
    assert box.waits_timed_out == 1
    box.processed([r.position for r in released])
    assert box.watermark((IP, 0)) == at(2)  # vendor[1] given up


def test_an_idle_vendor_partition_is_not_waited_for() -> None:
    source = Fed()
    box = inbox(source)
    ip = StagePartition(IP)
    source.feed(ip.event("vendor[0]", 1), ip.mark("vendor[1]", 0, idle=True))
    assert minutes(box, box.poll()) == [1]
    assert box.waits_timed_out == 0


def test_an_opened_partition_waits_for_its_producers_before_any_record() -> None:
    box = inbox(Fed())
    box.open((ACTOR, 1))
    assert box.watermark((ACTOR, 1)) == NEVER
    assert box.commit_points() == {}  # nothing polled: nothing to commit


def test_only_vendor_partitions_are_unfinished() -> None:
    box = inbox(Fed(unfinished={("vendor", 0), (IP, 2)}))
    assert box.unfinished() == {("vendor", 0)}


def test_a_partition_past_max_held_releases_its_oldest_and_names_whom_it_waits_for_once() -> None:
    source = Fed()
    box = Inbox(source, TOPOLOGY, sources={"vendor": 2}, wait_s=60, max_held=2, clock=Clock())
    actor = StagePartition(ACTOR)
    source.feed(actor.mark("ip/1", 9), actor.mark("ip/2", 0))  # ip/2 has passed minute 0 only
    source.feed(*(actor.event("ip/0", minute) for minute in range(1, 5)))
    released = box.poll()
    assert minutes(box, released) == [1, 2]  # 4 held, 2 allowed
    assert (len(box), box.forced) == (2, 2)
    assert box.bound_reached() == {(ACTOR, 0): ["ip/2"]}
    assert box.bound_reached() == {}  # once per episode
    box.processed([r.position for r in released])
    assert box.commit_points() == {(ACTOR, 0): 4}  # minute 3 (offset 4) is still held
    assert box.watermark((ACTOR, 0)) == at(0)  # ip/2 still waited for
    box.forget([(ACTOR, 0)])
    assert box.forced == 2  # a revoked partition's count stays counted
