"""Durations written the way people write them in config: ``30s``, ``5m``, ``7d``.

Settings, rule packs and CLI options all accept these strings, so the parser
lives here, upstream of every layer that needs it.

Settings type their fields with :data:`Duration` (above zero),
:data:`DurationOrZero` or :data:`DurationOrOff` (0 or null: None).

>>> parse_duration("90s")
datetime.timedelta(seconds=90)
>>> format_duration(timedelta(hours=1))
'1h'
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

__all__ = [
    "Duration",
    "DurationOrOff",
    "DurationOrZero",
    "coerce_duration",
    "format_duration",
    "parse_duration",
]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(\d+)([smhdw])")
_LARGEST_FIRST = sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1])


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """Parse ``"30s"``, ``"5m"``, ``"1h"``, ``"7d"``, ``"2w"`` or ``"1h30m"``.

    Units: s, m, h, d, w. Parts are whole numbers; the whole duration must be
    above zero unless ``allow_zero`` (then ``"0s"`` is accepted). Raises
    ``ValueError`` naming the bad input otherwise.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration must be a string like '5m', got {type(text).__name__}")
    compact = text.strip().lower()
    if not compact:
        raise ValueError(
            "duration is empty; expected a number and a unit like '30s', '5m', '1h', '7d', '2w'"
        )
    position = 0
    seconds = 0
    for match in _DURATION.finditer(compact):
        if match.start() != position:
            break
        seconds += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(compact):
        raise ValueError(
            f"invalid duration {text!r}; expected a number and a unit (s, m, h, d, w) "
            "like '30s', '5m', '1h', '7d', '2w' or '1h30m'"
        )
    if seconds <= 0 and not allow_zero:
        raise ValueError(f"duration {text!r} must be greater than zero")
    return timedelta(seconds=seconds)


def coerce_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """Accept a ``timedelta``, a duration string or seconds as a number (for validators)."""
    if isinstance(value, bool):
        raise ValueError("duration must be a string like '5m', not a boolean")
    if isinstance(value, int | float):
        value = timedelta(seconds=value)
    if isinstance(value, timedelta):
        if value < timedelta(0) or (value == timedelta(0) and not allow_zero):
            raise ValueError(f"duration {format_duration(value)!r} must be greater than zero")
        return value
    if isinstance(value, str):
        return parse_duration(value, allow_zero=allow_zero)
    raise ValueError(f"duration must be a string like '5m', got {type(value).__name__}")


def format_duration(duration: timedelta) -> str:
    """Render a duration in the shortest form :func:`parse_duration` reads back (``1h30m``)."""
    remaining = int(duration.total_seconds())
    if remaining == 0 == duration.total_seconds():
        return "0s"
    if remaining <= 0 or remaining != duration.total_seconds():
        return f"{duration.total_seconds():g}s"
    parts: list[str] = []
    for unit, size in _LARGEST_FIRST:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _positive(value: object) -> timedelta:
    return coerce_duration(value)


def _zero_allowed(value: object) -> timedelta:
    return coerce_duration(value, allow_zero=True)


def _zero_is_off(value: object) -> timedelta | None:
    return None if value is None else coerce_duration(value, allow_zero=True) or None


Duration = Annotated[timedelta, BeforeValidator(_positive)]
"""A pydantic field above zero: a ``timedelta``, seconds, or a string like ``"5m"``."""

DurationOrZero = Annotated[timedelta, BeforeValidator(_zero_allowed)]
"""As :data:`Duration`, and zero is allowed (``0s``: none at all)."""

DurationOrOff = Annotated[timedelta | None, BeforeValidator(_zero_is_off)]
"""As :data:`Duration`, or 0 or null for off (both None)."""
