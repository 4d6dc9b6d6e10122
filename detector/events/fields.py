"""Small, forgiving readers for vendor JSON, shared by every parser.

Vendor events arrive in camelCase as published and, from data lakes, with
every key lower-cased (``eventType`` → ``eventtype``). :func:`get` accepts
both, so parsers name fields once, in the vendor's own spelling.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard

from detector.events.model import DeadLetterReason, ParseError

__all__ = [
    "EARLIEST_TIME",
    "LATEST_TIME",
    "MAX_SHOWN_CHARS",
    "first_str",
    "get",
    "get_path",
    "is_mapping",
    "parse_time",
    "require",
    "str_or_none",
    "valid_ip",
]

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest event time accepted: audit logs do not predate the Unix epoch."""
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
"""Event times from here on are ``invalid_time``: far enough ahead for any real clock, and far
enough below ``datetime.max`` (year 9999) that windows, suppression periods and lateness added
to an accepted time never overflow."""
MAX_SHOWN_CHARS = 200
"""At most this much of a bad value goes into a dead letter's detail (one can be megabytes)."""

_MISSING = object()
# Epoch magnitudes: seconds below 1e11 (year 5138), then milliseconds, microseconds, nanoseconds.
_EPOCH_SCALES = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (float("inf"), 1e9))
# Near-ISO strings seen in exports: a fraction without its dot, "UTC" spelled out, comma decimals.
_LOOSE_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,]?(\d+))?\s*(Z|UTC|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


_NEVER_MAPPINGS = frozenset({str, int, float, bool, list, type(None)})


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, answered without the ABC machinery for JSON's types.

    A negative ``isinstance`` against an ABC costs several times a dict lookup, and
    parsers ask it of strings, numbers and missing values many times per record.
    """
    kind = type(value)
    if kind is dict:
        return True
    return kind not in _NEVER_MAPPINGS and isinstance(value, Mapping)


def get(obj: Any, key: str) -> Any:
    """``obj[key]`` for a mapping, trying the data-lake lower-case spelling too; else None."""
    # The exact-type test first: parsed JSON is always a dict, and ABC checks are slow.
    if type(obj) is not dict and not is_mapping(obj):
        return None
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        value = obj.get(key.lower())
    return value


def get_path(obj: Any, path: str) -> Any:
    """Follow a dotted path (``"userIdentity.sessionIssuer.arn"``); None if absent."""
    steps = _STEPS.get(path)
    if steps is None:
        steps = _steps(path)
    for key, lower in steps:
        # get(), inlined: parsers call this some thirty times per record.
        if type(obj) is not dict and not is_mapping(obj):
            return None
        value = obj.get(key, _MISSING)
        if value is _MISSING:
            value = None if lower is None else obj.get(lower)
        obj = value
        if obj is None:
            return None
    return obj


_STEPS: dict[str, tuple[tuple[str, str | None], ...]] = {}
"""Dotted path → (key, its lower-case spelling or None when it is the same) per step; paths
are the parsers' constants, so this stays small. A lower-case key is looked up once."""


def _steps(path: str) -> tuple[tuple[str, str | None], ...]:
    steps = tuple((key, None if key.lower() == key else key.lower()) for key in path.split("."))
    _STEPS[path] = steps
    return steps


def str_or_none(value: Any) -> str | None:
    """A non-empty string form of a scalar, or None for missing, empty and containers."""
    kind = type(value)
    if kind is str:
        return value.strip() or None
    if (
        kind is not int
        and kind is not float
        and (value is None or is_mapping(value) or isinstance(value, list | bool))
    ):
        return None
    text = str(value).strip()
    return text or None


def first_str(obj: Any, *paths: str) -> str | None:
    """The first of several dotted paths that holds a non-empty scalar, as a string."""
    # get_path() and str_or_none() inlined: this is the parsers' hottest helper.
    if type(obj) is not dict and not is_mapping(obj):
        return None
    for path in paths:
        steps = _STEPS.get(path)
        if steps is None:
            steps = _steps(path)
        value: Any = obj
        for key, lower in steps:
            if type(value) is not dict and not is_mapping(value):
                value = None
                break
            found = value.get(key, _MISSING)
            if found is _MISSING:
                found = None if lower is None else value.get(lower)
            value = found
            if value is None:
                break
        if value is None:
            continue
        if type(value) is str:
            text: str | None = value.strip()
        else:
            text = str_or_none(value)
        if text:
            return text
    return None


def valid_ip(value: Any) -> str | None:
    """The value if it is an IPv4/IPv6 address, else None (vendors put hostnames here too)."""
    # Most addresses come as strings: str_or_none's answer for them, without its call.
    text = (value.strip() or None) if type(value) is str else str_or_none(value)
    return None if text is None else _canonical_ip(text)


@functools.lru_cache(maxsize=8192)
def _canonical_ip(text: str) -> str | None:
    # Streams repeat the same few addresses; parsing each again dominated the CloudTrail parser.
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_time(value: Any) -> datetime:
    """A vendor timestamp as an aware UTC datetime.

    Accepts ISO 8601 (``Z``, offsets, up to nanosecond fractions, space or
    ``T``; naive means UTC) and epoch seconds, milliseconds or microseconds as
    numbers or digit strings. Raises :class:`ParseError` (``missing_time`` or
    ``invalid_time``); a time outside :data:`EARLIEST_TIME` ..
    :data:`LATEST_TIME` is ``invalid_time`` too, and the detail shows at most
    :data:`MAX_SHOWN_CHARS` of the value.
    """
    if type(value) is int and value in _EPOCH_MILLIS:
        # GitHub's times: what the general way below makes of them, without the checks
        # that this range already answers (a number, finite, milliseconds, in range).
        return datetime.fromtimestamp(value / 1e3, UTC)
    if type(value) is str and value[4:5] == "-":
        # ISO 8601 in UTC, as most vendors send it: what _read_time makes of it, at once.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # The years say what comparing with EARLIEST_TIME and LATEST_TIME (both UTC, both
            # on 1 January at midnight) says, without two aware comparisons.
            if parsed.tzinfo is UTC and _EARLIEST_YEAR <= parsed.year < _LATEST_YEAR:
                return parsed
    if value is None or value == "":
        raise ParseError(DeadLetterReason.MISSING_TIME, "no timestamp")
    try:
        if isinstance(value, bool):
            raise ValueError("boolean")
        parsed = _read_time(value)
    except (ValueError, OverflowError, OSError) as exc:
        detail = f"bad timestamp {_shown(value)}: {_cause(exc)}"
        raise ParseError(DeadLetterReason.INVALID_TIME, detail) from None
    if not EARLIEST_TIME <= parsed < LATEST_TIME:
        # One record dated in year 2900 would otherwise move the watermark past every real event.
        detail = f"timestamp {_shown(value)} is outside the supported range {_SUPPORTED_RANGE}"
        raise ParseError(DeadLetterReason.INVALID_TIME, detail)
    return parsed


def _read_time(value: Any) -> datetime:
    kind = type(value)
    if kind is str and value[4:5] == "-":
        # Most times are ISO 8601 as sent: parsed at once. An epoch in digits never has a
        # dash at [4]; what fromisoformat refuses (spaces, "UTC") goes the general way.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if kind is int or kind is float or isinstance(value, int | float):
        return _from_epoch(float(value))
    text = str(value).strip()
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return _from_epoch(float(text))
    parsed = _from_iso(text)
    # Raises, inside the caller's try, for a time near year 1 or 9999 moved to UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_SUPPORTED_RANGE = f"{EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d} (UTC)"
_EARLIEST_YEAR, _LATEST_YEAR = EARLIEST_TIME.year, LATEST_TIME.year
"""What :func:`parse_time` compares a UTC time's year with: both bounds are 1 January, 00:00 UTC
(tests/unit/test_fields.py holds them to it)."""
_EPOCH_MILLIS = range(int(_EPOCH_SCALES[0][0]), int(LATEST_TIME.timestamp()) * 1000)
"""Integers :func:`parse_time` reads as epoch milliseconds that fall before :data:`LATEST_TIME`
(from year 1973: smaller numbers are seconds)."""


def _shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`MAX_SHOWN_CHARS` (saying how long it was) if longer."""
    if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
        return f"{value[:MAX_SHOWN_CHARS]!r}... ({len(value):,} characters)"
    try:
        return _shorten(repr(value))
    except ValueError:  # an integer past Python's 4300-digit conversion limit
        return f"a {type(value).__name__} too long to show"


def _cause(error: Exception) -> str:
    """The error's message; when it quotes a long value, only the words before the quote."""
    message = str(error)
    if len(message) <= _MAX_CAUSE_CHARS:
        return message
    return message.split(":", 1)[0][:_MAX_CAUSE_CHARS]


_MAX_CAUSE_CHARS = 100


def _shorten(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return f"{text[:MAX_SHOWN_CHARS]}... ({len(text):,} characters)"


def _from_iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        loose = _LOOSE_ISO.fullmatch(text)
        if loose is None:
            raise
    date, clock, fraction, zone = loose.groups()
    zone = "+00:00" if zone is None or zone.upper() in ("Z", "UTC") else zone
    return datetime.fromisoformat(f"{date}T{clock}.{(fraction or '0')[:6]:0<6}{zone}")


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    magnitude = abs(number)
    for bound, divisor in _EPOCH_SCALES:  # the last bound is infinite: one always fits
        if magnitude < bound:
            return datetime.fromtimestamp(number / divisor, UTC)
    raise AssertionError("unreachable: the last epoch bound is infinite")


def require(value: str | None, what: str) -> str:
    """``value`` if present; else ``missing_actor`` (for the actor) or ``unknown_format``."""
    if value is not None:
        return value
    reason = DeadLetterReason.MISSING_ACTOR if what == "actor" else DeadLetterReason.UNKNOWN_FORMAT
    raise ParseError(reason, f"no {what}")
