"""Snapshots: restore continues identically; save is atomic; load names the file on errors."""

from __future__ import annotations

import os
import random
from pathlib import Path

import orjson
import pytest

from detector.errors import ConfigError
from detector.events.model import Event, Outcome
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from tests.unit.features.helpers import event

SETTINGS = FeatureSettings.model_validate(
    {"learning_period": "2h", "max_values_per_set": 6, "max_keys": 40}
)


def mixed_stream(count: int, seed: int) -> list[Event]:
    """Many actors, IPs and targets; some failures; some out of order and some late."""
    rng = random.Random(seed)
    events = []
    clock = 0.0
    for number in range(count):
        clock += rng.expovariate(1 / 40)
        jitter = -rng.uniform(0, 200) if rng.random() < 0.1 else 0.0
        jitter = -1000.0 if rng.random() < 0.02 else jitter
        repo = f"acme/repo-{rng.randrange(12)}"
        events.append(
            event(
                clock + jitter,
                actor=f"user{rng.randrange(30)}",
                ip=f"10.0.{rng.randrange(3)}.{rng.randrange(20)}",
                country=rng.choice(["DE", "FR", "US"]),
                target=repo,
                outcome=Outcome.FAILURE if rng.random() < 0.2 else Outcome.SUCCESS,
                privileged=rng.random() < 0.05,
                attributes={"repo": repo, "namespace": f"ns{rng.randrange(4)}"},
                number=number,
            )
        )
    return events


def test_restored_store_continues_exactly_like_the_original() -> None:
    events = mixed_stream(1200, seed=3)
    original = FeatureStore(SETTINGS)
    for item in events[:600]:
        original.observe(item)
    data = orjson.loads(orjson.dumps(original.snapshot()))
    restored = FeatureStore.restore(SETTINGS, data)
    for item in events[600:]:
        assert restored.observe(item) == original.observe(item)
    assert restored.snapshot() == original.snapshot()
    assert (restored.late_events, restored.evicted_keys) == (
        original.late_events,
        original.evicted_keys,
    )
    assert original.late_events > 0 and original.evicted_keys > 0  # the stream exercised both


def test_same_events_give_the_same_observations_and_state() -> None:
    events = mixed_stream(500, seed=8)
    first, second = FeatureStore(SETTINGS), FeatureStore(SETTINGS)
    first_seen = [first.observe(item).features.vector() for item in events]  # type: ignore[attr-defined]
    second_seen = [second.observe(item).features.vector() for item in events]  # type: ignore[attr-defined]
    assert first_seen == second_seen
    assert orjson.dumps(first.snapshot()) == orjson.dumps(second.snapshot())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    store = FeatureStore(SETTINGS)
    for item in mixed_stream(200, seed=5):
        store.observe(item)
    path = tmp_path / "features.json"
    store.save(path)
    store.save(path)  # replacing an existing snapshot
    loaded = FeatureStore.load(path, SETTINGS)
    assert loaded.snapshot() == store.snapshot()
    assert [entry.name for entry in tmp_path.iterdir()] == ["features.json"]


def test_a_failed_save_leaves_the_previous_snapshot_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FeatureStore(SETTINGS)
    store.observe(event(0))
    path = tmp_path / "features.json"
    store.save(path)
    before = path.read_bytes()
    store.observe(event(10, actor="bob"))

    def disk_full(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.save(path)
    assert path.read_bytes() == before
    assert [entry.name for entry in tmp_path.iterdir()] == ["features.json"]


def write(path: Path, data: object) -> Path:
    path.write_bytes(orjson.dumps(data))
    return path


def snapshot_of_one_event() -> dict[str, object]:
    store = FeatureStore(SETTINGS)
    store.observe(event(0))
    return store.snapshot()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (orjson.dumps({"hello": "world"}), "not a ciwatch feature snapshot"),
        (orjson.dumps({**snapshot_of_one_event(), "version": 99}), "snapshot version 99"),
        (orjson.dumps({**snapshot_of_one_event(), "actors": {"x": {"first": 1}}}), "damaged"),
        (orjson.dumps({**snapshot_of_one_event(), "ips": []}), "damaged"),
    ],
)
def test_load_refuses_unusable_files_naming_them(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "features.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        FeatureStore.load(path, SETTINGS)
    assert caught.value.where == str(path)
    assert message in caught.value.message
    assert "\n" not in str(caught.value)


def test_load_refuses_a_snapshot_taken_with_other_windows(tmp_path: Path) -> None:
    path = write(tmp_path / "features.json", snapshot_of_one_event())
    with pytest.raises(ConfigError, match="windows"):
        FeatureStore.load(path, FeatureSettings.model_validate({"windows": ["10m", "1h"]}))


def test_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match="cannot read feature snapshot") as caught:
        FeatureStore.load(path, SETTINGS)
    assert caught.value.where == str(path)
