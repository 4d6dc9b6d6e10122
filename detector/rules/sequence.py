"""Sequence rules: step A (``count`` times) then step B ... for one group key within a window.

Per group and step the engine keeps the best partial match: the one that
satisfied every step so far with the *latest* start, since a later start
leaves the most room in the window. A step that needs several events keeps the
last ``count`` of them, each tagged with the best partial match of the steps
before it at the time it arrived; the step is complete when ``count`` tagged
events are there, starting where the earliest of them was tagged. So five
failures spread over an hour followed by a success still fire if the last
five failures and the success fit in the window, and memory per group stays
bounded by the steps' counts. One event may advance several steps (each from
the state before it), never the same partial match twice. A step's event must
not be older than the previous step's last event. The rule fires when the last
step completes; the group then starts afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

from detector.events.model import Event, isoformat
from detector.features.durations import format_duration
from detector.features.observation import Observation
from detector.rules.conditions import Predicate
from detector.rules.gates import Decision, Gate
from detector.rules.state import (
    EVIDENCE_CAP,
    Firing,
    GroupKey,
    GroupTable,
    Observe,
    TableEvaluator,
    cap_evidence,
    from_micros,
    to_micros,
)
from detector.rules.summaries import join_limited

__all__ = ["SequenceEvaluator", "Step"]

_SAMPLE_CAP = 20


@dataclass(frozen=True, slots=True)
class Step:
    """One compiled step: its predicate, how many events it needs, its conditions as written,
    and optionally the same conditions as a gate (to decide them per kind of event)."""

    matches: Predicate
    count: int
    where: Mapping[str, Any]
    gate: Gate | None = None


_StepTests = tuple[tuple[int, Predicate | None], ...]
"""(step index, what is left to test: ``None`` when the step holds for the event's kind)."""


class _Run(NamedTuple):
    """The events that satisfied one step (ids capped, most recent kept)."""

    ids: tuple[str, ...]
    events: int
    first: int
    last: int
    action: str
    outcome: str
    ips: tuple[str, ...]
    actors: tuple[str, ...]


class _Partial(NamedTuple):
    """Steps 0..i satisfied, from ``start`` to ``end`` (µs)."""

    start: int
    end: int
    runs: tuple[_Run, ...]


class _Tag(NamedTuple):
    """One event counted toward a step that needs several."""

    time: int
    id: str
    action: str
    outcome: str
    ip: str | None
    actor: str
    prefix: _Partial | None

    @property
    def start(self) -> int:
        return self.prefix.start if self.prefix is not None else self.time


@dataclass(slots=True)
class _Group:
    best: list[_Partial | None]
    tags: list[list[_Tag]] = field(default_factory=list)

    @classmethod
    def empty(cls, steps: int) -> _Group:
        return cls([None] * (steps - 1), [[] for _ in range(steps)])

    def active(self) -> bool:
        return any(partial is not None for partial in self.best) or any(self.tags)


class SequenceEvaluator(TableEvaluator[_Group]):
    """Fires when the steps happen in order for one group key within ``window``."""

    stateful = True

    def __init__(
        self, window: timedelta, steps: Sequence[Step], group_by: Sequence[str], max_groups: int
    ) -> None:
        self.window = window
        self.window_us = window // timedelta(microseconds=1)
        self.steps = tuple(steps)
        self.group_by = tuple(group_by)
        self.table = GroupTable(max_groups)
        self._tests: _StepTests = tuple((index, step.matches) for index, step in enumerate(steps))

    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        return self._observe(self._tests, observation, key)

    def specialise(self, decide: Callable[[Gate], Decision]) -> Observe | None:
        """Only the steps an event of this kind can satisfy, each with what is left to test;
        ``None`` when it can satisfy none (such events never touch the state)."""
        tests: list[tuple[int, Predicate | None]] = []
        for index, step in enumerate(self.steps):
            found = step.matches if step.gate is None else decide(step.gate)
            if found is not False:
                tests.append((index, None if found is True else found))
        return partial(self._observe, tuple(tests)) if tests else None

    def _observe(
        self, tests: _StepTests, observation: Observation, key: tuple[str | None, ...]
    ) -> Firing | None:
        if None in key:
            return None
        matched: list[int] = []  # a loop, not a comprehension: that costs a frame per event
        for index, test in tests:
            if test is None or test(observation):
                matched.append(index)
        if not matched:
            return None
        group_key: GroupKey = key  # type: ignore[assignment]  # no None left
        event = observation.event
        group = self.table.get(group_key)
        if group is None:
            if matched[0] > 0:
                return None  # later steps need an earlier one: a group with no state stays so
            group = _Group.empty(len(self.steps))
            now = newest = to_micros(event.time)  # a new group has no later event
        else:
            now = to_micros(event.time)
            newest = self.table.newest(group_key, now)
        advanced = False
        for index in reversed(matched):
            completion = self._advance(group, index, event, now)
            if completion is None:
                continue
            if index == len(self.steps) - 1:
                self.table.drop(group_key)
                return self._fire(group_key, event, completion)
            current = group.best[index]
            if current is None or completion.start > current.start:
                group.best[index] = completion
                advanced = True
        if advanced or group.active():  # a partial match just stored: active without a look
            self.table.put(group_key, newest, group)
        return None

    def _advance(self, group: _Group, index: int, event: Event, now: int) -> _Partial | None:
        prefix: _Partial | None = None
        if index > 0:
            prefix = group.best[index - 1]
            if prefix is None or prefix.end > now or now - prefix.start > self.window_us:
                return None
        needed = self.steps[index].count
        if needed == 1:
            return _extend_by_one(prefix, event, now)
        tag = _Tag(now, event.id, event.action, event.outcome.value, event.ip, event.actor, prefix)
        tags = group.tags[index]
        tags.append(tag)
        horizon = now - self.window_us
        tags[:] = [item for item in tags if item.start >= horizon][-needed:]
        if len(tags) < needed:
            return None
        return _extend(tags[0].prefix, tags, now)

    def _fire(self, key: GroupKey, event: Event, completion: _Partial) -> Firing:
        runs = completion.runs
        elapsed = format_duration(timedelta(microseconds=completion.end - completion.start))
        window = format_duration(self.window)
        steps_text = ", then ".join(_describe_run(run) for run in runs)
        if self.group_by == ("actor",):
            subject, by_actor = event.actor, ""
        else:
            subject, by_actor = "/".join(key), f"; last by {event.actor}"
        summary = f"{subject}: {steps_text} within {elapsed} (window {window}){by_actor}"
        ips = {ip for run in runs for ip in run.ips}
        values = {
            "window": window,
            "elapsed": elapsed,
            "steps": steps_text,
            "count": sum(run.events for run in runs),
            "actions": join_limited(run.action for run in runs),
            "distinct_ips": len(ips),
            "distinct_actors": len({actor for run in runs for actor in run.actors}),
        }
        explanation = {
            **values,
            "start": isoformat(from_micros(completion.start)),
            "steps": [
                {
                    "where": dict(step.where),
                    "required": step.count,
                    "count": run.events,
                    "first": isoformat(from_micros(run.first)),
                    "last": isoformat(from_micros(run.last)),
                    "action": run.action,
                    "outcome": run.outcome,
                }
                for step, run in zip(self.steps, runs, strict=True)
            ],
            "ips": sorted(ips)[:_SAMPLE_CAP],
        }
        ids = [event_id for run in runs for event_id in run.ids]
        return Firing(cap_evidence(ids, event.id), summary, values, explanation)

    def to_state(self) -> list[Any]:
        return self.table.to_state(_encode_group)

    def load_state(self, state: list[Any]) -> None:
        self.table.load_state(state, _decode_group)


def _extend(prefix: _Partial | None, tags: Sequence[_Tag], now: int) -> _Partial:
    last = tags[-1]
    run = _Run(
        ids=tuple(tag.id for tag in tags)[-EVIDENCE_CAP:],
        events=len(tags),
        first=tags[0].time,
        last=now,
        action=last.action,
        outcome=last.outcome,
        ips=tuple(dict.fromkeys(tag.ip for tag in tags if tag.ip))[:_SAMPLE_CAP],
        actors=tuple(dict.fromkeys(tag.actor for tag in tags))[:_SAMPLE_CAP],
    )
    return _joined(prefix, run)


def _extend_by_one(prefix: _Partial | None, event: Event, now: int) -> _Partial:
    """What :func:`_extend` gives for a step of one event (``event`` at ``now``), built
    straight from the event: most steps need one, and it is the hot path of sequences."""
    run = _Run(
        ids=(event.id,),
        events=1,
        first=now,
        last=now,
        action=event.action,
        outcome=event.outcome.value,
        ips=(event.ip,) if event.ip else (),
        actors=(event.actor,),
    )
    return _joined(prefix, run)


def _joined(prefix: _Partial | None, run: _Run) -> _Partial:
    """``prefix`` (None: no earlier step) followed by the step matched in ``run``."""
    if prefix is None:
        return _Partial(run.first, run.last, (run,))
    return _Partial(prefix.start, run.last, (*prefix.runs, run))


def _describe_run(run: _Run) -> str:
    times = f" {run.events} times" if run.events > 1 else ""
    return f"{run.action} ({run.outcome}){times}"


def _encode_partial(partial: _Partial | None) -> Any:
    if partial is None:
        return None
    runs = [[list(r.ids), *r[1:6], list(r.ips), list(r.actors)] for r in partial.runs]
    return [partial.start, partial.end, runs]


def _decode_partial(data: Any) -> _Partial | None:
    if data is None:
        return None
    start, end, runs = data
    decoded = tuple(
        _Run(tuple(ids), int(n), int(first), int(last), action, outcome, tuple(ips), tuple(who))
        for ids, n, first, last, action, outcome, ips, who in runs
    )
    return _Partial(int(start), int(end), decoded)


def _encode_group(group: _Group) -> Any:
    return {
        "best": [_encode_partial(partial) for partial in group.best],
        "tags": [[[*tag[:6], _encode_partial(tag.prefix)] for tag in tags] for tags in group.tags],
    }


def _decode_group(data: Any) -> _Group:
    best = [_decode_partial(partial) for partial in data["best"]]
    tags = [
        [_Tag(int(t), i, a, o, ip, actor, _decode_partial(p)) for t, i, a, o, ip, actor, p in row]
        for row in data["tags"]
    ]
    return _Group(best, tags)
