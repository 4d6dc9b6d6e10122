"""Threshold rules: enough matching events, or distinct values, per group within a window.

State per group is small by construction: a count rule keeps at most
``count`` hits (it fires, and its window restarts, when it reaches them); a
distinct rule keeps the latest hit per value, at most ``distinct.count``
values. Hits older than the group's newest event minus the window are dropped
as each event arrives, so out-of-order events (within the allowed lateness)
land in the right place.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from detector.events.model import Event, isoformat
from detector.features.durations import format_duration
from detector.features.observation import Observation
from detector.rules.fields import FieldPath
from detector.rules.state import (
    Firing,
    GroupKey,
    GroupTable,
    S,
    TableEvaluator,
    cap_evidence,
    from_micros,
    to_micros,
)
from detector.rules.summaries import join_limited, outcome_word

__all__ = ["CountThreshold", "DistinctThreshold", "Hit"]

_SAMPLE_CAP = 20


class Hit(NamedTuple):
    """One matching event, reduced to what summaries and evidence need."""

    time: int
    id: str
    ip: str | None
    actor: str
    target: str | None
    action: str
    outcome: str

    @classmethod
    def of(cls, event: Event, time: int) -> Hit:
        return cls(
            time, event.id, event.ip, event.actor, event.target, event.action, event.outcome.value
        )


def _hit_time(hit: Hit) -> int:
    return hit.time


class _Threshold(TableEvaluator[S]):
    def __init__(
        self, window: timedelta, required: int, group_by: Sequence[str], max_groups: int
    ) -> None:
        self.window = window
        self.window_us = window // timedelta(microseconds=1)
        self.required = required
        self.group_by = tuple(group_by)

    def _subject(self, key: GroupKey, event: Event) -> tuple[str, str]:
        """Who the sentence is about, and a clause naming the actor when that is not the group."""
        if self.group_by == ("actor",):
            return event.actor, ""
        return "/".join(key), f"; last by {event.actor}"

    def _numbers(self, hits: Sequence[Hit]) -> dict[str, Any]:
        ips = {hit.ip for hit in hits if hit.ip}
        return {
            "window": format_duration(self.window),
            "window_start": isoformat(from_micros(min(hit.time for hit in hits))),
            "threshold": self.required,
            "actions": join_limited(hit.action for hit in hits),
            "distinct_ips": len(ips),
            "distinct_actors": len({hit.actor for hit in hits}),
            "distinct_targets": len({hit.target for hit in hits if hit.target}),
            "ips": sorted(ips)[:_SAMPLE_CAP],
        }

    def _extras(self, numbers: dict[str, Any], counted: str = "") -> str:
        """Where from and across whom, unless the group (or the distinct field) says it already."""
        parts = []
        if "ip" not in self.group_by and counted != "ip":
            if numbers["distinct_ips"] > 1:
                parts.append(f"from {numbers['distinct_ips']} IP addresses")
            elif numbers["distinct_ips"] == 1:
                parts.append(f"from {numbers['ips'][0]}")
        if "actor" not in self.group_by and counted != "actor" and numbers["distinct_actors"] > 1:
            parts.append(f"across {numbers['distinct_actors']} actors")
        return "".join(f", {part}" for part in parts)


class CountThreshold(_Threshold[list[Hit]]):
    """Fires when a group has ``required`` matching events within ``window``."""

    def __init__(
        self, window: timedelta, required: int, group_by: Sequence[str], max_groups: int
    ) -> None:
        super().__init__(window, required, group_by, max_groups)
        self.table = GroupTable(max_groups)

    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        if None in key:
            return None
        group: GroupKey = key  # type: ignore[assignment]  # no None left
        event = observation.event
        now = to_micros(event.time)
        found, newest = self.table.find(group, now)
        hits = found or []
        bisect.insort(hits, Hit.of(event, now), key=_hit_time)
        del hits[: bisect.bisect_left(hits, newest - self.window_us, key=_hit_time)]
        if len(hits) < self.required:
            self.table.put(group, newest, hits)
            return None
        self.table.drop(group)
        return self._fire(group, event, hits)

    def _fire(self, group: GroupKey, event: Event, hits: list[Hit]) -> Firing:
        numbers = self._numbers(hits)
        numbers["count"] = len(hits)
        subject, by_actor = self._subject(group, event)
        outcome = _common_outcome(hits)
        summary = (
            f"{subject}: {len(hits)} {outcome}{numbers['actions']} events within "
            f"{numbers['window']} (threshold {self.required})"
            f"{self._extras(numbers)}{by_actor}"
        )
        evidence = cap_evidence([hit.id for hit in hits], event.id)
        explanation = {"measure": "count", **numbers}
        return Firing(evidence, summary, numbers, explanation)

    def to_state(self) -> list[Any]:
        return self.table.to_state(lambda hits: [list(hit) for hit in hits])

    def load_state(self, state: list[Any]) -> None:
        self.table.load_state(state, lambda rows: [Hit(*row) for row in rows])


class DistinctThreshold(_Threshold[dict[str, tuple[Hit, int]]]):
    """Fires when a group shows ``required`` distinct values of ``field`` within ``window``."""

    def __init__(
        self,
        window: timedelta,
        required: int,
        field: FieldPath,
        group_by: Sequence[str],
        max_groups: int,
    ) -> None:
        super().__init__(window, required, group_by, max_groups)
        self.field = field
        # value -> (latest hit, matching events for that value since it entered the window)
        self.table = GroupTable(max_groups)

    def observe(self, observation: Observation, key: tuple[str | None, ...]) -> Firing | None:
        value = self.field.text_value(observation)
        if None in key or value is None:
            return None
        group: GroupKey = key  # type: ignore[assignment]  # no None left
        event = observation.event
        now = to_micros(event.time)
        found, newest = self.table.find(group, now)
        seen = found or {}
        horizon = newest - self.window_us
        for stale in [v for v, (hit, _) in seen.items() if hit.time < horizon]:
            del seen[stale]
        latest, events = seen.pop(value, (None, 0))
        hit = Hit.of(event, now)
        seen[value] = (hit if latest is None or now >= latest.time else latest, events + 1)
        if len(seen) < self.required:
            self.table.put(group, newest, seen)
            return None
        self.table.drop(group)
        return self._fire(group, event, seen)

    def _fire(self, group: GroupKey, event: Event, seen: dict[str, tuple[Hit, int]]) -> Firing:
        hits = [hit for hit, _ in seen.values()]
        numbers = self._numbers(hits)
        count = sum(events for _, events in seen.values())
        label = self.field.text.rsplit(".", 1)[-1]
        numbers.update(
            count=count,
            distinct=len(seen),
            field=self.field.text,
            values=join_limited(seen, 5),
        )
        subject, by_actor = self._subject(group, event)
        outcome = _common_outcome(hits)
        summary = (
            f"{subject}: {len(seen)} distinct {label} values within {numbers['window']} "
            f"(threshold {self.required}) over {count} {outcome}{numbers['actions']} events"
            f"{self._extras(numbers, self.field.text)}{by_actor}"
        )
        evidence = cap_evidence([hit.id for hit in hits], event.id)
        explanation = {
            "measure": "distinct",
            **numbers,
            "distinct_values": list(seen)[-_SAMPLE_CAP:],
        }
        return Firing(evidence, summary, numbers, explanation)

    def to_state(self) -> list[Any]:
        return self.table.to_state(
            lambda seen: [[value, list(hit), events] for value, (hit, events) in seen.items()]
        )

    def load_state(self, state: list[Any]) -> None:
        self.table.load_state(
            state, lambda rows: {str(v): (Hit(*hit), int(n)) for v, hit, n in rows}
        )


def _common_outcome(hits: Iterable[Hit]) -> str:
    outcomes = {hit.outcome for hit in hits}
    word = outcome_word(outcomes.pop()) if len(outcomes) == 1 else ""
    return f"{word} " if word else ""
