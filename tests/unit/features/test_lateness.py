"""Allowed lateness per source: what counts as late, the defaults, and their validation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detector.config import load_config
from detector.errors import ConfigError
from detector.features.settings import DEFAULT_SOURCE_LATENESS, FeatureSettings
from detector.features.store import FeatureStore
from detector.pipeline import Pipeline

from .helpers import event

MINUTES = 60.0


def test_a_cloudtrail_event_ten_minutes_behind_the_newest_okta_event_counts() -> None:
    store = FeatureStore(FeatureSettings())
    store.observe(event(20 * MINUTES, source="okta_system_log"))
    observation = store.observe(event(10 * MINUTES, source="cloudtrail", actor="bob"))
    assert not observation.late
    assert store.late_events == 0
    assert observation.features["actor.events.5m"] == 1


def test_an_okta_event_ten_minutes_behind_is_late() -> None:
    store = FeatureStore(FeatureSettings())
    store.observe(event(20 * MINUTES, source="cloudtrail"))
    assert store.observe(event(10 * MINUTES, source="okta_system_log", actor="bob")).late
    assert store.late_events == 1


def test_cloudtrail_is_late_past_its_own_lateness() -> None:
    store = FeatureStore(FeatureSettings())
    store.observe(event(30 * MINUTES, source="okta_system_log"))
    assert store.observe(event(15 * MINUTES, source="cloudtrail", number=1)).late is False
    assert store.observe(event(15 * MINUTES - 1, source="cloudtrail", number=2)).late


def test_a_configured_source_uses_its_lateness_and_others_keep_theirs() -> None:
    settings = FeatureSettings.model_validate(
        {"source_lateness": {"okta_system_log": "20m", "new_saas_log": "0s"}}
    )
    assert settings.lateness_of("okta_system_log") == timedelta(minutes=20)
    assert settings.lateness_of("new_saas_log") == timedelta(0)
    assert settings.lateness_of("cloudtrail") == DEFAULT_SOURCE_LATENESS["cloudtrail"]
    assert settings.lateness_of("github_audit") == settings.allowed_lateness
    store = FeatureStore(settings)
    store.observe(event(30 * MINUTES, source="github_audit"))
    assert not store.observe(event(15 * MINUTES, source="okta_system_log", actor="bob")).late
    assert store.observe(event(30 * MINUTES - 1, source="new_saas_log", actor="eve")).late


def test_the_defaults_are_bounded_and_the_rule_grace_is_the_longest() -> None:
    settings = FeatureSettings()
    assert settings.allowed_lateness == timedelta(minutes=5)
    assert settings.source_lateness["cloudtrail"] == timedelta(minutes=15)
    assert max(settings.source_lateness.values()) <= timedelta(hours=2)
    assert settings.longest_lateness == timedelta(hours=2)
    pipeline = Pipeline.from_config(load_config().model_copy(update={"models": _no_models()}))
    assert pipeline.rules.context.allowed_lateness == settings.longest_lateness


def test_the_default_yaml_lists_every_default() -> None:
    config = load_config()
    assert config.features.source_lateness == dict(DEFAULT_SOURCE_LATENESS)
    assert config.features == FeatureSettings()


@pytest.mark.parametrize(
    ("yaml", "where"),
    [
        ("features: {source_lateness: {cloudtrail: soon}}", "features.source_lateness.cloudtrail"),
        ("features: {source_lateness: {my_log: -5m}}", "features.source_lateness.my_log"),
        ("features: {source_lateness: [cloudtrail]}", "features.source_lateness"),
    ],
)
def test_a_bad_lateness_fails_the_config_in_one_line_naming_the_key(
    yaml: str, where: str, tmp_path: Path
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message
    assert where in message


def test_an_unknown_source_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text("features: {source_lateness: {vendor_we_add_next_year: 45m}}\n")
    lateness = load_config(path).features.source_lateness
    assert lateness["vendor_we_add_next_year"] == timedelta(minutes=45)
    assert lateness["cloudtrail"] == timedelta(minutes=15)


def _no_models() -> object:
    return load_config().models.model_copy(update={"enabled": False})
