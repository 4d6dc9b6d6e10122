"""GCP Cloud Audit Logs parser on published events (Panther), GKE's Kubernetes audit included."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.config import PipelineConfig
from detector.events.model import DeadLetter, Event
from detector.events.parsers.gcp_audit import GcpAuditParser
from detector.pipeline import Pipeline
from detector.rules.loader import bundled_rules_dir, load_rules
from tests.normalizing import as_event, bundled_normalizer, normalize_one, other_vendors
from tests.samples import load_samples, sample
from tests.unit.test_sample_coverage import carries_time

SOURCE = "gcp_audit"


def entry(payload: dict[str, Any], **outer: Any) -> dict[str, Any]:
    """A LogEntry around an AuditLog payload, as Cloud Logging exports it."""
    return {
        "insertId": "1abc2def3",
        "logName": "projects/shop-prod-4821/logs/cloudaudit.googleapis.com%2Factivity",
        "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", **payload},
        "resource": {"type": "project", "labels": {"project_id": "shop-prod-4821"}},
        "timestamp": "2026-01-05T10:00:00.123456789Z",
        "severity": "NOTICE",
        **outer,
    }


def gke(method: str, resource_name: str | None, **payload: Any) -> dict[str, Any]:
    body = {
        "serviceName": "k8s.io",
        "methodName": method,
        "authenticationInfo": {"principalEmail": "dana@example.com"},
        "requestMetadata": {
            "callerIp": "203.0.113.9",
            "callerSuppliedUserAgent": "kubectl/v1.31.2",
        },
        "status": {},
        **({"resourceName": resource_name} if resource_name else {}),
        **payload,
    }
    labels = {"project_id": "shop-prod-4821", "cluster_name": "prod-eu", "location": "europe-west1"}
    return entry(body, resource={"type": "k8s_cluster", "labels": labels})


def test_owner_granted_by_terraform_lists_the_iam_change() -> None:
    event = as_event(sample(SOURCE, "OrgFolderIAMChanges: Terraform User Agent"), SOURCE)
    assert (event.action, event.category.value, event.privileged) == (
        "SetIamPolicy",
        "privilege_change",
        True,
    )
    assert (event.actor, event.actor_type.value) == (
        "terraform@platform.iam.gserviceaccount.com",
        "service",
    )
    assert event.time == datetime(2022, 5, 5, 14, 0, 48, 814294, tzinfo=UTC)
    assert event.target == "organizations/888888888888"
    assert event.user_agent == "Terraform/0.13.2 terraform-provider-google/3.90.1"
    assert event.attributes["granted_roles"] == "roles/owner"
    assert event.attributes["members"] == "user:backdoor@example.com"
    assert event.attributes["organization"] == "888888888888"
    assert event.attributes["log_type"] == "activity"


def test_sink_deletion_from_a_lower_cased_data_lake_record() -> None:
    event = as_event(sample(SOURCE, "logging-sink.deleted-should-alert"), SOURCE)
    assert event.action == "google.logging.v2.ConfigServiceV2.DeleteSink"
    assert (event.category.value, event.privileged, event.outcome.value) == (
        "config_change",
        True,
        "success",
    )
    assert (event.actor, event.ip) == ("user@domain.com", "12.12.12.12")
    assert event.id.startswith("gcp_audit:projects/test-project-123456/logs/")
    assert event.attributes["project"] == "test-project-123456"
    assert event.attributes["service"] == "logging.googleapis.com"


def test_failed_call_is_a_failure_with_its_status_code() -> None:
    event = as_event(sample(SOURCE, "VPC control violation"), SOURCE)
    assert event.outcome.value == "failure"
    assert event.attributes["status_code"] == "7"
    assert event.attributes["log_type"] == "policy"


def test_google_internal_caller_and_system_work() -> None:
    event = as_event(sample(SOURCE, "service-account.access-grated-should-not-alert"), SOURCE)
    # No principal at all: Google's own work, named by the service that did it.
    assert (event.actor, event.actor_type.value) == ("iam.googleapis.com", "service")
    assert event.ip is None
    assert event.attributes["caller_ip"] == "private"


def test_principal_subject_when_there_is_no_email() -> None:
    event = as_event(sample(SOURCE, "Principal Subject Used"), SOURCE)
    assert event.actor == "example_principal_subject"
    assert event.attributes["caller_ip"] == "gce-internal-ip"
    assert event.category.value == "authentication"


def test_impersonation_chain_and_federated_subject() -> None:
    delegation = [{"firstPartyPrincipal": {"principalEmail": "ana@example.com"}}]
    pool = "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/gh/subject/repo"
    event = as_event(
        entry(
            {
                "serviceName": "storage.googleapis.com",
                "methodName": "storage.buckets.delete",
                "authenticationInfo": {
                    "principalSubject": pool,
                    "serviceAccountDelegationInfo": delegation,
                },
                "resourceName": "projects/_/buckets/b1",
                "status": {},
            }
        ),
        SOURCE,
    )
    assert (event.actor, event.actor_type.value) == (pool, "service")
    assert event.attributes["delegated_from"] == "ana@example.com"
    assert event.category.value == "infrastructure_change"


def test_iam_summary_is_bounded() -> None:
    deltas = [
        {"action": "ADD", "role": "roles/viewer", "member": f"user:u{i}@example.com"}
        for i in range(40)
    ]
    payload = {
        "serviceName": "cloudresourcemanager.googleapis.com",
        "methodName": "SetIamPolicy",
        "authenticationInfo": {"principalEmail": "ana@example.com"},
        "serviceData": {"policyDelta": {"bindingDeltas": deltas}},
    }
    members = as_event(entry(payload), SOURCE).attributes["members"]
    assert members.endswith(",(+30 more)")
    assert members.count("@") == 10


def test_public_members_are_the_public_principals_added_never_those_removed() -> None:
    def attributes(*deltas: dict[str, str]) -> Mapping[str, str]:
        payload = {
            "serviceName": "storage.googleapis.com",
            "methodName": "storage.setIamPermissions",
            "authenticationInfo": {"principalEmail": "ana@example.com"},
            "serviceData": {"policyDelta": {"bindingDeltas": list(deltas)}},
        }
        return as_event(entry(payload), SOURCE).attributes

    viewer = "roles/storage.objectViewer"
    opened = attributes(
        {"action": "ADD", "role": viewer, "member": "allUsers"},
        {"action": "ADD", "role": viewer, "member": "allAuthenticatedUsers"},
    )
    assert opened["public_members"] == "allAuthenticatedUsers,allUsers"
    closed = attributes(
        {"action": "REMOVE", "role": viewer, "member": "allUsers"},
        {"action": "ADD", "role": viewer, "member": "group:readers@example.com"},
    )
    assert "public_members" not in closed


def test_gke_exec_becomes_a_kubernetes_event() -> None:
    event = as_event(
        gke("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/prod/pods/web-1/exec")
    )
    assert (event.source, event.action) == ("k8s_audit", "create")
    assert (event.category.value, event.privileged) == ("infrastructure_change", True)
    assert event.target == "prod/pods/web-1"
    assert {k: event.attributes[k] for k in ("verb", "namespace", "resource", "subresource")} == {
        "verb": "create",
        "namespace": "prod",
        "resource": "pods",
        "subresource": "exec",
    }
    assert (event.attributes["platform"], event.attributes["cluster"]) == ("gke", "prod-eu")
    parsed = GcpAuditParser().parse(event.raw)
    assert parsed.taxonomy_key == "create pods/exec"


@pytest.mark.parametrize(
    ("method", "resource_name", "key", "target"),
    [
        ("io.k8s.core.v1.secrets.list", "core/v1/secrets", "list secrets", "secrets"),
        (
            "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
            "rbac.authorization.k8s.io/v1/clusterrolebindings/me-admin",
            "create clusterrolebindings",
            "clusterrolebindings/me-admin",
        ),
        (
            "io.k8s.core.v1.namespaces.delete",
            "core/v1/namespaces/prod",
            "delete namespaces",
            "namespaces/prod",
        ),
        ("io.k8s.readyz", None, "get /readyz", "/readyz"),
    ],
)
def test_gke_requests_map_like_native_audit_events(
    method: str, resource_name: str | None, key: str, target: str
) -> None:
    event = as_event(gke(method, resource_name), "k8s_audit")
    assert GcpAuditParser().parse(event.raw).taxonomy_key == key
    assert event.target == target
    assert "namespace" not in event.attributes


def test_gke_rbac_api_group_is_the_full_name() -> None:
    doc = gke(
        "io.k8s.authorization.rbac.v1.clusterrolebindings.create",
        "rbac.authorization.k8s.io/v1/clusterrolebindings/me-admin",
    )
    assert as_event(doc).attributes["api_group"] == "rbac.authorization.k8s.io"


def test_published_gke_records_are_kubernetes_events() -> None:
    event = as_event(sample(SOURCE, "GCP GKE Privileged Pod Created"), "k8s_audit")
    assert (event.action, event.target) == ("create", "default/pods/test-privileged-pod")
    assert event.attributes["platform"] == "gke"


def test_timestamped_samples_never_dead_letter() -> None:
    timestamped = [s for s in load_samples(SOURCE) if carries_time(s.event)]
    results = [normalize_one(s.event) for s in timestamped]
    assert len(timestamped) == 151
    assert [r for r in results if isinstance(r, DeadLetter)] == []
    assert {r.source for r in results if isinstance(r, Event)} == {"gcp_audit", "k8s_audit"}


def test_every_published_record_is_an_event_or_an_undated_fragment() -> None:
    results = [normalize_one(s.event) for s in load_samples(SOURCE)]
    events = [r for r in results if isinstance(r, Event)]
    reasons = {r.reason.value for r in results if isinstance(r, DeadLetter)}
    assert (len(results), len(events)) == (206, 155)
    # Panther's rule-test fragments: no time, no principal, or no payload at all.
    assert reasons == {"missing_time", "invalid_time", "missing_actor", "unknown_format"}


@pytest.mark.parametrize(
    "doc",
    [
        {"protoPayload": {"@type": "type.googleapis.com/x.RequestLog", "methodName": "m"}},
        {"jsonPayload": {}},
    ],
)
def test_other_log_entries_are_not_audit_logs(doc: dict[str, Any]) -> None:
    assert not GcpAuditParser().matches(doc)


@pytest.mark.parametrize("vendor", other_vendors(SOURCE))
def test_other_vendors_do_not_match(vendor: str) -> None:
    parser = GcpAuditParser()
    docs = [s.event for s in load_samples(vendor) if isinstance(s.event, dict)]
    assert not [d for d in docs if parser.matches(d)]


def alerts_for(cases: list[str], rule_files: tuple[str, ...] = ("gcp.yaml",)) -> set[str]:
    """The rules that alert when these published records go through the real pipeline."""
    rules = load_rules([bundled_rules_dir() / name for name in rule_files])
    pipeline = Pipeline.from_config(PipelineConfig(), rules=rules, normalizer=bundled_normalizer())
    events = [as_event(sample(SOURCE, case)) for case in cases]
    alerts = pipeline.process_events(events) + pipeline.finish()
    return {alert.detection.name for alert in alerts}


@pytest.mark.parametrize(
    ("case", "rule"),
    [
        ("OrgFolderIAMChanges: Terraform User Agent", "gcp-admin-role-granted"),
        ("logging-sink.deleted-should-alert", "gcp-audit-logging-stopped"),
        ("logging-bucket.deleted-should-alert", "gcp-audit-logging-stopped"),
        ("logging-sink.modifed-should-alert", "gcp-audit-logging-stopped"),
        ("Created Service Account Key", "gcp-service-account-key-created"),
        ("compute.firewalls.create-should-alert", "gcp-manual-infrastructure-change"),
    ],
)
def test_published_attack_records_raise_the_expected_alert(case: str, rule: str) -> None:
    assert rule in alerts_for([case])


@pytest.mark.parametrize(
    "case",
    ["OrgFolderIAMChanges: Manual Change", "logging-sink.non-deletion-should-not-alert"],
)
def test_published_benign_records_do_not_raise_those_alerts(case: str) -> None:
    fired = alerts_for([case])
    assert not fired & {"gcp-admin-role-granted", "gcp-audit-logging-stopped"}
