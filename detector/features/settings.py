"""How the feature store counts, learns, forgets and bounds its memory.

>>> FeatureSettings(windows=("10m", "1h"), learning_period="14d").learning_period.days
14
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detector.features.durations import Duration, DurationOrZero, format_duration

__all__ = [
    "DEFAULT_ARENA_BYTES",
    "DEFAULT_SOURCE_LATENESS",
    "EVENT_FIELDS",
    "Duration",
    "FeatureSettings",
    "window_label",
]


EVENT_FIELDS = ("ip", "country", "user_agent", "target", "action", "source")
"""Event fields a tracked name may refer to; any other name is an ``attributes`` key."""

_TRACKED_NAME = re.compile(r"[a-z][a-z0-9_]*")

DEFAULT_SOURCE_LATENESS = MappingProxyType(
    {
        # AWS: "typically within an average of about 5 minutes ... not guaranteed";
        # files are published about every 5 minutes per region, so regions interleave.
        "cloudtrail": timedelta(minutes=15),
        # Azure Monitor: 30 s with diagnostic settings, 10-15 min with the legacy path.
        "azure_activity": timedelta(minutes=15),
        # Entra ID: 99% of sign-ins and audits within 5 min (Microsoft's former
        # latency table); non-interactive sign-ins are reported far later in practice.
        "azure_entra_id": timedelta(minutes=30),
        # Office 365 Management Activity API: 60-90 min typical for core services,
        # no SLA, and content blobs are not in time order.
        "m365_audit": timedelta(hours=2),
        # Google Cloud: near real time through Pub/Sub and Logging sinks.
        "gcp_audit": timedelta(minutes=10),
    }
)
"""Per-source allowed lateness shipped with ciwatch; docs/features.md gives the sources."""
_MIN_WINDOW = timedelta(minutes=1)
DEFAULT_ARENA_BYTES = 128 << 20
"""Hot window counters per arena: 9,811 actors hot at 13.7 KB a slot (docs/sizing.md)."""
_MIN_ARENA_BYTES = 1 << 20


def window_label(window: timedelta) -> str:
    """The suffix a window gives its feature names: ``5m``, ``1h``, ``24h``, ``7d``.

    Hours up to a day and a half read better than days (``24h``, ``36h``);
    longer whole-day windows are written in days.
    """
    seconds = int(window.total_seconds())
    if seconds % 86_400 == 0 and seconds >= 2 * 86_400:
        return f"{seconds // 86_400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class FeatureSettings(BaseModel):
    """Settings of :class:`detector.features.store.FeatureStore`.

    - ``windows``: sliding event-time windows of the count features; each is
      counted in 60 buckets, so its edge is exact to 1/60 of its length.
    - ``allowed_lateness``: how far behind the watermark (the newest event time
      seen) an event may be and still count; older events are late. Applies to
      sources not in ``source_lateness``.
    - ``source_lateness``: the allowed lateness of particular sources (log
      types) whose vendors deliver later; entries given replace the default of
      that source (:data:`DEFAULT_SOURCE_LATENESS`), the others stay.
    - ``learning_period``: per actor, from its first event; first-seen values
      are not reported while it lasts.
    - ``forget_after``: a value not seen for this long is new again (at least
      the longest window).
    - ``evict_idle_after``: a key (actor, IP, target) with no event for this
      long is dropped whole.
    - ``max_keys``: per key kind; the least recently active keys beyond it are
      dropped.
    - ``max_values_per_set``: per remembered set; the least recently seen
      values beyond it are dropped.
    - ``arena_bytes``: at most this many bytes of hot window counters per arena
      (one for actors, one for IPs and targets) once the counter kernels are
      compiled; an event of an actor that went cold brings it back, which
      costs far more than counting it hot (docs/sizing.md).
    - ``tracked``: fields whose first appearance per actor is reported (event
      fields from :data:`EVENT_FIELDS` or ``attributes`` keys).
    - ``production_namespaces``: glob patterns (``fnmatch``, case-insensitive)
      an event's ``attributes.namespace`` or ``target`` matches when it acts on
      production (``event.production``, ``actor.production.<w>``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    windows: tuple[Duration, ...] = (
        timedelta(minutes=5),
        timedelta(hours=1),
        timedelta(hours=24),
    )
    allowed_lateness: DurationOrZero = timedelta(minutes=5)
    source_lateness: dict[str, DurationOrZero] = Field(
        default_factory=lambda: dict(DEFAULT_SOURCE_LATENESS)
    )
    learning_period: DurationOrZero = timedelta(days=7)
    forget_after: Duration = timedelta(days=90)
    evict_idle_after: Duration = timedelta(days=30)
    max_keys: int = Field(default=50_000, ge=1)
    max_values_per_set: int = Field(default=256, ge=1)
    arena_bytes: int = Field(default=DEFAULT_ARENA_BYTES, ge=_MIN_ARENA_BYTES)
    tracked: tuple[str, ...] = ("ip", "country", "user_agent", "repo", "namespace")
    production_namespaces: tuple[str, ...] = ("prod*", "production*")

    @field_validator("windows", mode="after")
    @classmethod
    def _check_windows(cls, windows: tuple[timedelta, ...]) -> tuple[timedelta, ...]:
        if not windows:
            raise ValueError("at least one window is needed")
        for window in windows:
            if window < _MIN_WINDOW or window.total_seconds() % 1:
                raise ValueError(
                    f"window {format_duration(window)!r} must be whole seconds and at least 1m"
                )
        labels = [window_label(window) for window in windows]
        if len(set(labels)) != len(labels):
            raise ValueError(f"windows must be different, got {', '.join(labels)}")
        return tuple(sorted(windows))

    @field_validator("source_lateness", mode="after")
    @classmethod
    def _merge_source_lateness(cls, given: dict[str, timedelta]) -> dict[str, timedelta]:
        # Unknown names are fine (new log types arrive before ciwatch knows them).
        for name in given:
            if not name.strip():
                raise ValueError("a source name must not be empty")
        return {**DEFAULT_SOURCE_LATENESS, **given}

    @field_validator("tracked", "production_namespaces", mode="before")
    @classmethod
    def _split_comma_list(cls, value: Any) -> Any:
        return tuple(value.split(",")) if isinstance(value, str) else value

    @field_validator("tracked", mode="after")
    @classmethod
    def _check_tracked(cls, tracked: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(name.strip() for name in tracked)
        for name in names:
            if not _TRACKED_NAME.fullmatch(name):
                raise ValueError(
                    f"tracked field {name!r} must be lowercase letters, digits and _ "
                    "(an event field such as country, or an attributes key such as repo)"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"tracked fields repeat: {', '.join(names)}")
        return names

    @field_validator("production_namespaces", mode="after")
    @classmethod
    def _check_globs(cls, globs: tuple[str, ...]) -> tuple[str, ...]:
        patterns = tuple(glob.strip() for glob in globs)
        if not all(patterns):
            raise ValueError("production namespace patterns must not be empty")
        return patterns

    @model_validator(mode="after")
    def _check_forget_after(self) -> FeatureSettings:
        # A forgotten value must also have left every window, or distinct
        # counts would count it twice when it comes back.
        if self.forget_after < self.windows[-1]:
            raise ValueError(
                f"forget_after ({format_duration(self.forget_after)}) must be at least "
                f"the longest window ({format_duration(self.windows[-1])})"
            )
        return self

    @property
    def longest_lateness(self) -> timedelta:
        """The largest allowed lateness of any source: how long idle rule state waits."""
        return max([self.allowed_lateness, *self.source_lateness.values()])

    def lateness_of(self, source: str) -> timedelta:
        """The allowed lateness of events from ``source``."""
        return self.source_lateness.get(source, self.allowed_lateness)

    @property
    def window_labels(self) -> tuple[str, ...]:
        """Feature-name suffixes of the windows, shortest window first."""
        return tuple(window_label(window) for window in self.windows)
