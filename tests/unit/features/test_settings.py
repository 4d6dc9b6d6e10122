"""FeatureSettings: defaults, duration strings, validation with clear messages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from detector.features.settings import FeatureSettings, window_label


def test_defaults_match_the_documented_ones() -> None:
    settings = FeatureSettings()
    assert settings.windows == (timedelta(minutes=5), timedelta(hours=1), timedelta(hours=24))
    assert settings.allowed_lateness == timedelta(minutes=5)
    assert settings.learning_period == timedelta(days=7)
    assert settings.forget_after == timedelta(days=90)
    assert settings.evict_idle_after == timedelta(days=30)
    assert settings.max_keys == 50_000
    assert settings.max_values_per_set == 256
    assert settings.arena_bytes == 128 * 2**20
    assert settings.tracked == ("ip", "country", "user_agent", "repo", "namespace")
    assert settings.window_labels == ("5m", "1h", "24h")


def test_accepts_duration_strings_and_sorts_windows() -> None:
    settings = FeatureSettings.model_validate(
        {
            "windows": ["1h", "10m"],
            "allowed_lateness": "0s",
            "learning_period": "2w",
            "tracked": "ip, country",
        }
    )
    assert settings.windows == (timedelta(minutes=10), timedelta(hours=1))
    assert settings.allowed_lateness == timedelta(0)
    assert settings.learning_period == timedelta(weeks=2)
    assert settings.tracked == ("ip", "country")


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"windows": ["5m", "300s"]}, "windows", "windows must be different"),
        ({"windows": ["30s"]}, "windows", "at least 1m"),
        ({"windows": []}, "windows", "at least one window"),
        ({"forget_after": "5x"}, "forget_after", "invalid duration '5x'"),
        ({"forget_after": "1h"}, "", "must be at least the longest window"),
        ({"allowed_lateness": "-1m"}, "allowed_lateness", "invalid duration"),
        ({"tracked": ["Country"]}, "tracked", "lowercase"),
        ({"tracked": ["ip", "ip"]}, "tracked", "repeat"),
        ({"max_keys": 0}, "max_keys", "greater than or equal to 1"),
        # Below one MiB is more likely MiB written as bytes than a wish for a few slots.
        ({"arena_bytes": 256}, "arena_bytes", "greater than or equal to 1048576"),
        ({"windwos": ["5m"]}, "windwos", "Extra inputs are not permitted"),
    ],
)
def test_rejects_bad_values_naming_the_field(
    values: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        FeatureSettings.model_validate(values)
    error = caught.value.errors()[0]
    assert ".".join(str(part) for part in error["loc"][:1]) == field
    assert message in error["msg"]


def test_is_frozen() -> None:
    settings = FeatureSettings()
    with pytest.raises(ValidationError):
        setattr(settings, "max_keys", 5)  # noqa: B010 - assignment must go through pydantic


@pytest.mark.parametrize(
    ("window", "label"),
    [
        (timedelta(seconds=90), "90s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=24), "24h"),
        (timedelta(hours=36), "36h"),
        (timedelta(days=7), "7d"),
    ],
)
def test_window_labels_are_short_and_stable(window: timedelta, label: str) -> None:
    assert window_label(window) == label
