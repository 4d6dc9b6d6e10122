"""EventSorter: event-time order that depends only on the events, in bounded memory."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detector.events import ordering
from detector.events.model import ActorType, Category, Event, Outcome, Position
from detector.events.ordering import EventSorter, event_order, in_event_time_order

BASE = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def make(
    second: float, id: str, *, source: str = "cloudtrail", stream: str = "a.jsonl", **raw: Any
) -> Event:
    return Event(
        time=BASE + timedelta(seconds=second),
        source=source,
        action="ConsoleLogin",
        category=Category.AUTHENTICATION,
        outcome=Outcome.FAILURE,
        actor="alice",
        actor_type=ActorType.HUMAN,
        id=id,
        position=Position(stream, int(second * 10) + 1),
        ip="198.51.100.7",
        attributes={"account": "123456789012"},
        raw={"eventID": id, **raw},
    )


def world(count: int = 300) -> list[Event]:
    """Events with many ties: equal times, equal (time, source), equal ids with other content."""
    rng = random.Random(5)
    events = []
    for _ in range(count):
        second = rng.randrange(40)
        source = rng.choice(["cloudtrail", "okta_system_log"])
        id = f"{source}:{rng.randrange(count // 3)}"
        events.append(make(second, id, source=source, note=rng.randrange(3), pad="x" * 50))
    return events


def described(events: list[Event]) -> list[tuple[dict[str, Any], Position | None]]:
    return [(event.to_dict(with_raw=True), event.position) for event in events]


def sort(events: list[Event], budget: int, tmp_path: Path | None = None) -> tuple[list[Event], int]:
    with EventSorter(budget, temp_dir=tmp_path) as sorter:
        for event in events:
            sorter.add(event)
        return list(sorter.sorted_events()), sorter.runs_written


def test_events_come_back_whole_and_in_event_time_order() -> None:
    events = world()
    result, runs = sort(events, 1 << 30)
    assert runs == 0
    keys = [event_order(event) for event in result]
    assert keys == sorted(keys)
    expected = sorted(described(events), key=lambda pair: repr(pair))
    assert sorted(described(result), key=lambda pair: repr(pair)) == expected


def test_a_tiny_budget_spills_many_runs_and_gives_the_same_order(tmp_path: Path) -> None:
    events = world()
    in_memory, _ = sort(events, 1 << 30)
    spilled, runs = sort(events, 4_000, tmp_path)
    assert runs > 10
    assert described(spilled) == described(in_memory)
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone


def test_the_order_does_not_depend_on_the_input_order() -> None:
    events = world()
    first, _ = sort(events, 1 << 30)
    shuffled = events[:]
    random.Random(11).shuffle(shuffled)
    second, _ = sort(shuffled, 3_000)
    # Positions of equal events may differ; nothing else may.
    assert [e.to_dict(with_raw=True) for e in first] == [e.to_dict(with_raw=True) for e in second]


def test_runs_of_one_size_are_merged_so_few_files_are_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "MAX_OPEN_RUNS", 3)
    events = world(120)
    in_memory, _ = sort(events, 1 << 30)
    with EventSorter(1, temp_dir=tmp_path) as sorter:  # one event per run
        for event in events:
            sorter.add(event)
            assert sum(1 for _ in tmp_path.rglob("run-*")) < 3 * 5  # 3 per level, few levels
        assert described(list(sorter.sorted_events())) == described(in_memory)
    assert list(tmp_path.iterdir()) == []


def test_memory_held_stays_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = 20_000
    high = 0
    original = EventSorter.add

    def watched(self: EventSorter, event: Event) -> None:
        nonlocal high
        original(self, event)
        high = max(high, sum(len(item[3]) for item in self._buffer))

    monkeypatch.setattr(EventSorter, "add", watched)
    result, runs = sort(world(1000), budget)
    assert len(result) == 1000 and runs > 5
    assert high < budget


def test_the_temporary_files_are_removed_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), EventSorter(1, temp_dir=tmp_path) as sorter:
        for event in world(10):
            sorter.add(event)
        assert any(tmp_path.iterdir())
        raise RuntimeError("a sink failed")
    assert list(tmp_path.iterdir()) == []


def test_values_json_libraries_disagree_on_survive_a_spill() -> None:
    events = [
        make(1, "a", big=2**70, text="line\nbreak\ttab é"),
        make(0, "b", nested={"list": [1, 2.5, None, True]}),
    ]
    result, runs = sort(events, 1)
    assert runs == 2
    assert [e.raw for e in result] == [events[1].raw, events[0].raw]
    assert result[1].raw["big"] == 2**70


def test_events_without_a_position_keep_none() -> None:
    event = Event(
        BASE, "k8s_audit", "create", Category.OTHER, Outcome.SUCCESS, "bob", ActorType.SERVICE, "x"
    )
    [back], _ = sort([event], 1)
    assert back.position is None
    assert back == event


def test_a_batch_sorts_by_time_source_and_id_stably() -> None:
    late, early, tie_b, tie_a = make(9, "z"), make(1, "y"), make(5, "b"), make(5, "a")
    assert in_event_time_order([late, early, tie_b, tie_a]) == [early, tie_a, tie_b, late]
