"""A clock tests move by hand, and event times in minutes, for code that takes a ``clock``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    """Seconds, as ``time.monotonic`` gives them; the test sets :attr:`now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def at(minute: int) -> datetime:
    """``minute`` minutes after :data:`T0`."""
    return T0 + timedelta(minutes=minute)
