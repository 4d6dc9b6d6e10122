"""The event-time merge of partitions (detector.merge) and the daemon's intake around it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.config import PipelineConfig
from detector.intake import Intake
from detector.merge import PartitionMerge
from detector.pipeline import Pipeline
from detector.sources.record import Position, RawRecord
from tests.clock import Clock
from tests.unit.test_time_sanity import okta_failure

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


def merge(wait_s: float = 2.0, capacity: int = 100) -> tuple[PartitionMerge[str, str], Clock]:
    clock = Clock()
    return PartitionMerge[str, str](wait_s=wait_s, capacity=capacity, clock=clock), clock


def test_partitions_come_out_oldest_first_whatever_order_they_were_polled_in() -> None:
    merged, _ = merge()
    merged.add("p0", [(f"p0-{m}", at(m)) for m in (0, 3, 6, 9)])
    merged.add("p1", [(f"p1-{m}", at(m)) for m in (1, 4, 7)])
    merged.add("p2", [(f"p2-{m}", at(m)) for m in (2, 5, 8)])
    assert merged.take(100, pending=()) == [
        "p0-0", "p1-1", "p2-2", "p0-3", "p1-4", "p2-5", "p0-6", "p1-7", "p2-8", "p0-9",
    ]  # fmt: skip
    assert len(merged) == 0


def test_an_empty_partition_that_may_hold_records_is_waited_for() -> None:
    merged, _ = merge()
    merged.add("p0", [("p0-5", at(5)), ("p0-6", at(6))])
    assert merged.take(100, pending={"p0", "p1"}) == []
    merged.add("p1", [("p1-1", at(1))])
    # p1 empties after its one record and may hold more: the merge stops there.
    assert merged.take(100, pending={"p0", "p1"}) == ["p1-1"]
    assert merged.take(100, pending={"p0"}) == ["p0-5", "p0-6"]  # p1 caught up
    assert merged.waits_timed_out == 0


def test_a_caught_up_partition_is_not_waited_for() -> None:
    merged, _ = merge()
    merged.add("p0", [("p0-5", at(5))])
    assert merged.take(100, pending={"p0"}) == ["p0-5"]
    assert merged.wait_left({"p0"}) is None


def test_a_wait_runs_out_once_and_is_counted_then_the_partition_is_not_waited_for() -> None:
    merged, clock = merge(wait_s=2.0)
    merged.add("p0", [("a", at(5))])
    assert merged.take(100, pending={"p0", "p1"}) == []
    clock.now = 1.5
    assert merged.wait_left({"p0", "p1"}) == 0.5
    assert merged.take(100, pending={"p0", "p1"}) == []
    clock.now = 2.0
    assert merged.take(100, pending={"p0", "p1"}) == ["a"]
    assert merged.waits_timed_out == 1
    merged.add("p0", [("b", at(6))])
    assert merged.take(100, pending={"p0", "p1"}) == ["b"]  # given up on: no new wait
    merged.add("p1", [("c", at(7))])  # it delivers: waited for again once it is empty
    merged.add("p0", [("d", at(8))])
    assert merged.take(100, pending={"p0", "p1"}) == ["c"]
    assert merged.waits_timed_out == 1


def test_no_waiting_at_all_when_the_wait_is_zero() -> None:
    merged, _ = merge(wait_s=0)
    merged.add("p0", [("a", at(5)), ("b", at(6))])
    assert merged.take(100, pending={"p0", "p1"}) == ["a", "b"]
    assert merged.waits_timed_out == 0


def test_records_without_a_time_pass_at_once_but_only_from_the_head_of_their_partition() -> None:
    merged, _ = merge()
    merged.add("p0", [("dead-1", None), ("late", at(9)), ("dead-2", None)])
    assert merged.take(100, pending={"p0", "p1"}) == ["dead-1"]
    assert merged.held("p0") == 2  # dead-2 waits behind a timed record: offsets stay a prefix


def test_times_in_any_zone_are_merged_as_the_instants_they_are() -> None:
    # The merge orders by the times themselves: an offset is only another spelling,
    # equal instants keep the order of their partitions, and untimed records go first.
    merged, _ = merge()
    paris = timezone(timedelta(hours=2))
    merged.add("p0", [("p0-utc-2", at(2)), ("p0-utc-4", at(4))])
    merged.add(
        "p1", [("p1-paris-1", at(1).astimezone(paris)), ("p1-paris-2", at(2).astimezone(paris))]
    )
    merged.add("p2", [("p2-dead", None), ("p2-year-1", datetime(1, 1, 3, tzinfo=paris))])
    assert merged.take(100, pending=()) == [
        "p2-dead", "p2-year-1", "p1-paris-1", "p0-utc-2", "p1-paris-2", "p0-utc-4",
    ]  # fmt: skip


def test_a_full_buffer_releases_the_oldest_while_waiting_and_counts_them() -> None:
    merged, _ = merge(capacity=3)
    merged.add("p0", [("a", at(1)), ("b", at(2))])
    assert merged.take(1, pending={"p0", "p1"}) == []
    merged.add("p0", [("c", at(3))])
    assert merged.take(2, pending={"p0", "p1"}) == ["a", "b"]
    assert merged.forced == 2
    assert merged.take(2, pending={"p0", "p1"}) == []  # below the cap: waiting again


def test_revoked_partitions_are_dropped_and_clear_empties_everything() -> None:
    merged, _ = merge()
    merged.add("p0", [("a", at(1))])
    merged.add("p1", [("b", at(2)), ("c", at(3))])
    assert merged.drop(["p1", "p9"]) == 2
    assert len(merged) == 1
    assert merged.take(100, pending={"p0"}) == ["a"]
    merged.add("p0", [("d", at(4))])
    assert merged.clear() == 1
    assert len(merged) == 0


polls = st.lists(
    st.tuples(
        st.sampled_from(["p0", "p1", "p2"]),
        st.lists(st.one_of(st.none(), st.integers(0, 50)), min_size=1, max_size=6),
        st.integers(1, 5),
        st.frozensets(st.sampled_from(["p0", "p1", "p2"])),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(polls)
def test_each_partition_leaves_in_its_own_order_and_nothing_is_lost_or_invented(
    steps: list[tuple[str, list[int | None], int, frozenset[str]]],
) -> None:
    merged, clock = merge(wait_s=1.0, capacity=8)
    added: dict[str, list[str]] = {}
    taken: list[str] = []
    for number, (partition, minutes, limit, pending) in enumerate(steps):
        clock.now = number * 0.4
        names = [f"{partition}-{number}-{i}" for i in range(len(minutes))]
        added.setdefault(partition, []).extend(names)
        times = [None if m is None else at(m) for m in minutes]
        merged.add(partition, zip(names, times, strict=True))
        held = len(merged)
        out = merged.take(limit, pending=pending)
        if held >= merged.capacity:  # a full buffer always gives back what is asked
            assert len(out) == min(limit, held)
        taken.extend(out)
    taken.extend(merged.take(10_000, pending=()))
    assert sorted(taken) == sorted(name for names in added.values() for name in names)
    for partition, names in added.items():
        assert [name for name in taken if name.startswith(f"{partition}-")] == names


def one_at_a_time(buffers: dict[str, list[tuple[str, datetime | None]]], limit: int) -> list[str]:
    """The merge's order taken one record at a time: the head that is oldest (untimed first),
    the partition added first on a tie."""
    out: list[str] = []
    while len(out) < limit:
        heads = [
            (0 if records[0][1] is None else 1, records[0][1] or START, order, partition)
            for order, (partition, records) in enumerate(buffers.items())
            if records
        ]
        if not heads:
            break
        *_, partition = min(heads)
        out.append(buffers[partition].pop(0)[0])
    return out


@settings(max_examples=200, deadline=None)
@given(polls)
def test_records_leave_in_the_order_of_the_oldest_head_one_at_a_time(
    steps: list[tuple[str, list[int | None], int, frozenset[str]]],
) -> None:
    merged, _ = merge(wait_s=0, capacity=1_000)
    reference: dict[str, list[tuple[str, datetime | None]]] = {}
    for number, (partition, minutes, limit, _) in enumerate(steps):
        records = [
            (f"{partition}-{number}-{i}", None if m is None else at(m))
            for i, m in enumerate(minutes)
        ]
        merged.add(partition, records)
        reference.setdefault(partition, []).extend(records)
        assert merged.take(limit, pending=()) == one_at_a_time(reference, limit)


class Partitions:
    """A partitioned source in memory: each poll returns a run of one partition, like Kafka."""

    def __init__(self, records: dict[tuple[str, int], list[RawRecord]]) -> None:
        self.left = {key: list(values) for key, values in records.items()}
        self.paused: set[tuple[str, int]] = set()
        self.polls: list[tuple[str, int]] = []

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        for key, values in self.left.items():
            if values and key not in self.paused:
                self.polls.append(key)
                run, self.left[key] = values[:max_records], values[max_records:]
                return run
        return []

    def unfinished(self) -> set[tuple[str, int]]:
        return {key for key, values in self.left.items() if values}

    def assigned(self) -> set[tuple[str, int]]:
        return set(self.left)

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        self.paused = set(partitions)


def failures(partition: int, minutes: range) -> list[RawRecord]:
    return [
        RawRecord(
            orjson.dumps(okta_failure(at(minute), partition * 1000 + minute)),
            Position("okta", offset, partition),
        )
        for offset, minute in enumerate(minutes)
    ]


def test_the_intake_hands_out_a_backlog_of_three_partitions_in_event_time_order() -> None:
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    backlog = {("okta", p): failures(p, range(p, 300, 3)) for p in range(3)}
    backlog[("okta", 1)].insert(0, RawRecord(b"not json", Position("okta", -1, 1)))
    source = Partitions(backlog)
    intake = Intake(
        source, pipeline.normalize, max_records=40, max_wait_s=0.0, wait_s=2.0, capacity=120
    )
    batches = [intake.next_batch() for _ in range(60)]
    events = [event for batch in batches for event in batch.events]
    assert [event.time for event in events] == sorted(event.time for event in events)
    assert len(events) == 300
    assert sum(len(batch.dead_letters) for batch in batches) == 1
    assert len(intake.merge) == 0
    assert intake.merge.forced == 0
    assert intake.merge.waits_timed_out == 0
    assert len(set(source.polls)) == 3  # runs of every partition were polled, in turns
    for batch in batches:  # a batch's records of a partition are in offset order
        for p in range(3):
            offsets = [q.offset for q in batch.positions if q.partition == p]
            assert offsets == sorted(offsets)


def test_each_partition_may_hold_buffered_per_partition_past_its_share_of_the_buffer() -> None:
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    backlog = {("okta", p): failures(p, range(p, 800, 8)) for p in range(8)}
    source = Partitions(backlog)
    intake = Intake(
        source, pipeline.normalize, max_records=20, max_wait_s=0.0, wait_s=2.0, capacity=80,
        per_partition=60,
    )  # fmt: skip
    for _ in range(4):  # runs of partition 0, then of 1 once 0 is paused: nothing to merge yet
        assert intake.next_batch().events == []
    assert intake.merge.capacity == 8 * 60
    # Polls of 20 (half of 80 / 8 was 5); paused when another would pass its share of 60.
    assert intake.merge.held(("okta", 0)) == 60
    assert source.paused == {("okta", 0)}
    assert source.polls == [("okta", 0)] * 3 + [("okta", 1)]
    batches = [intake.next_batch() for _ in range(100)]
    events = [event for batch in batches for event in batch.events]
    assert [event.time for event in events] == sorted(event.time for event in events)
    assert len(events) == 800
    assert intake.merge.forced == 0


class OnePoll:
    """A source whose one poll brings ``records`` as they are (partitions interleaved)."""

    def __init__(self, records: list[RawRecord]) -> None:
        self.records = records
        self.partitions = {(r.position.stream, r.position.partition or 0) for r in records}

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        records, self.records = self.records, []
        return records

    def unfinished(self) -> set[tuple[str, int]]:
        return set()

    def assigned(self) -> set[tuple[str, int]]:
        return self.partitions

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        pass


def test_each_released_record_carries_its_own_events_whether_it_has_one_or_several() -> None:
    pipeline = Pipeline.from_config(PipelineConfig.model_validate({"models": {"enabled": False}}))
    runs = zip(failures(0, range(0, 10, 2)), failures(1, range(1, 10, 2)), strict=True)
    single = [record for pair in runs for record in pair]  # the partitions interleaved
    pair = orjson.dumps([okta_failure(at(7), 900), okta_failure(at(3), 901)])
    mixed = [*single, RawRecord(pair, Position("okta", 99, 1))]
    for records, events in ((single, 10), (mixed, 12)):
        intake = Intake(
            OnePoll(records), pipeline.normalize, max_records=100, max_wait_s=0.0, wait_s=0.0,
            capacity=100,
        )  # fmt: skip
        batch = intake.next_batch()
        assert sorted(map(id, batch.positions)) == sorted(id(record.position) for record in records)
        assert len(batch.events) == events
        assert {id(event.position) for event in batch.events} <= {
            id(record.position) for record in records
        }
        for partition in (0, 1):  # each partition's records leave in offset order
            offsets = [p.offset for p in batch.positions if p.partition == partition]
            assert offsets == sorted(offsets)
