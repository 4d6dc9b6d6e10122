"""Reorder: one partition written by several producers, read back in event time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


def flooded(max_held: int | None, clock: Clock) -> Reorder[str]:
    """``a`` sends minutes 1 to 5 while ``b``, waited for, has passed minute 0 only."""
    reorder = Reorder[str](wait_s=60, max_held=max_held, clock=clock)
    reorder.expect(["a", "b"])
    reorder.add("b", 0, at(0), None)
    for minute in range(1, 6):
        reorder.add("a", minute, at(minute), f"a{minute}")
    return reorder


def test_a_flood_past_a_silent_producer_releases_the_oldest_at_the_bound_and_counts_them() -> None:
    clock = Clock()
    reorder = flooded(3, clock)
    assert reorder.take(10) == ["a1", "a2"]  # 5 held, 3 allowed: the 2 oldest go
    assert (len(reorder), reorder.forced, reorder.episodes) == (3, 2, 1)
    assert reorder.waited_for() == ["b"]
    assert reorder.lowest_offset() == 3  # the records still held are not committed past
    assert reorder.watermark() == at(0)  # b is still waited for: marks downstream say so
    reorder.add("a", 6, at(6), "a6")
    assert reorder.take(10) == ["a3"]  # the same episode: counted once
    assert (reorder.forced, reorder.episodes, reorder.waits_timed_out) == (3, 1, 0)
    reorder.add("b", 7, at(2), "b2")  # older than what went: its task counts it late if so
    reorder.add("b", 8, at(9), None)
    assert reorder.take(10) == ["b2", "a4", "a5", "a6"]  # b marked past them: in order
    for minute in range(10, 15):  # b silent again, at minute 9: a second episode
        reorder.add("a", minute, at(minute), f"a{minute}")
    assert reorder.take(10) == ["a10", "a11"]
    assert (reorder.forced, reorder.episodes) == (5, 2)


def test_below_the_bound_a_silent_producer_is_waited_for_as_without_one() -> None:
    for max_held in (5, None):
        clock = Clock()
        reorder = flooded(max_held, clock)
        assert reorder.take(10) == []
        clock.now = 59.0
        assert reorder.take(10) == []
        clock.now = 60.0
        assert reorder.take(10) == ["a1", "a2", "a3", "a4", "a5"]  # b given up, as always
        assert (reorder.forced, reorder.episodes, reorder.waits_timed_out) == (0, 0, 1)


def test_the_wait_still_runs_out_while_the_bound_releases() -> None:
    clock = Clock()
    reorder = flooded(2, clock)
    assert reorder.take(10) == ["a1", "a2", "a3"]
    clock.now = 60.0  # the wait began at the first forced release, not again at each
    assert reorder.take(10) == ["a4", "a5"]
    assert (reorder.forced, reorder.waits_timed_out) == (3, 1)
    assert reorder.waited_for() == []


def test_a_bound_below_one_record_is_refused() -> None:
    with pytest.raises(ValueError, match="max_held"):
        Reorder[str](wait_s=5, max_held=0)
