"""Entra ID parser on published events (tests/data/samples/azure_entra_id.jsonl)."""

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
from detector.events.parsers.azure_entra_id import EntraIdParser
from tests.normalizing import bundled_normalizer, normalize_one, other_vendors, sample_event
from tests.samples import load_samples, sample

SOURCE = "azure_entra_id"


def test_successful_sign_in() -> None:
    event = sample_event(SOURCE, "Azure.Audit.VSCodeOAuthPhishing: VS Code to Microsoft Graph")
    # The record's own createdDateTime (7 fraction digits), not the export's "time".
    assert event.time == datetime(2025, 1, 15, 14, 30, 25, 123456, tzinfo=UTC)
    assert event.action == "Sign-in activity"
    assert event.category is Category.AUTHENTICATION
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "sam@lotr.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "9.9.9.9"
    assert event.country == "US"
    assert event.user_agent is not None and "Visual Studio Code/1.75.0" in event.user_agent
    assert event.target == "Visual Studio Code"
    assert event.attributes["resource"] == "Microsoft Graph"
    assert event.attributes["log_category"] == "NonInteractiveUserSignInLogs"
    assert event.attributes["tenant"] == "tenant-123"


def test_failed_sign_in_by_error_code() -> None:
    event = sample_event(
        SOURCE, "Azure.Audit.ExcessiveAccountLockouts: Account Lockout Error 50053"
    )
    assert event.time == datetime(2025, 1, 15, 8, 15, 23, 456000, tzinfo=UTC)
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "boromir@lotr.com"
    assert event.ip == "4.4.4.4"
    assert event.country == "RU"
    assert event.user_agent == "python-requests/2.28.0"
    assert event.target == "Microsoft Office"
    assert event.attributes["error_code"] == "50053"


def test_result_type_decides_when_there_is_no_status() -> None:
    event = sample_event(
        SOURCE, "Azure.Audit.DeviceCodeBrokerClient: Device Code Auth with Broker Client"
    )
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "aragorn@lotr.com"
    assert event.time == datetime(2025, 1, 15, 9, 30, 45, 123000, tzinfo=UTC)
    assert event.attributes["auth_protocol"] == "deviceCode"


def test_data_lake_service_principal_sign_in_failure() -> None:
    event = sample_event(SOURCE, "Azure.Audit.ManyFailedSignIns: Failed Sign-In")
    assert event.time == datetime(2023, 7, 26, 22, 58, 30, 983201, tzinfo=UTC)
    assert event.action == "Sign-in activity"
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "some-service-principal"
    assert event.actor_type is ActorType.SERVICE
    assert event.ip == "12.12.12.12"
    assert event.country == "IE"
    # A service principal signs in as its own app; what it reached is the resource.
    assert event.target == "Azure Storage"
    assert event.id == "azure_entra_id:36658c78-02d9-4d8f-84ee-5ca4a3fdefef"
    assert event.attributes["error_code"] == "7000215"


def test_data_lake_service_principal_sign_in_success() -> None:
    event = sample_event(SOURCE, "Azure.Audit.ManyFailedSignIns: Successful Sign-In")
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "very-normal-service-principal"
    assert event.actor_type is ActorType.SERVICE


def test_audit_credentials_added_to_a_service_principal() -> None:
    event = sample_event(
        SOURCE, "Azure.Audit.ServicePrincipalCredentialsAdded: Add Service Principal Cre"
    )
    assert event.time == datetime(2025, 1, 15, 9, 30, 20, 123456, tzinfo=UTC)
    assert event.action == "Add service principal credentials"
    assert event.category is Category.SECRET_ACCESS
    assert event.privileged
    assert event.outcome is Outcome.SUCCESS
    assert event.actor == "frodo@lotr.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "2.2.2.2"
    assert event.target == "Production API Service"
    assert event.attributes["service"] == "Core Directory"


def test_audit_action_is_the_activity_display_name() -> None:
    event = sample_event(SOURCE, "Azure.Audit.ElevateUserAccessAdministrator: Different Operation")
    assert event.action == "Remove role assignment"  # operationName says "Delete role assignment"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.actor == "secadmin@company.com"
    assert event.target == "former@company.com"


def test_audit_action_falls_back_to_operation_name() -> None:
    event = sample_event(SOURCE, "Azure.Audit.ElevateUserAccessAdministrator: User Elevated to")
    assert event.action == (
        "User has elevated their access to User Access Administrator for their Azure Resources"
    )
    assert event.outcome is Outcome.SUCCESS  # from the envelope's "result": "SUCCESS"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.actor == "denethor@lotr.com"


def test_failed_audit_activity() -> None:
    event = sample_event(SOURCE, "Azure.Audit.InviteExternalUsers: Unsuccessful invite")
    assert event.outcome is Outcome.FAILURE
    assert event.action == "Invite external user"
    assert event.time == datetime(2024, 9, 23, 14, 33, 9, 49661, tzinfo=UTC)
    assert event.actor == "denethor@lotr.com"
    assert event.target == "Zeus.Theboss"
    assert event.category is Category.PRIVILEGE_CHANGE


def test_pim_role_grant_takes_the_ip_from_additional_details() -> None:
    event = sample_event(SOURCE, "Azure.Audit.RoleChangedPIM: Successfully added PIM role")
    assert event.action == "Add member to role in PIM completed (permanent)"
    assert event.privileged
    assert event.actor == "Radahn@Starscourge.onmicrosoft.com"
    assert event.ip == "1.2.3.4"
    assert event.target == "Application Administrator"


def test_graph_api_sign_in_resource() -> None:
    # The Graph signIn resource is the diagnostic export's "properties" object on its own.
    graph = sample(SOURCE, "Azure.Audit.HighRiskSignIn: High Risk During Sign-In")["properties"]
    event = normalize_one(graph)
    assert isinstance(event, Event) and event.source == SOURCE
    assert event.action == "Sign-in activity"
    assert event.time == datetime(2025, 1, 15, 14, 23, 10, 123456, tzinfo=UTC)
    assert event.actor == "john@justice.org"
    assert event.outcome is Outcome.SUCCESS
    assert event.country == "RU"
    assert event.attributes["risk_level"] == "high"


def test_graph_api_directory_audit_resource() -> None:
    graph = sample(SOURCE, "Azure.Audit.InviteExternalUsers: Unsuccessful invite")["properties"]
    event = normalize_one(graph)
    assert isinstance(event, Event) and event.source == SOURCE
    assert event.action == "Invite external user"
    assert event.outcome is Outcome.FAILURE
    assert event.actor == "denethor@lotr.com"
    assert event.attributes["audit_category"] == "UserManagement"


def test_record_without_any_time_is_a_dead_letter() -> None:
    published = sample(SOURCE, "Azure.Audit.ROPCLoginNoMFA: Failed ROPC Login")
    fragment = {k: v for k, v in published.items() if k not in ("time", "p_event_time")}
    fragment["properties"] = {
        k: v for k, v in published["properties"].items() if k != "createdDateTime"
    }
    result = normalize_one(fragment)
    assert isinstance(result, DeadLetter)
    assert result.reason is DeadLetterReason.MISSING_TIME
    assert result.format == SOURCE


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = EntraIdParser()
    docs = [(s.case, doc) for s in load_samples(vendor) for doc in unwrap(s.event)]
    assert docs
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def test_every_sample_action_is_classified_explicitly() -> None:
    actions = {
        e.action for s in load_samples(SOURCE) if isinstance(e := normalize_one(s.event), Event)
    }
    assert len(actions) > 10
    assert not {a for a in actions if not bundled_normalizer().taxonomy.covers(SOURCE, a)}
