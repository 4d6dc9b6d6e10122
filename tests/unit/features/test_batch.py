"""The batch frame: exactly the streaming features, and counts that agree with pandas windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import scenarios

from detector.events.model import Category, Event
from detector.features.batch import (
    EVENT_COLUMNS,
    build_frame,
    family_column,
    family_rows,
    frame_from_observations,
)
from detector.features.families import FAMILIES, families_for
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer
from tests.unit.features.helpers import event

SETTINGS = FeatureSettings.model_validate({"learning_period": "1d"})


@pytest.fixture(scope="module")
def world_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    """A generated four-day world (every source, attacks included), normalized, in time order."""
    directory = tmp_path_factory.mktemp("world")
    scenarios.write(scenarios.generate(seed=11, days=4), directory)
    with FileSource([Path(directory) / scenarios.MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    normalized = bundled_normalizer().normalize_batch(records)
    assert normalized.dead_letters == []
    return normalized.events


@pytest.fixture(scope="module")
def world_frame(world_events: list[Event]) -> pd.DataFrame:
    return build_frame(world_events, SETTINGS)


def test_frame_equals_streaming_observe_for_every_feature(
    world_events: list[Event], world_frame: pd.DataFrame
) -> None:
    streaming = FeatureStore(SETTINGS)
    names = list(streaming.feature_names)
    expected = [streaming.observe(item) for item in world_events]
    assert len(world_frame) == len(world_events) > 1000
    assert list(world_frame.columns) == [
        *EVENT_COLUMNS,
        *names,
        *(family_column(family) for family in FAMILIES.values()),
    ]
    values = world_frame[names].to_numpy()
    for row, observation in enumerate(expected):
        assert list(values[row]) == [observation.features[name] for name in names]
    assert list(world_frame["late"]) == [observation.late for observation in expected]
    assert list(world_frame["learning"]) == [observation.learning for observation in expected]


def test_frame_describes_each_event_and_its_families(
    world_events: list[Event], world_frame: pd.DataFrame
) -> None:
    assert list(world_frame["event_id"]) == [item.id for item in world_events]
    assert list(world_frame["actor"]) == [item.actor for item in world_events]
    assert list(world_frame["source"]) == [item.source for item in world_events]
    assert list(world_frame["time"]) == [pd.Timestamp(item.time) for item in world_events]
    for family in FAMILIES.values():
        members = [family in families_for(item) for item in world_events]
        assert list(world_frame[family_column(family)]) == members
        assert any(members), f"the world has no {family.name} events"


@pytest.mark.parametrize(
    ("feature", "category", "window"),
    [
        ("actor.events.1h", None, "1h"),
        ("actor.events.24h", None, "24h"),
        ("actor.code_access.1h", Category.CODE_ACCESS, "1h"),
        ("actor.secret_access.24h", Category.SECRET_ACCESS, "24h"),
        ("actor.infrastructure_change.24h", Category.INFRASTRUCTURE_CHANGE, "24h"),
    ],
)
def test_windowed_counts_agree_with_pandas_time_rolling_windows(
    world_frame: pd.DataFrame, feature: str, category: Category | None, window: str
) -> None:
    """An event-time-ordered stream: a count lies between the rolling counts over
    the window minus one bucket (1/60) and over the whole window, per actor."""
    frame = world_frame.assign(
        hit=1.0 if category is None else (world_frame["category"] == category.value) * 1.0
    )
    assert frame["time"].is_monotonic_increasing
    length = pd.Timedelta(window)

    def rolling(span: pd.Timedelta) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        counts = frame.groupby("actor", sort=False).rolling(span, on="time")["hit"].sum()
        return np.asarray(counts.reset_index(level=0, drop=True).sort_index(), dtype=np.float64)

    upper, lower = rolling(length), rolling(length - length / 60)
    value = frame[feature].to_numpy()
    assert (lower <= value).all() and (value <= upper).all()
    assert value.sum() > 0


def test_family_rows_select_members_and_leave_out_late_rows() -> None:
    store = FeatureStore(FeatureSettings())
    observations = [
        store.observe(event(0, source="k8s_audit", category=Category.SECRET_ACCESS)),
        store.observe(event(3600, source="okta_system_log", category=Category.AUTHENTICATION)),
        store.observe(event(10, source="k8s_audit", category=Category.INFRASTRUCTURE_CHANGE)),
    ]
    assert observations[2].late
    frame = frame_from_observations(observations, store.feature_names)
    infra = family_rows(frame, FAMILIES["infra"])
    assert list(infra.index) == [0]
    assert list(infra.columns) == list(FAMILIES["infra"].features)
    assert list(family_rows(frame, FAMILIES["infra"], include_late=True).index) == [0, 2]
    assert list(family_rows(frame, FAMILIES["auth"]).index) == [1]


def test_family_rows_name_the_features_a_frame_lacks() -> None:
    frame = build_frame([event(0)], FeatureSettings.model_validate({"windows": ["10m", "1h"]}))
    with pytest.raises(KeyError, match=r"actor\.events\.24h"):
        family_rows(frame, FAMILIES["code"])


def test_empty_input_gives_an_empty_frame_with_every_column() -> None:
    frame = build_frame([], SETTINGS)
    assert len(frame) == 0
    assert len(frame.columns) == (
        len(EVENT_COLUMNS) + len(FeatureStore(SETTINGS).feature_names) + len(FAMILIES)
    )
