"""The features the model families read: category counts, production, rarity, ratios."""

from __future__ import annotations

import math

import orjson
import pytest
from pydantic import ValidationError

from detector.errors import ConfigError
from detector.events.model import Category, Outcome
from detector.features.profile import HOURS_PER_WEEK
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from tests.unit.features.helpers import event

HOUR = 3600.0
WEEK = 7 * 24 * HOUR


def store(**settings: object) -> FeatureStore:
    return FeatureStore(FeatureSettings.model_validate(settings))


def test_each_category_has_its_own_windowed_count() -> None:
    features = store()
    features.observe(event(0, category=Category.SECRET_ACCESS))
    features.observe(event(10, category=Category.SECRET_ACCESS))
    features.observe(event(20, category=Category.PIPELINE))
    last = features.observe(event(30, category=Category.OTHER)).features
    assert last["actor.secret_access.5m"] == 2
    assert last["actor.pipeline.5m"] == 1
    assert last["actor.code_access.5m"] == 0
    assert last["actor.events.5m"] == 4
    later = features.observe(event(2 * HOUR, category=Category.CONFIG_CHANGE)).features
    assert (later["actor.secret_access.1h"], later["actor.secret_access.24h"]) == (0, 2)
    assert later["actor.config_change.5m"] == 1


@pytest.mark.parametrize(
    ("category", "mutating"),
    [
        (Category.INFRASTRUCTURE_CHANGE, 1),
        (Category.PRIVILEGE_CHANGE, 1),
        (Category.CONFIG_CHANGE, 1),
        (Category.CODE_ACCESS, 0),
        (Category.SECRET_ACCESS, 0),
        (Category.AUTHENTICATION, 0),
    ],
)
def test_event_mutating_marks_changes(category: Category, mutating: int) -> None:
    features = store().observe(event(0, category=category)).features
    assert features["event.mutating"] == mutating


@pytest.mark.parametrize(
    ("namespace", "target", "production"),
    [
        ("production", "production/deployments/api", 1),
        ("Prod-EU", None, 1),
        ("staging", "staging/deployments/api", 0),
        (None, "prod-payments/secrets/db", 1),
        (None, "acme/production-tools", 0),  # a repository named so is not production
        (None, None, 0),
    ],
)
def test_event_production_matches_namespace_or_target(
    namespace: str | None, target: str | None, production: int
) -> None:
    attributes = {"namespace": namespace} if namespace else {}
    features = store().observe(event(0, target=target, attributes=attributes)).features
    assert features["event.production"] == production
    assert features["actor.production.5m"] == production


def test_production_namespaces_are_configurable() -> None:
    features = store(production_namespaces="live-*, critical")
    assert features.observe(event(0, attributes={"namespace": "live-eu"})).features[
        "event.production"
    ]
    assert features.observe(event(1, attributes={"namespace": "critical"})).features[
        "event.production"
    ]
    second = features.observe(event(2, attributes={"namespace": "production"})).features
    assert second["event.production"] == 0
    assert second["actor.production.5m"] == 2


def test_empty_production_pattern_is_refused() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        FeatureSettings.model_validate({"production_namespaces": ["prod*", " "]})


def test_distinct_user_agents_count_each_agent_once() -> None:
    features = store()
    for number, agent in enumerate(("git/2.43", "curl/8", "git/2.43", "python-requests")):
        last = features.observe(event(number, user_agent=agent)).features
    assert last["actor.distinct_user_agents.5m"] == 3


def test_hour_of_week_rarity_is_the_smoothed_surprise_of_the_hour() -> None:
    features = store()
    first = features.observe(event(0)).features
    assert first["actor.hour_of_week_rarity"] == pytest.approx(math.log(HOURS_PER_WEEK))
    for week in range(1, 5):  # the same hour of the week, four more times
        usual = features.observe(event(week * WEEK)).features
    # before the last one: 4 events, all in this hour
    assert usual["actor.hour_of_week_rarity"] == pytest.approx(
        -math.log((4 + 1) / (4 + HOURS_PER_WEEK))
    )
    odd = features.observe(event(4 * WEEK + 5 * HOUR)).features
    assert odd["actor.hour_of_week_rarity"] == pytest.approx(-math.log(1 / (5 + HOURS_PER_WEEK)))
    assert odd["actor.hour_of_week_rarity"] > first["actor.hour_of_week_rarity"]


def test_failure_ratio_per_window() -> None:
    features = store()
    features.observe(event(0, outcome=Outcome.FAILURE))
    for seconds in (10, 20):
        features.observe(event(seconds))
    last = features.observe(event(2 * HOUR, outcome=Outcome.FAILURE)).features
    assert last["actor.failure_ratio.5m"] == 1.0
    assert last["actor.failure_ratio.24h"] == pytest.approx(2 / 4)


def test_events_vs_baseline_compares_a_burst_with_the_actors_usual_rate() -> None:
    features = store()
    assert features.observe(event(0)).features["actor.events_vs_baseline.1h"] == 1.0
    for hour in range(1, 48):  # one event an hour for two days
        steady = features.observe(event(hour * HOUR)).features
    usual_rate = 47 / 47  # events before the last steady one, over 47 hours of history
    assert steady["actor.events_vs_baseline.1h"] == pytest.approx(1 / (usual_rate + 1))
    for second in range(30):
        burst = features.observe(event(48 * HOUR + second)).features
    past, history_hours = 48 + 29, (48 * HOUR + 29) / HOUR
    rate = past / history_hours
    events_1h = burst["actor.events.1h"]
    assert events_1h == 30
    assert burst["actor.events_vs_baseline.1h"] == pytest.approx(events_1h / (rate + 1))
    assert burst["actor.events_vs_baseline.24h"] == pytest.approx(
        burst["actor.events.24h"] / (rate * 24 + 1)
    )


def test_late_event_gets_the_new_features_without_changing_state() -> None:
    features = store()
    features.observe(event(0, category=Category.SECRET_ACCESS, attributes={"namespace": "prod"}))
    features.observe(event(HOUR))
    late = features.observe(event(10, category=Category.INFRASTRUCTURE_CHANGE))
    assert late.late
    assert late.features["event.mutating"] == 1
    assert late.features["actor.secret_access.24h"] == 1
    assert late.features["actor.infrastructure_change.24h"] == 0
    assert late.features["actor.production.24h"] == 1


def test_snapshot_of_another_feature_schema_is_refused() -> None:
    features = store()
    features.observe(event(0))
    data = orjson.loads(orjson.dumps(features.snapshot()))
    data["feature_schema"] = "1"
    with pytest.raises(ConfigError, match="feature schema '1'"):
        FeatureStore.restore(FeatureSettings(), data, where="old.json")
