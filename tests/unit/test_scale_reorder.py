"""Reorder: one partition written by several producers, read back in event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detector.scale.reorder import Reorder

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_records_of_several_producers_come_out_oldest_first() -> None:
    reorder = Reorder[str](wait_s=5)
    for offset, (producer, minute) in enumerate([("a", 1), ("a", 4), ("b", 2), ("b", 3)]):
        reorder.add(producer, offset, at(minute), f"{producer}{minute}")
    reorder.add("a", 4, at(9), None)  # marks: both passed their last record
    reorder.add("b", 5, at(9), None)
    assert reorder.take(10) == ["a1", "b2", "b3", "a4"]
    assert reorder.lowest_offset() is None


def test_a_silent_producer_behind_the_head_is_waited_for_then_given_up() -> None:
    clock = Clock()
    reorder = Reorder[str](wait_s=5, clock=clock)
    reorder.add("a", 0, at(10), "a10")
    reorder.add("b", 1, at(2), None)  # b has only passed minute 2: it may still send minute 3
    assert reorder.take(10) == []
    assert reorder.lowest_offset() == 0
    clock.now = 3.0
    reorder.add("b", 2, at(3), "b3")
    assert reorder.take(10) == ["b3"]  # a10 still waits: b is silent again, at minute 3
    clock.now = 9.0
    assert reorder.take(10) == ["a10"]
    assert reorder.waits_timed_out == 1


def test_an_expected_producer_never_heard_from_holds_records_back_for_the_wait_only() -> None:
    clock = Clock()
    reorder = Reorder[str](wait_s=5, clock=clock)
    reorder.expect(["a", "b"])
    reorder.add("a", 0, at(1), "a1")
    assert reorder.take(10) == []
    clock.now = 6.0
    assert reorder.take(10) == ["a1"]


def test_the_lowest_held_offset_is_where_committing_stops() -> None:
    reorder = Reorder[str](wait_s=5)
    reorder.add("a", 0, at(5), "a5")
    reorder.add("b", 1, at(1), "b1")
    reorder.add("b", 2, at(2), None)
    assert reorder.take(1) == ["b1"]
    assert reorder.lowest_offset() == 0  # a5 (offset 0) is held: offset 1 is not committed past it
