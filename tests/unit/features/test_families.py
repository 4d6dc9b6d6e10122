"""Model families: their features exist and are ordered; which events each scores; schema hash."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from detector.events.model import ActorType, Category, Outcome
from detector.features.families import FAMILIES, families_for, members, schema_hash
from detector.features.schema import FEATURE_NAMES
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from tests.unit.features.helpers import event


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_features_are_feature_names_in_vector_order(name: str) -> None:
    features = FAMILIES[name].features
    assert features
    assert len(set(features)) == len(features)
    positions = [FEATURE_NAMES.index(feature) for feature in features]
    assert positions == sorted(positions)


def test_the_four_families_are_declared() -> None:
    assert list(FAMILIES) == ["auth", "code", "infra", "service"]
    assert all(family.name == name for name, family in FAMILIES.items())


@pytest.mark.parametrize(
    ("source", "category", "expected"),
    [
        ("okta_system_log", Category.AUTHENTICATION, ["auth"]),
        ("azure_entra_id", Category.AUTHENTICATION, ["auth"]),
        ("okta_system_log", Category.PRIVILEGE_CHANGE, []),
        ("github_audit", Category.CODE_ACCESS, ["code"]),
        ("gitlab_audit", Category.CONFIG_CHANGE, ["code"]),
        ("github_audit", Category.AUTHENTICATION, ["auth", "code"]),
        ("k8s_audit", Category.SECRET_ACCESS, ["infra"]),
        ("cloudtrail", Category.INFRASTRUCTURE_CHANGE, ["infra"]),
        ("cloudtrail", Category.AUTHENTICATION, ["auth", "infra"]),
        ("ecs", Category.OTHER, []),
    ],
)
def test_families_for_picks_by_source_and_category(
    source: str, category: Category, expected: list[str]
) -> None:
    chosen = families_for(event(0, source=source, category=category))
    assert [family.name for family in chosen] == expected


def test_members_are_the_events_each_family_applies_to_asked_once_per_kind() -> None:
    sources = ("okta_system_log", "github_audit", "k8s_audit", "cloudtrail", "ecs")
    kinds = itertools.product(sources, Category, ActorType)
    events = [
        dataclasses.replace(
            event(number, source=source, category=category, actor=f"a{number % 3}"),
            actor_type=actor_type,
        )
        for number, (source, category, actor_type) in enumerate(kinds)
    ]
    events += list(reversed(events))  # every kind a second time, from the cache
    families = list(FAMILIES.values())
    assert members(families, events) == [
        [index for index, one in enumerate(events) if family.applies(one)] for family in families
    ]
    assert members([], events) == [] and members(families, []) == [[] for _ in families]


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_family_decides_on_an_events_kind_alone(name: str) -> None:
    # members() asks each kind (source, category, actor type) once: the rest of an event
    # must not change the answer.
    family = FAMILIES[name]
    for category in Category:
        alike = event(0, source="cloudtrail", category=category)
        others = [
            event(5, source="cloudtrail", category=category, actor="bob", ip=None, country=None,
                  target=None, outcome=Outcome.FAILURE, privileged=True, user_agent=None,
                  attributes={"namespace": "prod"}),
        ]  # fmt: skip
        assert {family.applies(one) for one in [alike, *others]} == {family.applies(alike)}


def test_missing_names_the_features_a_store_with_other_windows_lacks() -> None:
    names = FeatureStore(FeatureSettings.model_validate({"windows": ["10m", "1h"]})).feature_names
    missing = FAMILIES["code"].missing(names)
    assert "actor.events.24h" in missing and "actor.events.1h" not in missing
    assert FAMILIES["code"].missing(FEATURE_NAMES) == ()


def test_schema_hash_is_stable_and_depends_on_names_and_their_order() -> None:
    features = FAMILIES["infra"].features
    digest = schema_hash(features)
    assert digest == schema_hash(list(features))
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert schema_hash(reversed(features)) != digest
    assert schema_hash(features[:-1]) != digest
    assert len({schema_hash(family.features) for family in FAMILIES.values()}) == len(FAMILIES)
