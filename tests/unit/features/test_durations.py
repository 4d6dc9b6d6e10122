"""parse_duration, coerce_duration, format_duration: durations in settings and rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from detector.features.durations import (
    Duration,
    DurationOrOff,
    DurationOrZero,
    coerce_duration,
    format_duration,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(minutes=90)),
        (" 10M ", timedelta(minutes=10)),
    ],
)
def test_parses_numbers_with_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1.5h", "-5m", "5m 3s", "h5", "5mm"])
def test_rejects_malformed_text_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_rejects_zero_unless_allowed() -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration("0s")
    assert parse_duration("0m", allow_zero=True) == timedelta(0)


def test_error_message_lists_the_accepted_units() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration("ten minutes")
    assert "'ten minutes'" in str(caught.value)
    assert "(s, m, h, d, w)" in str(caught.value)


def test_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="string"):
        parse_duration(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=2), timedelta(minutes=2)),
        ("2m", timedelta(minutes=2)),
        (120, timedelta(minutes=2)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_coerce_accepts_timedelta_text_and_seconds(value: object, expected: timedelta) -> None:
    assert coerce_duration(value) == expected


@pytest.mark.parametrize("value", [True, None, [5], -3, timedelta(seconds=-1), timedelta(0)])
def test_coerce_rejects_other_values(value: object) -> None:
    with pytest.raises(ValueError):
        coerce_duration(value)


def test_coerce_allows_zero_when_asked() -> None:
    assert coerce_duration(timedelta(0), allow_zero=True) == timedelta(0)
    assert coerce_duration("0s", allow_zero=True) == timedelta(0)


@pytest.mark.parametrize("text", ["30s", "5m", "1h", "1d", "2w", "1h30m", "1w2d3h4m5s"])
def test_format_is_read_back_as_the_same_duration(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_format_of_fractions_and_zero() -> None:
    assert format_duration(timedelta(milliseconds=1500)) == "1.5s"
    assert format_duration(timedelta(0)) == "0s"


def test_the_pydantic_duration_types_differ_only_in_what_zero_means() -> None:
    assert TypeAdapter(Duration).validate_python("90s") == timedelta(seconds=90)
    with pytest.raises(ValidationError, match="greater than zero"):
        TypeAdapter(Duration).validate_python("0s")
    assert TypeAdapter(DurationOrZero).validate_python(0) == timedelta(0)
    assert TypeAdapter(DurationOrOff).validate_python("0s") is None
    assert TypeAdapter(DurationOrOff).validate_python(None) is None
    assert TypeAdapter(DurationOrOff).validate_python("1h") == timedelta(hours=1)
    with pytest.raises(ValidationError, match="invalid duration"):
        TypeAdapter(DurationOrZero).validate_python("soon")
