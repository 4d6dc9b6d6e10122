"""Okta System Log parser on published events (tests/data/samples/okta_system_log.jsonl)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import (
    ActorType,
    Category,
    DeadLetter,
    DeadLetterReason,
    Event,
    Outcome,
)
from detector.events.parsers.okta_system_log import OktaSystemLogParser
from tests.normalizing import bundled_normalizer, normalize_one, other_vendors, sample_event
from tests.samples import load_samples, sample

SOURCE = "okta_system_log"


def test_successful_login() -> None:
    event = sample_event(SOURCE, "Okta.Login.Success: Successful Login")
    assert event.time == datetime(2024, 4, 2, 19, 17, 37, 621000, tzinfo=UTC)
    assert event.action == "user.session.start"
    assert event.category is Category.AUTHENTICATION
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "casey.hill@hey.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "99.108.5.25"
    assert event.country == "United States"
    assert event.user_agent is not None and "Chrome/123.0.0.0" in event.user_agent
    # The authenticator enrollment ("Password") is how, the app is what was signed in to.
    assert event.target == "Okta Dashboard"
    assert event.id == "okta_system_log:aac560bd-f125-11ee-9caa-cd5d09945def"
    assert event.attributes["session"] == "idxvF50v_5sT2-GOA7_K0Amyw"
    assert event.attributes["as_org"] == "at&t corp."


def test_failed_login() -> None:
    event = sample_event(SOURCE, "Okta.Login.Success: Failed Login")
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "casey.hill@hey.com"
    assert event.category is Category.AUTHENTICATION


def test_deny_is_a_failure_and_lower_cased_keys_are_read() -> None:
    event = sample_event(SOURCE, "Okta.Rate.Limits: system.operation.ratelimit.violation [")
    assert event.action == "system.operation.rate_limit.violation"
    assert event.time == datetime(2022, 8, 29, 16, 7, 26, 592000, tzinfo=UTC)
    assert event.outcome is Outcome.FAILURE
    assert event.attributes["result"] == "DENY"
    assert event.attributes["session"] == "abc12345"
    assert event.target == "/app/{app}/{key}/"
    assert event.category is Category.OTHER


def test_challenge_is_neither_success_nor_failure() -> None:
    event = sample_event(
        SOURCE, "Okta.New.Behavior.Accessing.Admin.Console: New Behavior Accessing"
    )
    assert event.action == "policy.evaluate_sign_on"
    assert event.outcome is Outcome.UNKNOWN
    assert event.target == "Okta Admin Console"
    assert event.category is Category.AUTHENTICATION


def test_data_lake_event_with_failed_credentials() -> None:
    event = sample_event(SOURCE, "Okta.Anonymizing.VPN.Login: Other Event")
    assert event.action == "user.session.start"
    assert event.time == datetime(2022, 6, 22, 18, 18, 29, 15000, tzinfo=UTC)
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "homer.simpson@duff.com"
    assert event.ip == "1.3.2.4"
    assert event.id == "okta_system_log:AbC-123-XyZ"
    assert event.attributes["reason"] == "INVALID_CREDENTIALS"
    assert event.attributes["is_proxy"] == "false"


def test_admin_role_grant_is_privileged() -> None:
    event = sample_event(SOURCE, "Okta.AdminRoleAssigned: Admin Access Assigned")
    assert event.action == "user.account.privilege.grant"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.actor == "jack@acme.io"
    assert event.target == "alice@acme.io"
    assert event.attributes["target_type"] == "User"


def test_oauth_client_actor_is_a_service() -> None:
    event = sample_event(SOURCE, "Okta.Refresh.Access.Token.Reuse: Reuse Event")
    assert event.action == "app.oauth2.token.detect_reuse"
    assert event.actor == "123456"
    assert event.actor_type is ActorType.SERVICE


def test_okta_system_principal_is_a_service_by_taxonomy() -> None:
    event = sample_event(SOURCE, "Okta.Support.Reset: Support Reset Credential")
    assert event.actor == "system@okta.com"
    assert event.actor_type is ActorType.SERVICE
    assert event.target == "homer@springfield.gov"
    assert event.category is Category.SECRET_ACCESS


def test_unknown_placeholder_is_skipped_for_the_actor() -> None:
    event = sample_event(SOURCE, "system.operation.ratelimit.violation - unknown altid")
    assert event.actor == "Homer Simpson"


def test_threat_detected_from_an_ip_actor() -> None:
    event = sample_event(
        SOURCE, "Okta.ThreatInsight.Security.Threat.Detected: Threat Detected Event - Deny"
    )
    assert event.actor == "1.2.3.4"
    assert event.actor_type is ActorType.UNKNOWN
    assert event.outcome is Outcome.FAILURE


@pytest.mark.parametrize(
    "case",
    [
        "New Behavior Accessing Admin Console (behavior)",  # a list of Name=VERDICT
        "(logSecurityDataOnly) [",  # logOnlySecurityData as a mapping
        "(logSecurityDataOnly) - not jsonified string",  # the same mapping as JSON text
        "Org2Org modified",  # a mapping keyed by Name=VERDICT
    ],
)
def test_positive_behaviors_are_read_from_every_shape(case: str) -> None:
    event = sample_event(SOURCE, case)
    assert event.attributes["behaviors"] == "New Device,New IP"


def test_behaviors_in_okta_text_form_and_none_positive() -> None:
    base = {
        "uuid": "b1",
        "published": "2026-01-05T10:00:00.000Z",
        "eventType": "policy.evaluate_sign_on",
        "actor": {"alternateId": "it.admin@example.com", "type": "User"},
    }
    text = "{New Geo-Location=NEGATIVE, New Device=POSITIVE, Velocity=POSITIVE}"
    event = normalize_one({**base, "debugContext": {"debugData": {"behaviors": text}}})
    assert isinstance(event, Event)
    assert event.attributes["behaviors"] == "New Device,Velocity"
    quiet = {"behaviors": "{New Device=NEGATIVE}", "logOnlySecurityData": "{not json"}
    event = normalize_one({**base, "debugContext": {"debugData": quiet}})
    assert isinstance(event, Event)
    assert "behaviors" not in event.attributes


def test_panther_event_time_is_the_last_resort() -> None:
    event = sample_event(SOURCE, "Standard.BruteForceByIP: Okta - Failed Login")
    assert event.time == datetime(2021, 6, 4, 9, 59, 53, 650807, tzinfo=UTC)
    assert event.actor == "admin"
    assert event.outcome is Outcome.FAILURE
    assert event.ip == "111.111.111.111"


def test_eventbridge_envelope_is_opened() -> None:
    log_event = sample(SOURCE, "Okta.Login.Success: Successful Login")
    # Okta log streaming to Amazon EventBridge wraps each LogEvent this way.
    wrapped = {
        "version": "0",
        "id": "7f1b7c8e-0000-0000-0000-000000000000",
        "detail-type": "SystemLog",
        "source": "aws.partner/okta.com/example-org/okta-logs",
        "account": "123456789012",
        "time": "2024-04-02T19:17:38Z",
        "region": "us-east-1",
        "resources": [],
        "detail": log_event,
    }
    event = normalize_one(wrapped)
    assert isinstance(event, Event) and event.source == SOURCE
    assert event.actor == "casey.hill@hey.com"
    assert event.time == datetime(2024, 4, 2, 19, 17, 37, 621000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("Okta.SSO.to.AWS: AWS SSO via Okta", DeadLetterReason.MISSING_TIME),
        ("Standard.GreyNoiseV3.MaliciousIP", DeadLetterReason.MISSING_TIME),
        ("Okta.PotentiallyStolenSession: Same device", DeadLetterReason.INVALID_TIME),
    ],
)
def test_events_without_a_usable_time_are_dead_letters(case: str, reason: DeadLetterReason) -> None:
    result = normalize_one(sample(SOURCE, case))
    assert isinstance(result, DeadLetter)
    assert result.reason is reason
    assert result.format == SOURCE


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = OktaSystemLogParser()
    docs = [(s.case, doc) for s in load_samples(vendor) for doc in unwrap(s.event)]
    assert docs
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def test_every_sample_event_type_is_classified_explicitly() -> None:
    actions = {
        e.action for s in load_samples(SOURCE) if isinstance(e := normalize_one(s.event), Event)
    }
    assert actions
    assert not {a for a in actions if not bundled_normalizer().taxonomy.covers(SOURCE, a)}
