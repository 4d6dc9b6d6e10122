"""Embedded rule tests turned into events: compact events, raw documents, times and copies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detector.errors import RuleError
from detector.events.model import ActorType, Category, Outcome
from detector.rules import TestCase
from detector.rules.testcases import TEST_BASE_TIME, build_test_events
from tests.normalizing import bundled_normalizer
from tests.samples import sample

OKTA_LOGIN = "Okta.Login.Success: Successful Login"


def build(*events: dict[str, Any]) -> list[Any]:
    test = TestCase.model_validate({"name": "case", "alerts": 0, "events": list(events)})
    return build_test_events(test, bundled_normalizer())


def compact(**fields: Any) -> dict[str, Any]:
    return {"source": "okta_system_log", "action": "user.session.start", "actor": "alice", **fields}


def test_compact_events_are_filled_in_like_the_normalizer_would() -> None:
    (event,) = build(compact())
    assert event.time == TEST_BASE_TIME == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert event.category is Category.AUTHENTICATION  # from the taxonomy
    assert event.outcome is Outcome.SUCCESS
    assert event.actor_type is ActorType.HUMAN
    assert event.id == "test-1"
    assert event.position is not None and event.position.stream == "test:case"


def test_taxonomy_decides_privileged_and_automation() -> None:
    (mfa, bot) = build(
        compact(action="user.mfa.factor.deactivate"),
        compact(actor="svc-deploy"),
    )
    assert mfa.category is Category.CONFIG_CHANGE
    assert mfa.privileged
    assert bot.actor_type is ActorType.SERVICE


def test_explicit_fields_win() -> None:
    (event,) = build(
        compact(
            category="secret_access",
            outcome="failure",
            actor_type="unknown",
            privileged=True,
            id="mine",
            ip="203.0.113.9",
            country="FR",
            attributes={"org": "acme"},
        )
    )
    assert event.category is Category.SECRET_ACCESS
    assert event.outcome is Outcome.FAILURE
    assert event.actor_type is ActorType.UNKNOWN
    assert event.privileged
    assert (event.id, event.ip, event.country) == ("mine", "203.0.113.9", "FR")
    assert event.attributes == {"org": "acme"}


def test_repeat_every_and_following_events() -> None:
    events = build(
        compact(outcome="failure", repeat=3, every="30s"),
        compact(outcome="success"),
        compact(at="+10m"),
        compact(at="-1h"),
        compact(time="2026-02-01T08:00:00Z"),
    )
    offsets = [event.time - TEST_BASE_TIME for event in events]
    assert offsets == [
        timedelta(0),
        timedelta(seconds=30),
        timedelta(seconds=60),
        timedelta(seconds=61),  # a second after the previous event
        timedelta(minutes=10),
        timedelta(hours=-1),
        datetime(2026, 2, 1, 8, tzinfo=UTC) - TEST_BASE_TIME,
    ]
    assert [event.id for event in events[:4]] == ["test-1", "test-1#2", "test-1#3", "test-4"]


def test_raw_documents_go_through_the_normalizer_and_keep_their_time() -> None:
    (event,) = build({"raw": sample("okta_system_log", OKTA_LOGIN)})
    assert event.source == "okta_system_log"
    assert event.action == "user.session.start"
    assert event.time == datetime(2024, 4, 2, 19, 17, 37, 621000, tzinfo=UTC)
    assert event.raw  # rules on raw.* fields see the vendor document


def test_raw_documents_can_be_placed_and_repeated() -> None:
    events = build({"raw": sample("okta_system_log", OKTA_LOGIN), "at": "+5m", "repeat": 2})
    assert [event.time for event in events] == [
        TEST_BASE_TIME + timedelta(minutes=5),
        TEST_BASE_TIME + timedelta(minutes=5, seconds=1),
    ]
    assert events[1].id == f"{events[0].id}#2"


def test_raw_documents_that_do_not_normalize_name_the_test_and_event() -> None:
    test = TestCase.model_validate(
        {"name": "broken", "alerts": 0, "events": [compact(), {"raw": {"hello": "world"}}]}
    )
    with pytest.raises(RuleError, match="did not normalize: unknown_format") as caught:
        build_test_events(test, bundled_normalizer(), where="pack.yaml: rule r")
    assert caught.value.where == "pack.yaml: rule r: tests[broken].events[1]"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"raw": {"a": 1}, "actor": "x"}, "only repeat, every and at"),
        ({"source": "okta_system_log", "actor": "x"}, "needs source, action and actor"),
        (compact(time="2026-01-05T10:00:00Z", at="+1m"), "time or at"),
        (compact(time="2026-01-05T10:00:00"), "timezone"),
        (compact(repeat=0), "greater than or equal to 1"),
        (compact(flavour="x"), "Extra inputs"),
    ],
)
def test_invalid_test_events(event: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TestCase.model_validate({"name": "bad", "alerts": 1, "events": [event]})
