"""The loop thread's CPU charged to its stages: laps of a clock, and the intake's laps."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

from prometheus_client import CollectorRegistry

from detector.intake import Intake
from detector.loop_cpu import STAGES, LoopCpu
from detector.outcomes import BatchOutcome
from detector.sources.record import Position, RawRecord


def seconds(registry: CollectorRegistry, stage: str) -> float | None:
    return registry.get_sample_value("ciwatch_loop_cpu_seconds_total", {"stage": stage})


def test_every_stage_is_exported_at_zero_before_the_first_lap() -> None:
    registry = CollectorRegistry()
    LoopCpu(registry)
    assert {stage: seconds(registry, stage) for stage in STAGES} == dict.fromkeys(STAGES, 0.0)


def test_each_lap_charges_the_cpu_time_since_the_last_one_to_its_stage() -> None:
    registry = CollectorRegistry()
    readings: Iterator[float] = iter([10.0, 10.5, 10.75, 12.0, 12.25])
    clock = LoopCpu(registry).clock(lambda: next(readings))  # reads 10.0 when made
    for stage in ("poll", "detect", "poll", "other"):
        clock.lap(stage)
    assert seconds(registry, "poll") == 0.5 + 1.25
    assert seconds(registry, "detect") == 0.25
    assert seconds(registry, "other") == 0.25
    assert seconds(registry, "normalize") == 0.0


class OnePollSource:
    """Two partitions; the first poll brings one record of each, later polls nothing."""

    def __init__(self) -> None:
        self.polls = 0

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        self.polls += 1
        if self.polls > 1:
            return []
        return [RawRecord(b"{}", Position("audit", 0, partition)) for partition in (0, 1)]

    def unfinished(self) -> set[tuple[str, int]]:
        return set()

    def assigned(self) -> set[tuple[str, int]]:
        return {("audit", 0), ("audit", 1)}

    def pause_only(self, partitions: Collection[tuple[str, int]]) -> None:
        pass


def test_the_intake_laps_its_poll_its_normalizing_and_its_merge_in_that_order() -> None:
    laps: list[str] = []

    def normalize(records: Sequence[RawRecord]) -> BatchOutcome:
        laps.append("normalizing")
        return BatchOutcome()

    intake = Intake(
        OnePollSource(), normalize, max_records=10, max_wait_s=0.0, wait_s=0.0, capacity=100,
        lap=laps.append,
    )  # fmt: skip
    first = intake.next_batch()
    assert laps == ["poll", "normalizing", "normalize", "merge"]
    assert len(first.positions) == 2
    laps.clear()
    intake.next_batch()  # nothing polled: nothing to normalize
    assert laps == ["poll", "merge"]
