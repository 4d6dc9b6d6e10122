"""Change windows: local wall-clock time in a zone, days, midnight crossing, daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from detector.rules import ChangeWindow, RuleContext
from detector.rules.context import DAYS


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


WEEKDAYS_PARIS = ChangeWindow(
    days=("mon", "tue", "wed", "thu", "fri"), start="09:00", end="17:00", timezone="Europe/Paris"
)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (utc(2026, 1, 5, 8, 0), True),  # Monday 09:00 in Paris (UTC+1): the start is inside
        (utc(2026, 1, 5, 7, 59), False),  # 08:59 Paris
        (utc(2026, 1, 5, 15, 59), True),  # 16:59 Paris
        (utc(2026, 1, 5, 16, 0), False),  # 17:00 Paris: the end is outside
        (utc(2026, 1, 10, 10, 0), False),  # Saturday
        (utc(2026, 7, 6, 7, 30), True),  # July, UTC+2: 09:30 Paris
        (utc(2026, 7, 6, 15, 30), False),  # July: 17:30 Paris although 15:30 UTC
    ],
)
def test_windows_use_local_time_in_their_zone(moment: datetime, inside: bool) -> None:
    assert WEEKDAYS_PARIS.contains(moment) is inside


def test_the_daylight_saving_switch_moves_the_window_in_utc() -> None:
    window = ChangeWindow(start="01:30", end="03:30", timezone="America/New_York")
    # 2026-03-08: clocks jump from 02:00 to 03:00 in New York (EST -5 → EDT -4).
    assert window.contains(utc(2026, 3, 8, 6, 45))  # 01:45 EST
    assert window.contains(utc(2026, 3, 8, 7, 15))  # 03:15 EDT
    assert not window.contains(utc(2026, 3, 8, 7, 45))  # 03:45 EDT


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts() -> None:
    window = ChangeWindow(days=("sat",), start="22:00", end="02:00", timezone="UTC")
    assert window.contains(utc(2026, 1, 10, 23, 0))  # Saturday night
    assert window.contains(utc(2026, 1, 11, 1, 59))  # early Sunday: Saturday's window
    assert not window.contains(utc(2026, 1, 11, 2, 0))
    assert not window.contains(utc(2026, 1, 11, 23, 0))  # Sunday night: no window starts
    assert not window.contains(utc(2026, 1, 10, 1, 0))  # early Saturday: Friday's window


def test_defaults_every_day_in_utc() -> None:
    window = ChangeWindow(start="00:00", end="06:00")
    assert window.days == DAYS
    assert all(window.contains(utc(2026, 1, day, 5, 59)) for day in range(5, 12))


def test_the_context_checks_every_window() -> None:
    context = RuleContext(
        change_windows=(
            WEEKDAYS_PARIS,
            ChangeWindow(days=("sun",), start="03:00", end="04:00"),
        )
    )
    assert context.in_change_window(utc(2026, 1, 5, 9, 0))
    assert context.in_change_window(utc(2026, 1, 11, 3, 30))
    assert not context.in_change_window(utc(2026, 1, 11, 4, 30))
    assert not RuleContext().in_change_window(utc(2026, 1, 5, 9, 0))


def test_the_context_parses_config_shaped_input() -> None:
    context = RuleContext.model_validate(
        {
            "change_windows": [{"days": ["Sat", "sun"], "start": "10:00", "end": "12:00"}],
            "allowed_lateness": "2m",
            "tracked": ["country"],
        }
    )
    assert context.change_windows[0].days == ("sat", "sun")
    assert context.allowed_lateness.total_seconds() == 120
    assert context.tracked == ("country",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"start": "9:00", "end": "17:00"}, "HH:MM"),
        ({"start": "09:00", "end": "24:00"}, "HH:MM"),
        ({"start": "09:00", "end": "09:00"}, "empty"),
        ({"start": "09:00", "end": "17:00", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"start": "09:00", "end": "17:00", "days": ["monday"]}, "days"),
        ({"start": "09:00", "end": "17:00", "days": []}, "never apply"),
        ({"start": "09:00", "end": "17:00", "every": "day"}, "Extra inputs"),
    ],
)
def test_invalid_windows_are_rejected(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ChangeWindow.model_validate(fields)
