"""What rules need from the deployment: change windows, tracked fields, bounds.

>>> window = ChangeWindow(days=("sat",), start="22:00", end="02:00", timezone="Europe/Paris")
>>> from datetime import datetime, UTC
>>> window.contains(datetime(2026, 1, 10, 22, 30, tzinfo=UTC))  # 23:30 Saturday in Paris
True
>>> window.contains(datetime(2026, 1, 11, 0, 30, tzinfo=UTC))  # 01:30 Sunday: Saturday's window
True
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detector.features.durations import DurationOrZero
from detector.features.settings import FeatureSettings
from detector.rules.regexes import DEFAULT_MAX_LENGTH, DEFAULT_TIMEOUT

__all__ = ["DAYS", "ChangeWindow", "RuleContext"]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class ChangeWindow(BaseModel):
    """A recurring period in which infrastructure changes are expected.

    ``days`` are the days the window *starts* on; ``start`` and ``end`` are
    ``HH:MM`` local wall-clock times in ``timezone`` (an IANA zone name). An end
    at or before the start crosses midnight into the next day. Daylight-saving
    shifts follow the zone: ``09:00`` stays 09:00 local all year.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Day, ...] = DAYS
    start: str
    end: str
    timezone: str = "UTC"

    @field_validator("days", mode="before")
    @classmethod
    def _lower_days(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(item.lower() if isinstance(item, str) else item for item in value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.fullmatch(value):
            raise ValueError(f"expected a time as HH:MM (00:00 to 23:59), got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
            ) from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> ChangeWindow:
        if not self.days:
            raise ValueError("days is empty: the window would never apply")
        if self.start == self.end:
            raise ValueError("start equals end: the window would be empty")
        return self

    def contains(self, moment: datetime) -> bool:
        """True if ``moment`` (timezone-aware) falls inside one occurrence of this window."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        clock = local.time().replace(tzinfo=None)
        start, end = _clock_time(self.start), _clock_time(self.end)
        day = DAYS[local.weekday()]
        if start < end:
            return day in self.days and start <= clock < end
        # Crosses midnight: the late part belongs to today's window, the early part to yesterday's.
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and clock >= start) or (yesterday in self.days and clock < end)


@cache
def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


class RuleContext(BaseModel):
    """Deployment facts the rule engine needs.

    ``change_windows``: events inside any of them are ignored by rules with
    ``unless_change_window: true``. ``tracked``: the fields the feature store
    reports first-seen values for (``FeatureSettings.tracked``); new_value rules
    may only name these. ``allowed_lateness``: the largest allowed lateness of any
    source (``FeatureSettings.longest_lateness``), so that idle rule state is kept
    long enough for every source's in-time stragglers.
    ``max_groups_per_rule``: beyond it, the least recently active group keys of a
    stateful rule are dropped. ``regex_timeout``: seconds one match of a pattern RE2
    cannot compile may take on the backtracking engine. ``regex_max_length``: the
    characters of a value a ``regex`` condition searches, unless it sets ``max_length``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    change_windows: tuple[ChangeWindow, ...] = ()
    tracked: tuple[str, ...] = Field(default_factory=lambda: FeatureSettings().tracked)
    allowed_lateness: DurationOrZero = timedelta(minutes=5)
    max_groups_per_rule: int = Field(default=100_000, ge=1)
    regex_timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=10)
    regex_max_length: int = Field(default=DEFAULT_MAX_LENGTH, ge=1)

    def in_change_window(self, moment: datetime) -> bool:
        """True if ``moment`` is inside any configured change window."""
        return any(window.contains(moment) for window in self.change_windows)
