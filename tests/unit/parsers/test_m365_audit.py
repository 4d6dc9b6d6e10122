"""Office 365 Management Activity API parser and its rules, on published and reshaped records.

``tests/data/samples/m365_audit.jsonl`` holds Panther's published records (Apache-2.0);
``tests/data/m365_reshaped.jsonl`` holds published Entra ID audit records reshaped into the
Management Activity API schema, and Exchange admin records written from Microsoft's schema
reference (each line's ``case`` says which).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detector.config import PipelineConfig
from detector.events.envelopes import unwrap
from detector.events.model import (
    ActorType,
    Category,
    DeadLetter,
    DeadLetterReason,
    Event,
    Outcome,
)
from detector.events.parsers.m365_audit import M365AuditParser
from detector.pipeline import Pipeline
from detector.rules.loader import bundled_rules_dir, load_rules
from tests.normalizing import (
    as_event,
    bundled_normalizer,
    normalize_one,
    other_vendors,
    sample_event,
)
from tests.samples import SAMPLES_DIR, load_samples, sample

SOURCE = "m365_audit"
RESHAPED = SAMPLES_DIR.parent / "m365_reshaped.jsonl"
FAILED_LOGIN = "Brute.Force.Login.by.User: Failed Login event"
MFA_REMOVED = "Microsoft365.MFA.Disabled: MFA Remove event"
MFA_ADDED = "Microsoft365.MFA.Disabled: MFA Add Event"


def reshaped(case: str) -> Any:
    """The event of the first reshaped record whose ``case`` contains ``case``."""
    for line in Path(RESHAPED).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if case in row["case"]:
            return row["event"]
    raise LookupError(case)


def alerts_of(rule_id: str, events: list[Event]) -> list[str]:
    """Summaries of the alerts one bundled rule raises on ``events``, through the pipeline."""
    rule = next(r for r in load_rules([bundled_rules_dir()]) if r.id == rule_id)
    config = PipelineConfig()
    config = config.model_copy(
        update={"models": config.models.model_copy(update={"enabled": False})}
    )
    pipeline = Pipeline.from_config(config, rules=[rule], normalizer=bundled_normalizer())
    alerts = pipeline.process_events(events) + pipeline.finish()
    return [a.detection.summary for a in alerts if a.revision == 0]


def test_failed_sign_in_is_a_failure_whatever_result_status_says() -> None:
    event = sample_event(SOURCE, FAILED_LOGIN)
    # CreationTime is published without a zone: it is UTC.
    assert event.time == datetime(2022, 12, 12, 15, 57, 57, tzinfo=UTC)
    assert event.action == "UserLoginFailed"
    assert event.category is Category.AUTHENTICATION
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "sample.user@yourorg.onmicrosoft.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "1.2.3.4"
    assert event.user_agent is not None and event.user_agent.startswith("Mozilla/5.0")
    assert event.id == "m365_audit:abc-def-123"
    assert event.attributes["logon_error"] == "InvalidUserNameOrPassword"
    assert event.attributes["record_type"] == "15"
    assert event.attributes["tenant"] == "11-aa-22-bb"


def test_successful_sign_in_without_workload() -> None:
    event = sample_event(SOURCE, "Login Event")
    assert (event.action, event.outcome) == ("UserLoggedIn", Outcome.SUCCESS)
    assert "workload" not in event.attributes


def test_user_update_by_a_system_principal() -> None:
    event = sample_event(SOURCE, MFA_REMOVED)
    assert event.action == "Update user."
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.actor == "ServicePrincipal_aa-bb-ccc"
    assert event.actor_type is ActorType.SERVICE
    assert event.target == "sample.user@yourorg.onmicrosoft.com"
    assert event.attributes["user_type"] == "System"


def test_role_member_added_names_the_role() -> None:
    event = as_event(reshaped("Global Administrator granted"), SOURCE)
    assert event.action == "Add member to role."
    assert (event.category, event.privileged) == (Category.PRIVILEGE_CHANGE, True)
    assert event.target == "Global Administrator"
    assert event.attributes["role"] == "Global Administrator"
    assert event.attributes["object"] == "priya.n@contoso.com"
    # ClientIP is empty for Entra ID records; ActorIpAddress has the address.
    assert event.ip == "198.51.100.14"


def test_consent_targets_the_application() -> None:
    event = as_event(reshaped("Consent to application"), SOURCE)
    assert (event.category, event.privileged) == (Category.PRIVILEGE_CHANGE, True)
    assert event.target == "Mail Archiver Pro"


def test_exchange_cmdlet_parameters_and_client_ip_with_port() -> None:
    event = as_event(reshaped("ingestion switched off"), SOURCE)
    assert event.action == "Set-AdminAuditLogConfig"
    assert (event.category, event.privileged) == (Category.CONFIG_CHANGE, True)
    assert event.outcome is Outcome.SUCCESS  # Exchange admin ResultStatus is "True"
    assert event.ip == "203.0.113.45"
    assert event.attributes["cmdlet_parameters"] == "-UnifiedAuditLogIngestionEnabled False"
    assert event.attributes["workload"] == "Exchange"
    refused = as_event(reshaped("ResultStatus False"), SOURCE)
    assert refused.outcome is Outcome.FAILURE


def test_bracketed_ipv6_client_ip_with_port() -> None:
    event = as_event(reshaped("ingestion switched on"), SOURCE)
    assert event.ip == "2001:db8:1f70:0:999:de8:7648:6e8"


def test_cmdlet_parameters_stay_bounded() -> None:
    doc = dict(reshaped("inbox rule forwarding"))
    doc["Parameters"] = [{"Name": f"P{i}", "Value": "x" * 500} for i in range(40)]
    summary = as_event(doc, SOURCE).attributes["cmdlet_parameters"]
    assert len(summary) <= 1024
    assert summary.startswith("-P0 " + "x" * 100)


def test_every_reshaped_record_becomes_an_event() -> None:
    lines = Path(RESHAPED).read_text(encoding="utf-8").splitlines()
    results = [normalize_one(json.loads(line)["event"]) for line in lines]
    assert len(results) >= 10
    assert all(isinstance(r, Event) and r.source == SOURCE for r in results), results


def test_every_action_is_classified_explicitly() -> None:
    lines = Path(RESHAPED).read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line)["event"] for line in lines] + [s.event for s in load_samples(SOURCE)]
    actions = {as_event(doc, SOURCE).action for doc in docs}
    taxonomy = bundled_normalizer().taxonomy
    assert not {a for a in actions if not taxonomy.covers(SOURCE, a)}


def test_wazuh_wrapper_is_opened() -> None:
    wrapped = {"integration": "office365", "office365": sample(SOURCE, FAILED_LOGIN)}
    assert as_event(wrapped, SOURCE).action == "UserLoginFailed"


def test_record_without_operation_is_a_dead_letter_of_this_format() -> None:
    fragment = {k: v for k, v in sample(SOURCE, FAILED_LOGIN).items() if k != "Operation"}
    result = normalize_one(fragment)
    assert isinstance(result, DeadLetter)
    assert (result.reason, result.format) == (DeadLetterReason.UNKNOWN_FORMAT, SOURCE)


def test_invalid_creation_time_is_a_dead_letter() -> None:
    doc = {**sample(SOURCE, FAILED_LOGIN), "CreationTime": "yesterday"}
    result = normalize_one(doc)
    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.INVALID_TIME


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = M365AuditParser()
    docs = [(s.case, doc) for s in load_samples(vendor) for doc in unwrap(s.event)]
    assert docs
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def replayed_failures(copies: int) -> list[Event]:
    """The published failed sign-in, replayed with distinct ids 30 seconds apart."""
    published = sample(SOURCE, FAILED_LOGIN)
    return [
        as_event(
            {
                **published,
                "Id": f"abc-def-{n}",
                "CreationTime": f"2022-12-12 15:5{n // 2}:{n % 2 * 30:02d}",
            },
            SOURCE,
        )
        for n in range(copies)
    ]


def test_published_failed_sign_in_replayed_ten_times_raises_brute_force() -> None:
    summaries = alerts_of("m365-brute-force", replayed_failures(10))
    assert summaries == [
        "sample.user@yourorg.onmicrosoft.com failed to sign in to Microsoft 365 10 times in 10m"
    ]


def test_nine_failures_stay_below_the_threshold() -> None:
    assert alerts_of("m365-brute-force", replayed_failures(9)) == []


def test_published_mfa_removal_alerts_and_mfa_addition_does_not() -> None:
    assert len(alerts_of("mfa-factor-removed", [sample_event(SOURCE, MFA_REMOVED)])) == 1
    assert alerts_of("mfa-factor-removed", [sample_event(SOURCE, MFA_ADDED)]) == []


@pytest.mark.parametrize(
    ("rule_id", "case", "alerts"),
    [
        ("idp-admin-role-granted", "Global Administrator granted", 1),
        ("idp-admin-role-granted", "Application Administrator", 1),
        ("m365-audit-logging-disabled", "ingestion switched off", 1),
        ("m365-audit-logging-disabled", "ingestion switched on", 0),
        ("m365-audit-logging-disabled", "ResultStatus False", 0),
        ("m365-mail-forwarding", "inbox rule forwarding", 1),
        ("m365-mail-forwarding", "mailbox forwarding set", 1),
    ],
)
def test_reshaped_records_raise_the_expected_alerts(rule_id: str, case: str, alerts: int) -> None:
    assert len(alerts_of(rule_id, [as_event(reshaped(case), SOURCE)])) == alerts
