"""Kubernetes audit parser on published events: EKS (Panther), Falco's fixtures, AKS wrapping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import DeadLetter, Event
from detector.events.parsers.k8s_audit import K8sAuditParser
from tests.normalizing import (
    as_event,
    bundled_normalizer,
    normalize_one,
    other_vendors,
    sample_event,
)
from tests.samples import load_samples, sample

SOURCE = "k8s_audit"
AKS_CLUSTER = (
    "/subscriptions/0000/resourceGroups/rg/providers/"
    "Microsoft.ContainerService/managedClusters/prod"
)


def aks_record(audit_event: Mapping[str, Any], **outer: Any) -> dict[str, Any]:
    """An audit event as AKS diagnostic settings deliver it: a JSON string in properties.log."""
    return {
        "category": "kube-audit",
        "operationName": "Microsoft.ContainerService/managedClusters/diagnosticLogs/Read",
        "resourceId": AKS_CLUSTER,
        "properties": {"log": json.dumps(audit_event)},
        **outer,
    }


def lower_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key.lower(): lower_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lower_keys(item) for item in value]
    return value


def test_eks_pod_creation_with_panther_time() -> None:
    event = sample_event(SOURCE, "EKS Privileged Pod Created")
    assert event.time == datetime(2024, 2, 13, 12, 45, 6, 73000, tzinfo=UTC)  # p_event_time
    assert (event.action, event.category.value, event.outcome.value) == (
        "create",
        "infrastructure_change",
        "success",
    )
    assert (event.actor, event.actor_type.value) == ("john.doe@company.com", "human")
    assert (event.ip, event.user_agent) == ("1.2.3.4", "kubectl/v1.28.0")
    assert event.target == "default/pods/test-privileged-pod"
    assert event.id == "k8s_audit:abc-123:ResponseComplete"
    assert event.attributes == {
        "verb": "create",
        "namespace": "default",
        "resource": "pods",
        "stage": "ResponseComplete",
        "status_code": "201",
        "pod_privileges": "privileged",
    }


def test_forbidden_service_account_request_is_a_failure() -> None:
    event = sample_event(SOURCE, "Amazon.EKS.Audit.Multiple403: 403 and Private IP")
    assert event.time == datetime(2022, 11, 29, 22, 34, 6, 892000, tzinfo=UTC)
    assert (event.action, event.outcome.value) == ("watch", "failure")
    assert event.actor == "system:serviceaccount:kube-system:coredns"
    assert event.actor_type.value == "service"
    assert event.ip == "10.0.27.115"
    assert event.target == "endpointslices"
    assert event.attributes["api_group"] == "discovery.k8s.io"
    assert event.attributes["status_code"] == "403"


def test_status_code_is_read_inside_the_aks_wrapper() -> None:
    inner = sample(SOURCE, "EKS failed secret get (403 Forbidden)")
    event = as_event(aks_record(inner, time="2024-03-20T10:00:00.0000000Z"), SOURCE)
    assert (event.outcome.value, event.attributes["status_code"]) == ("failure", "403")


def test_falco_v1beta1_event() -> None:
    event = sample_event(SOURCE, "'compat_engine_v4_create_disallowed_pod'")
    assert event.time == datetime(2018, 10, 25, 14, 9, 49, 750328, tzinfo=UTC)
    assert event.actor == "system:serviceaccount:kube-system:replicaset-controller"
    assert event.actor_type.value == "service"
    assert event.ip == "::1"
    assert event.target == "default/pods"  # a create names no object yet (generateName)


def test_exec_into_a_pod_is_privileged() -> None:
    event = sample_event(SOURCE, "'pod_exec'")
    assert (event.action, event.category.value, event.privileged) == (
        "create",
        "infrastructure_change",
        True,
    )
    assert event.outcome.value == "success"  # 101 Switching Protocols
    assert event.target == "default/pods/nginx-deployment-7998647bdf-phvq7"
    assert event.attributes["subresource"] == "exec"
    assert event.id == "k8s_audit:ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6:ResponseStarted"
    parsed = K8sAuditParser().parse(sample(SOURCE, "'pod_exec'"))
    assert parsed.taxonomy_key == "create pods/exec"


def test_cluster_role_binding_is_a_privilege_change() -> None:
    event = sample_event(SOURCE, "'attach_cluster_admin_role'")
    assert (event.category.value, event.privileged) == ("privilege_change", True)
    assert event.target == "clusterrolebindings/some-reader-binding"
    assert event.actor == "minikube-user"


def test_secret_creation_is_secret_access() -> None:
    event = sample_event(SOURCE, "'create_secret'")
    assert event.category.value == "secret_access"
    assert event.target == "default/secrets/example-secret"
    assert event.time == datetime(2020, 4, 21, 17, 57, 5, 541358, tzinfo=UTC)


def test_anonymous_non_resource_request() -> None:
    event = sample_event(SOURCE, "Anonymous API Access Web Scanner Allowed")
    assert (event.actor, event.actor_type.value) == ("system:anonymous", "unknown")
    assert (event.action, event.target, event.category.value) == ("get", "/version", "other")
    assert event.ip == "44.238.138.237"


def test_managed_platform_identity_is_automation() -> None:
    event = sample_event(SOURCE, "eks:addon-manager from public ip as lambda")
    assert (event.actor, event.actor_type.value) == ("eks:addon-manager", "service")
    assert event.target == "kube-system/deployments/coredns"


def test_lower_cased_data_lake_event() -> None:
    original = sample_event(SOURCE, "'create_secret'")
    lowered = as_event(lower_keys(sample(SOURCE, "'create_secret'")), SOURCE)
    fields = ("time", "action", "actor", "outcome", "ip", "user_agent", "target", "id", "category")
    assert [getattr(lowered, f) for f in fields] == [getattr(original, f) for f in fields]


def test_aks_diagnostic_record_is_unwrapped() -> None:
    inner = sample(SOURCE, "'create_secret'")
    event = as_event(aks_record(inner), SOURCE)
    assert (event.actor, event.target) == ("minikube-user", "default/secrets/example-secret")
    assert event.time == datetime(2020, 4, 21, 17, 57, 5, 541358, tzinfo=UTC)
    assert event.attributes["cluster"] == "prod"


def test_aks_record_without_inner_time_uses_the_record_time() -> None:
    inner = sample(SOURCE, "EKS failed secret get (403 Forbidden)")
    event = as_event(aks_record(inner, time="2024-03-20T10:00:00.0000000Z"), SOURCE)
    assert event.time == datetime(2024, 3, 20, 10, tzinfo=UTC)
    assert (event.action, event.outcome.value, event.category.value) == (
        "get",
        "failure",
        "secret_access",
    )


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (sample(SOURCE, "EKS failed secret get (403 Forbidden)"), "missing_time"),
        # Panther's fragment has a time but no verb, which every real audit event carries.
        (sample(SOURCE, "Amazon.EKS.AnonymousAPIAccess: Anonymous API Access"), "unknown_format"),
        (sample(SOURCE, "'fal_01_003'"), "unknown_format"),  # Falco's {"kind": 0}
        (aks_record({}) | {"properties": {"log": "{not json"}}, "invalid_json"),
    ],
)
def test_malformed_events_become_dead_letters(doc: Any, reason: str) -> None:
    result = normalize_one(doc)
    assert isinstance(result, DeadLetter)
    assert result.reason.value == reason


def test_every_sample_action_is_classified_explicitly() -> None:
    parser = K8sAuditParser()
    keys = {
        parser.parse(result.raw).taxonomy_key or result.action
        for result in (normalize_one(s.event) for s in load_samples(SOURCE))
        if isinstance(result, Event)
    }
    assert "create pods/exec" in keys
    assert sorted(k for k in keys if not bundled_normalizer().taxonomy.covers(SOURCE, k)) == []


@pytest.mark.parametrize("other", other_vendors(SOURCE))
def test_other_vendors_are_not_taken_for_kubernetes(other: str) -> None:
    parser = K8sAuditParser()
    docs = [d for s in load_samples(other) if isinstance(s.event, Mapping) for d in unwrap(s.event)]
    assert docs
    assert not [d for d in docs if isinstance(d, Mapping) and parser.matches(d)]
