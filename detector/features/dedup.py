"""Duplicate events: shippers and Kafka redeliver, and a redelivered event must count once.

:class:`RecentIds` remembers, per source, the ids of the events seen within a
window of event time (``duplicates.window``, default 24 h) and at most
``duplicates.max_ids`` of them per source, the oldest forgotten first. An event
whose id is remembered is a duplicate: counted, and kept away from the features
and rules, so five failed sign-ins delivered twice are five, not ten.

The id is the vendor's event id (``eventID``, Okta's ``uuid``, ...) or, where a
vendor has none, the normalizer's hash of the whole record: a redelivered copy
hashes the same. The memory is part of the checkpoint, so records read again
after a restart are not counted twice either. Per source, so that a chatty
source cannot push another's ids out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from detector.events.model import Event
from detector.features.settings import Duration

__all__ = ["DuplicateSettings", "RecentIds"]


class DuplicateSettings(BaseModel):
    """How long and how many event ids are remembered to recognise a redelivery."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    window: Duration = timedelta(hours=24)
    """An id is remembered until its source's newest event is this much later."""
    max_ids: int = Field(default=100_000, ge=1)
    """Per source; beyond it the oldest ids are forgotten first (about 150 bytes each)."""


class _SourceIds:
    """One source's remembered ids: a dict for lookups, a queue in arrival order to expire."""

    __slots__ = ("newest", "order", "times")

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.order: deque[tuple[float, str]] = deque()
        self.newest = float("-inf")


class RecentIds:
    """Recognises events seen before; :meth:`is_duplicate` once per event, in stream order."""

    def __init__(self, settings: DuplicateSettings) -> None:
        self.settings = settings
        # The settings are frozen: read once here rather than per event.
        self._enabled = settings.enabled
        self._window = settings.window.total_seconds()
        self._max_ids = settings.max_ids
        self._sources: dict[str, _SourceIds] = {}

    def __len__(self) -> int:
        return sum(len(ids.times) for ids in self._sources.values())

    def is_duplicate(self, event: Event) -> bool:
        """True if ``event``'s id was seen within the window; otherwise remember it."""
        return not self.new_events([event], [event.time.timestamp()])[0]

    def new_events(
        self, events: Sequence[Event], times: Sequence[float]
    ) -> tuple[list[Event], list[float], list[Event]]:
        """:meth:`is_duplicate` of each event in turn (``times``: theirs in seconds): the new
        ones with their times, and the duplicates."""
        if not self._enabled:
            return list(events), list(times), []
        kept: list[Event] = []
        kept_times: list[float] = []
        duplicates: list[Event] = []
        sources, window, max_ids = self._sources, self._window, self._max_ids
        for event, time in zip(events, times, strict=True):
            ids = sources.get(event.source)
            if ids is None:
                ids = sources[event.source] = _SourceIds()
            event_id, remembered = event.id, ids.times
            if event_id in remembered:
                duplicates.append(event)
                continue
            remembered[event_id] = time
            order = ids.order
            order.append((time, event_id))
            if time > ids.newest:
                ids.newest = time
            # Most events expire nothing: the first test of _expire's loop, without its call.
            if order[0][0] < ids.newest - window or len(order) > max_ids:
                self._expire(ids)
            kept.append(event)
            kept_times.append(time)
        return kept, kept_times, duplicates

    def _expire(self, ids: _SourceIds) -> None:
        # Arrival order is close to event-time order; an out-of-order old id waits at
        # most until the ids before it expire, and the cap bounds the queue regardless.
        horizon = ids.newest - self._window
        order, times = ids.order, ids.times
        while order and (order[0][0] < horizon or len(order) > self._max_ids):
            _, expired = order.popleft()
            times.pop(expired, None)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for the checkpoint: per source, ``[id, time]`` in arrival order."""
        return {
            source: [[event_id, time] for time, event_id in ids.order]
            for source, ids in self._sources.items()
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the remembered ids with those of :meth:`snapshot`."""
        self._sources = {}
        for source, pairs in state.items():
            ids = self._sources[source] = _SourceIds()
            for event_id, time in pairs:
                ids.times[str(event_id)] = float(time)
                ids.order.append((float(time), str(event_id)))
                ids.newest = max(ids.newest, float(time))
            self._expire(ids)
