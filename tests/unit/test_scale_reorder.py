"""Reorder: one partition written by several producers, read back in event time."""

from __future__ import annotations

from datetime import UTC, datetime

from detector.scale.reorder import Reorder
from tests.clock import Clock, at


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


def test_an_idle_producer_is_not_waited_for_until_it_sends_a_record() -> None:
    reorder = Reorder[str](wait_s=5, clock=Clock())
    reorder.expect(["a", "b"])
    reorder.add("a", 0, at(5), "a5")
    assert reorder.take(10) == []  # b never heard from: it might send something older
    reorder.add("b", 1, at(1), None, idle=True)
    assert reorder.take(10) == ["a5"]  # b is idle: nothing to wait for
    reorder.add("b", 2, at(6), "b6")  # b sends again: waited for again once its queue empties
    reorder.add("a", 3, at(8), "a8")
    assert reorder.take(10) == ["b6"]  # b has passed minute 6 only: it may still send minute 7
    reorder.add("b", 4, at(9), None)
    assert reorder.take(10) == ["a8"]
    assert reorder.waits_timed_out == 0


def test_a_mark_from_a_given_up_producer_makes_it_waited_for_again() -> None:
    clock = Clock()
    reorder = Reorder[str](wait_s=5, clock=clock)
    reorder.add("a", 0, at(5), "a5")
    reorder.add("b", 1, at(1), None)
    assert reorder.take(10) == []
    clock.now = 5.0
    assert reorder.take(10) == ["a5"]  # b given up
    assert reorder.waits_timed_out == 1
    reorder.add("a", 2, at(7), "a7")
    assert reorder.take(10) == ["a7"]  # b given up: not waited for
    reorder.add("b", 3, at(6), None)  # b is back, at minute 6
    reorder.add("a", 4, at(8), "a8")
    assert reorder.take(10) == []
    assert reorder.lowest_offset() == 4


def test_the_watermark_is_the_oldest_head_or_mark_of_the_producers_waited_for() -> None:
    clock = Clock()
    reorder = Reorder[str](wait_s=5, clock=clock)
    assert reorder.watermark() == datetime.min.replace(tzinfo=UTC)  # nobody known: nothing said
    reorder.expect(["a", "b"])
    never = datetime.min.replace(tzinfo=UTC)
    assert reorder.watermark() == never
    reorder.add("a", 0, at(4), "a4")
    assert reorder.watermark() == never  # b never heard from
    reorder.add("b", 1, at(6), None)
    assert reorder.watermark() == at(4)  # a's held head
    assert reorder.take(10) == ["a4"]
    assert reorder.watermark() == at(4)  # a's mark: its last record
    reorder.add("a", 2, at(9), None)
    assert reorder.watermark() == at(6)  # b's mark
    reorder.add("b", 3, at(7), None, idle=True)
    assert reorder.watermark() == at(9)  # b idle: a's mark only
    reorder.add("a", 4, at(10), None, idle=True)
    assert reorder.watermark() is None  # all idle, nothing held
    reorder.add("b", 5, at(8), "b8")  # an idle producer's record is held: it counts
    assert reorder.watermark() == at(8)


def test_a_given_up_producer_does_not_hold_the_watermark() -> None:
    clock = Clock()
    reorder = Reorder[str](wait_s=5, clock=clock)
    reorder.expect(["a", "b"])
    reorder.add("a", 0, at(3), "a3")
    reorder.add("a", 1, at(4), None)
    assert reorder.take(10) == []
    clock.now = 5.0
    assert reorder.take(10) == ["a3"]
    assert reorder.watermark() == at(4)  # b (never heard from) was given up
