"""Azure Activity Log parser on published events (tests/data/samples/azure_activity.jsonl).

The samples are Panther's ``Azure.MonitorActivity`` rule tests (Apache-2.0). Their AKS
``kube-audit`` records are kept apart in azure_activity_kube_audit.jsonl: they are
Kubernetes audit events and must stay with the k8s_audit parser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.config import PipelineConfig
from detector.events.envelopes import unwrap
from detector.events.model import ActorType, Category, DeadLetter, Event, Outcome
from detector.events.parsers.azure_activity import AzureActivityParser, dynamic
from detector.normalizing import build_normalizer
from detector.pipeline import Pipeline
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import Rule
from tests.normalizing import bundled_normalizer, normalize_one, other_vendors, sample_event
from tests.samples import load_samples, sample

SOURCE = "azure_activity"
KUBE_AUDIT = "azure_activity_kube_audit"
SUBSCRIPTION = "12345678-1234-1234-1234-123456789abc"


def test_owner_role_assignment() -> None:
    event = sample_event(SOURCE, "RoleAssignment.PrivilegedOrElevated: Owner Role Assignment")
    assert event.time == datetime(2024, 12, 17, 10, 30, tzinfo=UTC)
    assert event.action == "Microsoft.Authorization/roleAssignments/write"
    assert event.category is Category.PRIVILEGE_CHANGE
    assert event.privileged
    assert event.outcome is Outcome.SUCCESS
    # No claims in this trimmed record: the caller is the principal of the authorization evidence.
    assert event.actor == "6b6d44f0-b13a-46a0-bfde-161324d4c34d"
    assert event.actor_type is ActorType.HUMAN
    assert event.ip == "1.1.1.1"
    assert event.target is not None and event.target.endswith(
        "/roleAssignments/a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    )
    assert event.attributes["role_definition"] == "Owner"
    assert event.attributes["scope"] == f"/subscriptions/{SUBSCRIPTION}"
    assert event.attributes["principal_type"] == "ServicePrincipal"
    assert event.attributes["subscription"] == SUBSCRIPTION
    assert event.attributes["provider"] == "Microsoft.Authorization"
    assert event.attributes["category"] == "Administrative"


def test_role_granted_comes_from_the_request_not_the_callers_own_role() -> None:
    # The evidence says the caller is an Owner; what was granted is Reader.
    event = sample_event(SOURCE, "PrivilegedOrElevated: Non-Privileged Role Assignment")
    assert event.attributes["role_definition"] == "Reader"


def test_unknown_role_definition_keeps_its_guid() -> None:
    doc = sample(SOURCE, "PrivilegedOrElevated: Owner Role Assignment")
    role = "/providers/Microsoft.Authorization/roleDefinitions/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    body = json.dumps({"Properties": {"RoleDefinitionId": role}})
    event = _event({**doc, "properties": {"requestbody": body}})
    assert event.attributes["role_definition"] == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_elevate_access_with_the_rest_api_operation_name() -> None:
    event = sample_event(SOURCE, "Elevate Access to All Azure Subscriptions")
    assert event.action == "Microsoft.Authorization/elevateAccess/action"
    assert event.category is Category.PRIVILEGE_CHANGE and event.privileged
    assert event.actor == "attacker@example.com"
    assert event.actor_type is ActorType.HUMAN
    assert event.target == "/providers/Microsoft.Authorization"


def test_diagnostic_settings_deleted_without_a_named_caller() -> None:
    event = sample_event(SOURCE, "DiagnosticSettings.Deleted: Diagnostic Settings Deleted")
    assert event.action == "Microsoft.Insights/diagnosticSettings/delete"
    assert event.category is Category.CONFIG_CHANGE and event.privileged
    assert event.attributes["resource_group"] == "myresourcegroup"
    # Trimmed record: only the caller's address identifies who acted.
    assert event.actor == "1.1.1.1"
    assert event.actor_type is ActorType.UNKNOWN
    assert event.attributes["actor_from"] == "caller_ip"


def test_upper_case_operation_stays_verbatim() -> None:
    event = sample_event(SOURCE, "ResourceLockDeleted: Resource Lock Deleted Successfully")
    assert event.action == "MICROSOFT.AUTHORIZATION/LOCKS/DELETE"
    assert event.category is Category.CONFIG_CHANGE and event.privileged
    assert event.actor == "compromised-admin@company.com"


def test_app_caller_is_a_service() -> None:
    event = sample_event(SOURCE, "KeyVault.SecretAccessedOrRecovered: Secret Accessed")
    assert event.category is Category.SECRET_ACCESS
    assert event.actor == "12345678-1234-1234-1234-123456789abc"
    assert event.actor_type is ActorType.SERVICE


def test_storage_keys_listed_by_a_person() -> None:
    event = sample_event(SOURCE, "StorageAccount.KeysListed: Storage Account Keys Listed")
    assert event.category is Category.SECRET_ACCESS and event.privileged
    assert event.actor == "denethor@lotr.com"
    assert event.actor_type is ActorType.HUMAN


def test_storage_resource_log() -> None:
    event = sample_event(SOURCE, "Blob.CPKEncryptionDetected: CPK Encrypted Blob Access Denied")
    assert event.action == "GetBlobMetadata"
    assert event.category is Category.OTHER
    assert event.outcome is Outcome.FAILURE
    assert event.ip == "1.1.1.1"  # "1.1.1.1:57485" as published
    assert event.actor == "SAS:key1(EXAMPLE_HASH)"
    assert event.user_agent is not None and event.user_agent.startswith("Mozilla/5.0")
    assert event.attributes["status_code"] == "409"


def test_storage_outcome_from_the_response_type() -> None:
    assert sample_event(SOURCE, "BulkExtraction: Successful Blob").outcome is Outcome.SUCCESS
    assert sample_event(SOURCE, "BulkExtraction: Failed Operation").outcome is Outcome.FAILURE


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        ("Start", Outcome.UNKNOWN),
        ("Accept", Outcome.UNKNOWN),
        ("Success", Outcome.SUCCESS),
        ("Succeeded", Outcome.SUCCESS),
        ("Failure", Outcome.FAILURE),
        ("Failed", Outcome.FAILURE),
    ],
)
def test_outcome_of_each_result_type(result: str, outcome: Outcome) -> None:
    doc = sample(SOURCE, "PrivilegedOrElevated: Owner Role Assignment")
    assert _event({**doc, "resultType": result}).outcome is outcome


def test_record_without_time_is_the_only_dead_letter() -> None:
    dead = [
        (s.line, r.reason.value)
        for s in load_samples(SOURCE)
        if isinstance(r := normalize_one(s.event), DeadLetter)
    ]
    # "Non-K8s Azure Activity (Excluded)": published without any timestamp.
    assert dead == [(215, "missing_time")]


def test_aks_kube_audit_records_stay_kubernetes_audit() -> None:
    parser = AzureActivityParser()
    items = load_samples(KUBE_AUDIT)
    assert len(items) == 34
    assert not [s.line for s in items if parser.matches(s.event)]
    events = [e for s in items if isinstance(e := normalize_one(s.event), Event)]
    assert events and {e.source for e in events} == {"k8s_audit"}


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = AzureActivityParser()
    docs = [(s.case, doc) for s in load_samples(vendor) for doc in unwrap(s.event)]
    assert docs
    assert not [case for case, doc in docs if isinstance(doc, Mapping) and parser.matches(doc)]


def test_every_sample_action_is_classified_explicitly() -> None:
    taxonomy = bundled_normalizer().taxonomy
    keys = {
        e.action.upper()
        for s in load_samples(SOURCE)
        if isinstance(e := normalize_one(s.event), Event)
    }
    assert len(keys) > 100
    assert not {key for key in keys if not taxonomy.covers(SOURCE, key)}


def test_dynamic_decodes_json_text_only() -> None:
    assert dynamic('{"a": 1}') == {"a": 1}
    assert dynamic("[1, 2]") == [1, 2]
    assert dynamic("{not json") == "{not json"
    assert dynamic("Owner") == "Owner"
    assert dynamic({"a": 1}) == {"a": 1}


# --- published attack records through the real pipeline ---------------------------------

ATTACKS = [
    ("azure-admin-role-granted", "PrivilegedOrElevated: Owner Role Assignment", 1),
    ("azure-admin-role-granted", "Elevate Access to All Azure Subscriptions", 1),
    ("azure-admin-role-granted", "PrivilegedOrElevated: Non-Privileged Role Assignment", 0),
    ("azure-audit-logging-stopped", "DiagnosticSettings.Deleted: Diagnostic Settings Deleted", 1),
    ("azure-audit-logging-stopped", "DiagnosticSettings.Deleted: Case Insensitive Match", 1),
    ("azure-audit-logging-stopped", "DiagnosticSettings.Deleted: Different Operation", 0),
    ("azure-audit-logging-stopped", "LogAnalyticsWorkspace.Deleted: Workspace Deleted", 1),
]


@pytest.fixture(scope="module")
def pack() -> dict[str, Rule]:
    return {rule.id: rule for rule in load_rules([bundled_rules_dir()])}


def alerts_for(rule: Rule, docs: Sequence[Any]) -> int:
    """Alerts ``rule`` raises when ``docs`` go through normalizer, features, rules and alerts."""
    config = PipelineConfig()
    config = config.model_copy(
        update={"models": config.models.model_copy(update={"enabled": False})}
    )
    pipeline = Pipeline.from_config(config, rules=[rule], normalizer=build_normalizer(config))
    events = [_event(doc) for doc in docs]
    alerts = pipeline.process_events(events) + pipeline.finish()
    return sum(1 for a in alerts if a.revision == 0 and a.detection.name == rule.id)


@pytest.mark.parametrize(("rule_id", "case", "expected"), ATTACKS)
def test_published_records_raise_the_expected_alert(
    pack: dict[str, Rule], rule_id: str, case: str, expected: int
) -> None:
    assert alerts_for(pack[rule_id], [sample(SOURCE, case)]) == expected


def _event(doc: Any) -> Event:
    result = normalize_one(doc)
    assert isinstance(result, Event), result
    return result
