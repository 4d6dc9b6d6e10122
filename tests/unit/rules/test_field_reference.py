"""``equals_field``: a condition comparing two fields of the same event (Sigma's ``fieldref``)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from detector.features.observation import Observation
from detector.rules.conditions import ConditionError, RegexGuard, compile_condition_map
from tests.unit.rules.factories import obs, rule


def holds(where: str, observation: Observation) -> bool:
    return compile_condition_map(yaml.safe_load(where), RegexGuard())(observation)


# ops-jane creating a key for herself, for svc-backup, and for nobody named (her own key).
OWN = obs(actor="ops-jane", raw={"requestParameters": {"userName": "OPS-JANE"}})
OTHER = obs(actor="ops-jane", raw={"requestParameters": {"userName": "svc-backup"}})
UNNAMED = obs(actor="ops-jane", raw={"requestParameters": {}})
FOR_OTHER = "raw.requestParameters.userName: {not: {equals_field: actor}}"


@pytest.mark.parametrize(
    ("where", "observation", "expected"),
    [
        ("raw.requestParameters.userName: {equals_field: actor}", OWN, True),  # ignores case
        ("raw.requestParameters.userName: {equals_field: actor}", OTHER, False),
        ("raw.requestParameters.userName: {equals_field: actor}", UNNAMED, False),
        ("actor: {equals_field: raw.requestParameters.userName}", OWN, True),  # either way round
        (FOR_OTHER, OWN, False),
        (FOR_OTHER, OTHER, True),
        (FOR_OTHER, UNNAMED, True),  # plain negation: a missing field is "not equal"
        ("raw.requestParameters.userName: {not: {not: {equals_field: actor}}}", OWN, True),
    ],
)
def test_compares_with_the_other_field(
    where: str, observation: Observation, expected: bool
) -> None:
    assert holds(where, observation) is expected


def test_a_list_holds_when_any_value_equals_any_other() -> None:
    event = obs(target="b", raw={"names": ["a", "B"]})
    assert holds("raw.names: {equals_field: target}", event)
    assert not holds("raw.names: {equals_field: ip}", event)


def test_sits_next_to_other_conditions_and_in_groups() -> None:
    where = f"""
    raw.requestParameters.userName: {{exists: true}}
    all:
      - {FOR_OTHER}
    """
    assert holds(where, OTHER)
    assert not holds(where, OWN)
    assert not holds(where, UNNAMED)


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("actor: {equals_field: nonsense}", "actor.equals_field"),
        ("actor: {not: {equals_field: 5}}", "actor.not.equals_field"),
        ("actor: {equals_field: ''}", "actor.equals_field"),
    ],
)
def test_a_bad_reference_is_a_load_error_naming_where(where: str, path: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition_map(yaml.safe_load(where), RegexGuard())
    assert caught.value.path == path


def test_a_rule_with_a_field_reference_loads_and_fires() -> None:
    loaded = rule(
        f"""
        kind: match
        where:
          source: cloudtrail
          {FOR_OTHER}
        """
    )
    assert loaded.where is not None
    other = obs(source="cloudtrail", **_fields(OTHER))
    own = obs(source="cloudtrail", **_fields(OWN))
    where = compile_condition_map(loaded.where, RegexGuard())
    assert where(other) and not where(own)


def _fields(observation: Observation) -> dict[str, Any]:
    return {"actor": observation.event.actor, "raw": observation.event.raw}
