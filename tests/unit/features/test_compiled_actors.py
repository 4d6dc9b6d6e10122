"""The actors and keys the compiled way (value pools and built steps) observe as the plain
store does."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from detector.events.model import Category, Outcome
from detector.features.observation import Observation
from detector.features.settings import FeatureSettings
from detector.features.store import KINDS, FeatureStore
from detector.features.windows import WindowSpec
from tests.unit.features.helpers import event

CATEGORIES = (Category.CODE_ACCESS, Category.SECRET_ACCESS, Category.AUTHENTICATION)


def stream(seed: int, count: int, actors: int) -> list[Any]:
    """Events of many actors in order, now and then one too late to count, values that come
    back, go unseen long enough to be forgotten, and overflow small sets."""
    chosen = random.Random(seed)
    moment = 0.0
    found = []
    for number in range(count):
        moment += chosen.choice((0.0, 5.0, 60.0, 900.0, 7200.0))
        late = chosen.random() < 0.03
        found.append(
            event(
                moment - (5 * 86_400.0 if late else chosen.choice((0.0, 0.0, 20.0))),
                actor=f"user{chosen.randrange(actors)}",
                ip=f"198.51.100.{chosen.randrange(12)}",
                country=chosen.choice(("DE", "FR", "US", None)),
                target=f"acme/repo{chosen.randrange(9)}",
                user_agent=chosen.choice(("git/2.43", "curl/8", "Mozilla/5.0", None)),
                outcome=Outcome.FAILURE if chosen.random() < 0.2 else Outcome.SUCCESS,
                privileged=chosen.random() < 0.1,
                category=chosen.choice(CATEGORIES),
                attributes={"repo": f"acme/r{chosen.randrange(7)}", "namespace": "production"},
                number=number,
            )
        )
    return found


def observed(store: FeatureStore, events: list[Any], batch: int) -> list[Any]:
    found: list[Observation] = []
    for start in range(0, len(events), batch):
        found += store.observe_batch(events[start : start + batch])
    return [
        (o.late, o.learning, dict(o.new_values), dict(o.known_values), typed(o.features))
        for o in found
    ]


def typed(features: Any) -> dict[str, tuple[type, float]]:
    """Each feature's value and its type: a count read as a float would print as one."""
    return {name: (type(value), value) for name, value in features.items()}


def continued(
    settings: FeatureSettings, snapshot: Any, events: list[Any], kinds: tuple[str, ...] = KINDS
) -> list[Any]:
    """What a store restored from ``snapshot`` (counting ``kinds``) observes of ``events``."""
    data = orjson.loads(orjson.dumps(snapshot))
    restored = FeatureStore.restore(settings, data, kinds=kinds)
    return observed(restored, events, 250)


SETTINGS = FeatureSettings.model_validate(
    {"max_values_per_set": 3, "forget_after": "30d", "learning_period": "2d"}
)


@pytest.mark.usefixtures("compiled_counters")
@pytest.mark.parametrize(("seed", "hot"), [(1, 1000), (2, 3), (3, 1)])
def test_the_compiled_actors_observe_and_snapshot_as_the_plain_store(
    seed: int, hot: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hot``: counters hot at once; 3 and 1 make claims cool actors of the same batch. The
    snapshots' counters are laid out differently by the two forms (as before the pool), so
    they are held to each other by what stores restored from them observe next."""
    monkeypatch.setattr("detector.features.spec.HOT_TOTALS", hot)
    events = stream(seed, 1500, actors=40)
    head, tail = events[:1000], events[1000:]
    store = FeatureStore(SETTINGS)
    compiled = observed(store, head, 250)
    compiled_next = continued(SETTINGS, store.snapshot(), tail)
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        store = FeatureStore(SETTINGS)
        assert compiled == observed(store, head, 250)
        assert compiled_next == continued(SETTINGS, store.snapshot(), tail)
    assert sum(late for late, *_ in compiled) > 5
    assert any(known for *_, known, _ in compiled)


@pytest.mark.usefixtures("compiled_counters")
@pytest.mark.parametrize(
    ("kinds", "hot"), [(("ip",), 2), (("actor", "target"), 1), (("ip", "target"), 1000)]
)
def test_the_compiled_keys_observe_and_snapshot_as_the_plain_store(
    kinds: tuple[str, ...], hot: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IPs' and targets' actors in the key pool, their counts built the actors' way:
    alone (a scale-out stage keyed by IP), beside the actors, with claims that cool keys of
    the same batch (``hot`` 2 and 1: an IP and a target share the keys' arena)."""
    monkeypatch.setattr("detector.features.spec.HOT_TOTALS", hot)
    events = stream(5, 1500, actors=40)
    head, tail = events[:1000], events[1000:]
    store = FeatureStore(SETTINGS, kinds=kinds)
    compiled = observed(store, head, 250)
    compiled_next = continued(SETTINGS, store.snapshot(), tail, kinds)
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        store = FeatureStore(SETTINGS, kinds=kinds)
        assert compiled == observed(store, head, 250)
        assert compiled_next == continued(SETTINGS, store.snapshot(), tail, kinds)
    names = {name.split(".")[0] for *_, features in compiled for name in features}
    assert names == {"actor", "event", *kinds}
    distinct = [features[f"{kinds[-1]}.distinct_actors.24h"][1] for *_, features in compiled]
    assert max(distinct) == 3  # sets at their cap of three actors, trimmed


@pytest.mark.usefixtures("compiled_counters")
def test_a_stage_counting_ips_hands_on_the_counts_one_store_would_make() -> None:
    """Scale-out: the IP stage's counts carried into a stage counting actors and targets
    give the features of one store counting all three."""
    events = stream(6, 1200, actors=30)
    ip_stage = FeatureStore(SETTINGS, kinds=("ip",))
    actor_stage = FeatureStore(SETTINGS, kinds=("actor", "target"), carried=("ip",))
    whole = FeatureStore(SETTINGS)
    for start in range(0, len(events), 200):
        batch = events[start : start + 200]
        counts = ip_stage.carried_counts(ip_stage.observe_batch(batch), "ip")
        carried = {event.id: {"ip": row} for event, row in zip(batch, counts, strict=True)}
        staged = actor_stage.observe_batch(batch, carried)
        alone = whole.observe_batch(batch)
        for left, right in zip(staged, alone, strict=True):
            if not right.late:  # a late event's IP is described by the stage that keeps it
                assert typed(left.features) == typed(right.features)


@pytest.mark.usefixtures("compiled_counters")
def test_a_batch_longer_than_a_stretch_is_observed_in_stretches_as_the_plain_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replay's large batch runs in stretches of at most ``_STRETCH_EVENTS`` (the value
    pools keep room for a stretch's worst case): the same observations as the plain store."""
    monkeypatch.setattr("detector.features.drafting._STRETCH_EVENTS", 64)
    events = stream(8, 1000, actors=40)
    compiled = observed(FeatureStore(SETTINGS), events, 1000)
    with monkeypatch.context() as plain:
        plain.setattr(WindowSpec, "arena", lambda self, kind: None)
        assert compiled == observed(FeatureStore(SETTINGS), events, 1000)
