"""ECS fallback parser. No published ECS audit events are in tests/data/samples (the
Elastic lines there are GitHub's raw format), so the events here are written for these
tests, in the three layouts shippers produce: nested, flattened dotted keys, and mixed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import (
    ActorType,
    Category,
    DeadLetter,
    DeadLetterReason,
    Outcome,
)
from detector.events.parsers import PARSERS
from detector.events.parsers.ecs import EcsParser, ecs_get
from tests.normalizing import as_event, normalize_one
from tests.samples import load_samples, sample_names

SOURCE = "ecs"

# Elastic Agent style: everything nested.
NESTED_FAILED_LOGIN = {
    "@timestamp": "2025-03-14T09:26:53.589Z",
    "ecs": {"version": "8.11.0"},
    "event": {
        "kind": "event",
        "action": "user-login",
        "category": ["authentication"],
        "type": ["start"],
        "outcome": "failure",
        "dataset": "keycloak.events",
        "id": "b7c6e0f2-5a1d-4c1e-9d0b-2f6a8e4c1a90",
    },
    "user": {"name": "mkowalski", "email": "m.kowalski@example.org"},
    "source": {"ip": "203.0.113.45", "geo": {"country_iso_code": "PL"}},
    "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Firefox/124.0"},
}
# Vector / Logstash style: flattened dotted keys.
FLAT_ROLE_GRANT = {
    "@timestamp": "2025-03-14T10:02:11Z",
    "event.action": "role-assigned",
    "event.outcome": "success",
    "event.module": "jenkins",
    "event.category": ["iam"],
    "event.type": ["change", "group"],
    "user.name": "mkowalski",
    "user.target.name": "jdoe",
    "client.ip": "10.20.30.40",
    "observer.vendor": "CloudBees",
}
# Both at once, as after a partial flatten.
MIXED_SECRET_READ = {
    "@timestamp": "2025-03-14T10:15:00.000+01:00",
    "event": {"action": "secret-read"},
    "user.id": "svc-deployer",
    "observer": {"vendor": "HashiCorp", "product": "Vault"},
    "url.path": "/v1/secret/data/prod/db",
    "source": {"address": "vault-agent.internal"},
    "cloud": {"account.id": "123456789012", "region": "eu-west-1"},
}
MACHINE_CONSOLE_LOGIN = {
    "@timestamp": "2025-03-15T22:01:09Z",
    "event.action": "ConsoleLogin",
    "event": {"outcome": "success"},
    "source": {"geo.country_iso_code": "US", "ip": "198.51.100.7"},
    "user": {"name": "WKS-042$"},
}
MY_EVENTS = (NESTED_FAILED_LOGIN, FLAT_ROLE_GRANT, MIXED_SECRET_READ, MACHINE_CONSOLE_LOGIN)


def test_nested_failed_login() -> None:
    event = as_event(NESTED_FAILED_LOGIN, SOURCE)
    assert event.time == datetime(2025, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
    assert event.action == "user-login"
    assert event.category is Category.AUTHENTICATION
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "mkowalski"
    assert event.actor_type is ActorType.UNKNOWN
    assert event.ip == "203.0.113.45"
    assert event.country == "PL"
    assert event.user_agent is not None and "Firefox/124.0" in event.user_agent
    assert event.id == "ecs:b7c6e0f2-5a1d-4c1e-9d0b-2f6a8e4c1a90"
    assert event.attributes["dataset"] == "keycloak.events"
    assert event.attributes["category"] == "authentication"


def test_flattened_role_grant() -> None:
    event = as_event(FLAT_ROLE_GRANT, SOURCE)
    assert event.time == datetime(2025, 3, 14, 10, 2, 11, tzinfo=UTC)
    assert event.action == "role-assigned"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "mkowalski"
    assert event.target == "jdoe"
    assert event.ip == "10.20.30.40"
    # event.module before observer.vendor.
    assert event.attributes["dataset"] == "jenkins"
    assert event.attributes["type"] == "change,group"
    assert event.id.startswith("ecs:")  # no event.id: the normalizer's content hash


def test_mixed_layout_secret_read() -> None:
    event = as_event(MIXED_SECRET_READ, SOURCE)
    assert event.time == datetime(2025, 3, 14, 9, 15, tzinfo=UTC)
    assert event.action == "secret-read"
    assert event.category is Category.SECRET_ACCESS
    assert event.outcome is Outcome.UNKNOWN
    assert event.actor == "svc-deployer"
    assert event.actor_type is ActorType.SERVICE  # the shared svc-* automation glob
    assert event.ip is None  # source.address is a host name here
    assert event.target == "/v1/secret/data/prod/db"
    assert event.attributes["dataset"] == "HashiCorp"
    assert event.attributes["account"] == "123456789012"
    assert event.attributes["region"] == "eu-west-1"


def test_action_case_does_not_matter_for_the_taxonomy() -> None:
    event = as_event(MACHINE_CONSOLE_LOGIN, SOURCE)
    assert event.action == "ConsoleLogin"
    assert event.category is Category.AUTHENTICATION
    assert event.country == "US"
    assert event.ip == "198.51.100.7"
    assert event.actor_type is ActorType.SERVICE  # a Windows computer account


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"user": {}}, DeadLetterReason.MISSING_ACTOR),
        ({"@timestamp": "last tuesday"}, DeadLetterReason.INVALID_TIME),
        ({"@timestamp": ""}, DeadLetterReason.MISSING_TIME),
    ],
)
def test_unusable_events_are_dead_letters(
    changes: dict[str, Any], reason: DeadLetterReason
) -> None:
    result = normalize_one({**NESTED_FAILED_LOGIN, **changes})
    assert isinstance(result, DeadLetter)
    assert result.reason is reason
    assert result.format == SOURCE


def test_ecs_get_reads_nested_dotted_and_mixed_keys() -> None:
    path = "source.geo.country_iso_code"
    assert ecs_get({"source": {"geo": {"country_iso_code": "FR"}}}, path) == "FR"
    assert ecs_get({"source.geo.country_iso_code": "FR"}, path) == "FR"
    assert ecs_get({"source.geo": {"country_iso_code": "FR"}}, path) == "FR"
    assert ecs_get({"source": {"geo.country_iso_code": "FR"}}, path) == "FR"
    assert ecs_get({"source": "FR"}, path) is None
    assert ecs_get("not a mapping", path) is None


def test_matches_needs_timestamp_and_action() -> None:
    parser = EcsParser()
    assert all(parser.matches(doc) for doc in MY_EVENTS)
    assert not parser.matches({"event": {"action": "user-login"}})
    assert not parser.matches({"@timestamp": "2025-01-01T00:00:00Z", "event": {"kind": "x"}})
    assert not parser.matches({"@timestamp": "2025-01-01T00:00:00Z", "event.action": ["x"]})


@pytest.mark.parametrize("name", sample_names())
def test_vendor_samples_are_not_ecs(name: str) -> None:
    parser = EcsParser()
    docs = [(s.case, doc) for s in load_samples(name) for doc in unwrap(s.event)]
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def test_no_specific_parser_claims_ecs_events() -> None:
    others = [cls() for name, cls in PARSERS.items() if name != SOURCE]
    assert others
    assert not [(p.name, d) for p in others for d in MY_EVENTS if p.matches(d)]


def test_ecs_is_the_last_parser_tried() -> None:
    assert EcsParser.priority > max(cls.priority for n, cls in PARSERS.items() if n != SOURCE)
