from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from detector.events.fields import (
    EARLIEST_TIME,
    LATEST_TIME,
    first_str,
    get,
    get_path,
    parse_time,
    valid_ip,
)
from detector.events.model import DeadLetterReason, ParseError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1606929874512, datetime(2020, 12, 2, 17, 24, 34, 512000, tzinfo=UTC)),
        (1606929874, datetime(2020, 12, 2, 17, 24, 34, tzinfo=UTC)),
        (1606929874512000, datetime(2020, 12, 2, 17, 24, 34, 512000, tzinfo=UTC)),
        ("1606929874512", datetime(2020, 12, 2, 17, 24, 34, 512000, tzinfo=UTC)),
        ("2019-01-01T00:00:00Z", datetime(2019, 1, 1, tzinfo=UTC)),
        ("2022-03-22 14:21:53.225", datetime(2022, 3, 22, 14, 21, 53, 225000, tzinfo=UTC)),
        ("2025-01-15T14:20:35.4567890Z", datetime(2025, 1, 15, 14, 20, 35, 456789, tzinfo=UTC)),
        ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-12-17 00:00:00000000", datetime(2024, 12, 17, tzinfo=UTC)),
        ("2024-12-17 10:00:00 UTC", datetime(2024, 12, 17, 10, tzinfo=UTC)),
    ],
)
def test_parse_time_accepts_vendor_formats_as_utc(value: Any, expected: datetime) -> None:
    parsed = parse_time(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, DeadLetterReason.MISSING_TIME),
        ("", DeadLetterReason.MISSING_TIME),
        ("yesterday", DeadLetterReason.INVALID_TIME),
        (True, DeadLetterReason.INVALID_TIME),
        (10**30, DeadLetterReason.INVALID_TIME),
        (float("inf"), DeadLetterReason.INVALID_TIME),
        (float("nan"), DeadLetterReason.INVALID_TIME),
        ("2024-13-45T00:00:00Z", DeadLetterReason.INVALID_TIME),
    ],
)
def test_parse_time_rejects_with_a_reason(value: Any, reason: DeadLetterReason) -> None:
    with pytest.raises(ParseError) as caught:
        parse_time(value)
    assert caught.value.reason is reason


def test_get_reads_data_lake_lower_case_keys() -> None:
    doc = {"eventtype": "user.session.start", "useridentity": {"username": "ann"}}
    assert get(doc, "eventType") == "user.session.start"
    assert get_path(doc, "userIdentity.userName") == "ann"
    assert get({"eventType": "a", "eventtype": "b"}, "eventType") == "a"
    assert get("not a mapping", "x") is None


def test_first_str_skips_empty_and_container_values() -> None:
    doc = {"a": "", "b": {"c": None}, "d": [], "e": 0, "f": "x"}
    assert first_str(doc, "a", "b.c", "d", "e") == "0"
    assert first_str(doc, "a", "d", "f") == "x"
    assert first_str(doc, "missing") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("2001:db8::1", "2001:db8::1"),
        ("ec2.amazonaws.com", None),
        (None, None),
        (12, None),
    ],
)
def test_valid_ip_keeps_only_addresses(value: Any, expected: str | None) -> None:
    assert valid_ip(value) == expected


def test_the_time_bounds_start_a_year_as_parse_time_assumes() -> None:
    # parse_time's fast path compares years instead of the bounds themselves.
    for bound in (EARLIEST_TIME, LATEST_TIME):
        assert bound == datetime(bound.year, 1, 1, tzinfo=UTC)
    assert parse_time("2199-12-31T23:59:59.999999Z").year == 2199
    assert parse_time("1970-01-01T00:00:00Z") == EARLIEST_TIME
