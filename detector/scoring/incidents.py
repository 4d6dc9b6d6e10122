"""Keeping incidents out of training: the rows of an alerted actor around its alert.

A model learns whatever its training window holds. A daemon that retrains
daily on its own history would otherwise learn last Tuesday's mass clone as
this organisation's normal and miss the next one. So every alert marks its
actor's activity from an hour before its first event to an hour after its last
(revisions widen it) as an *incident*, and training leaves those rows out —
for every family, since an attacker's account misbehaves across sources. The
history itself keeps them (its sample stays the same whatever the batching);
only the frames handed to training are filtered. A false alert costs the
models an hour or two of one actor's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps

__all__ = ["Incident", "Incidents"]

MARGIN = timedelta(hours=1)
Incident = tuple[str, str, datetime, datetime]
"""(alert id, actor, first event time, last event time) of one alert."""


class Incidents:
    """The incident intervals by alert id, bounded: the oldest go first beyond ``limit``."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._spans: dict[str, tuple[str, datetime, datetime]] = {}

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, incidents: Iterable[Incident]) -> None:
        """Record alerts (a revision of the same id widens its interval)."""
        for key, actor, first, last in incidents:
            known = self._spans.get(key)
            if known is not None:
                first, last = min(first, known[1]), max(last, known[2])
            self._spans[key] = (actor, first - MARGIN, last + MARGIN)
        while len(self._spans) > self._limit:
            del self._spans[next(iter(self._spans))]

    def forget_before(self, moment: datetime) -> None:
        """Drop incidents that ended before ``moment`` (out of every training window)."""
        self._spans = {k: span for k, span in self._spans.items() if span[2] >= moment}

    def mask(self, rows: pd.DataFrame) -> Any:
        """A boolean Series: True for the rows (``actor``, ``time``) inside an incident."""
        inside = pd.Series(False, index=rows.index)
        if rows.empty:
            return inside
        actors = rows["actor"]
        present = set(actors.unique())
        for actor, start, end in self._spans.values():
            if actor in present:
                times = rows["time"]
                inside |= (actors == actor) & (times >= start) & (times <= end)
        return inside

    def snapshot(self) -> dict[str, list[str]]:
        return {
            key: [actor, start.isoformat(), end.isoformat()]
            for key, (actor, start, end) in self._spans.items()
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self._spans = {
            str(key): (str(actor), datetime.fromisoformat(start), datetime.fromisoformat(end))
            for key, (actor, start, end) in state.items()
        }
