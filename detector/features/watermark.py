"""A feature store's event time: the watermark, and which events are too late to count.

The watermark is the newest event time seen; an event older than it by more
than its source's allowed lateness is late: described, counted in
``late_events``, and left out of the state. Idle keys are looked for as the
watermark moves on (:meth:`KeyTables.evict_idle`), every 1/100 of the idle
time (at least a minute of event time), not per event.
"""

from __future__ import annotations

from detector.events.model import Event
from detector.features.settings import FeatureSettings
from detector.features.tables import KeyTables

__all__ = ["Watermark"]


class Watermark:
    """The newest event time seen (``newest``, None before the first) and the late events."""

    __slots__ = (
        "_eviction_interval",
        "_lateness",
        "_source_lateness",
        "_tables",
        "late_events",
        "newest",
    )

    def __init__(self, settings: FeatureSettings, tables: KeyTables) -> None:
        self.newest: float | None = None
        self.late_events = 0
        self._tables = tables
        self._lateness = settings.allowed_lateness.total_seconds()
        # Per source, in seconds: the late check stays one dict lookup per event.
        self._source_lateness = {
            source: lateness.total_seconds()
            for source, lateness in settings.source_lateness.items()
        }
        self._eviction_interval = max(60.0, settings.evict_idle_after.total_seconds() / 100)

    def late(self, event: Event, time: float) -> bool:
        """Whether ``event`` (at ``time``) is too late to count (counted); the watermark
        moved on, and idle keys dropped when their scan is due, if it is not."""
        newest = self.newest
        if newest is None or time > newest:
            self.newest = time
            interval = self._eviction_interval
            if newest is not None and time // interval != newest // interval:
                self._tables.evict_idle(time)
            return False
        if time < newest - self._source_lateness.get(event.source, self._lateness):
            self.late_events += 1
            return True
        return False

    def evict_idle(self) -> int:
        """Drop keys with no event for the idle time before the watermark; how many."""
        return 0 if self.newest is None else self._tables.evict_idle(self.newest)
