"""Features computed from an event and its actor's counts rather than counted themselves.

- :class:`ProductionMatcher`: does an event act on production (its
  ``attributes.namespace`` or ``target`` matches a configured glob)?
- :func:`actor_ratios`: per window, ``failure_ratio`` and ``events_vs_baseline``
  from the packed actor totals.

Kept apart from the store so the hot path stays short and each formula is
written once, for the streaming store and the batch frame alike.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detector.events.model import Event
from detector.features.windows import LANE_BITS, LANE_MASK

__all__ = ["ProductionMatcher", "actor_ratios"]

_CACHE_LIMIT = 4096
_SECONDS_PER_HOUR = 3600.0


class ProductionMatcher:
    """Case-insensitive glob match of an event's namespace or target, with a small cache.

    >>> matcher = ProductionMatcher(("prod*",))
    >>> matcher.matches("Production/deployments/api"), matcher.matches("staging")
    (True, False)
    """

    __slots__ = ("_cache", "_pattern")

    def __init__(self, globs: Sequence[str]) -> None:
        translated = [fnmatch.translate(glob.lower()) for glob in globs]
        self._pattern = re.compile("|".join(translated)) if translated else None
        self._cache: dict[str, bool] = {}

    def matches(self, value: str) -> bool:
        """Whether ``value`` (lowercased) matches one of the globs."""
        known = self._cache.get(value)
        if known is not None:
            return known
        found = self._pattern is not None and self._pattern.match(value.lower()) is not None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # namespaces are few; targets may not be
        self._cache[value] = found
        return found

    def event_is_production(self, event: Event) -> bool:
        """The event's ``attributes.namespace`` or ``target`` is a production one."""
        # The cache read here first: a call of matches() less per value (every actor event).
        cache = self._cache
        namespace = event.attributes.get("namespace")
        if namespace:
            found = cache.get(namespace)
            if found or (found is None and self.matches(namespace)):
                return True
        target = event.target
        if not target:
            return False
        found = cache.get(target)
        return self.matches(target) if found is None else found


def actor_ratios(
    packed: Sequence[int], window_hours: Sequence[float], past_events: float, history: float
) -> list[float]:
    """Per window, ``failure_ratio`` and ``events_vs_baseline`` of the actor.

    ``failure_ratio`` is failures / events in the window (0 without events).
    ``events_vs_baseline`` is the window's events over the actor's usual count
    for that long plus one: its past events per hour (over its history, at
    least an hour) times the window's hours; the ``+ 1`` keeps a new actor
    finite (its first event gives 1.0).

    ``packed``: the actor's packed totals per window (channel 0 events,
    channel 1 failures); ``window_hours``: each window's length in hours;
    ``past_events``: the actor's events before this one; ``history``: seconds
    since its first event.
    """
    rate = past_events / max(1.0, history / _SECONDS_PER_HOUR)
    ratios: list[float] = []
    for totals, hours in zip(packed, window_hours, strict=True):
        events = totals & LANE_MASK
        failures = (totals >> LANE_BITS) & LANE_MASK
        ratios += (failures / events if events else 0.0, events / (rate * hours + 1.0))
    return ratios


def actor_ratio_rows(
    totals: npt.NDArray[np.int64],
    window_hours: Sequence[float],
    past_events: Sequence[int],
    history: Sequence[float],
) -> npt.NDArray[np.float64]:
    """:func:`actor_ratios` of many actors' totals at once, to the same floats, an actor a row.

    ``totals``: (actors, windows, channels) counts (channel 0 events, channel 1
    failures); ``past_events`` and ``history`` per actor.
    """
    events = totals[:, :, 0].astype(np.float64)
    failures = totals[:, :, 1].astype(np.float64) if totals.shape[2] > 1 else events * 0.0
    hours = np.array(history, dtype=np.float64) / _SECONDS_PER_HOUR
    rate = np.array(past_events, dtype=np.float64) / np.maximum(1.0, hours)
    failure_ratio = np.divide(failures, events, out=np.zeros_like(events), where=events > 0)
    baseline = events / (rate[:, None] * np.array(window_hours)[None, :] + 1.0)
    return np.stack((failure_ratio, baseline), axis=2).reshape(len(totals), -1)
