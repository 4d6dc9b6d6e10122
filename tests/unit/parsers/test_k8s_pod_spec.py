"""The ``pod_privileges`` attribute: what a pod or workload request asks of the nodes.

Published records (Falco's fixtures, Panther's EKS and AKS rule tests) where they exist;
workload templates, which no publisher ships, are written from the Kubernetes API reference.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from detector.events.parsers.k8s_pod_spec import pod_privileges
from tests.normalizing import as_event
from tests.samples import load_samples, sample

SOURCE = "k8s_audit"


def with_time(doc: dict[str, Any]) -> dict[str, Any]:
    """Panther's fragments carry no time; the attribute does not depend on one."""
    return {"requestReceivedTimestamp": "2026-01-05T10:00:00Z", **doc}


def container(**security_context: Any) -> dict[str, Any]:
    return {
        "name": "app",
        "image": "registry.example.com/app:1",
        "securityContext": security_context,
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("'create_privileged_pod'", "privileged"),
        ("'create_privileged_2nd_container_pod'", "privileged"),
        ("'create_hostnetwork_pod'", "host_network"),
        ("'create_sensitive_mount_pod'", "host_path"),
        ("EKS Pod with SYS_ADMIN Capability", "cap:SYS_ADMIN"),
        ("EKS Pod with HostIPC", "host_ipc"),
        ("EKS Pod With Host PID", "host_pid"),
    ],
)
def test_published_pods_name_what_they_ask_for(case: str, expected: str) -> None:
    event = as_event(with_time(sample(SOURCE, case)), SOURCE)
    assert event.attributes["pod_privileges"] == expected


@pytest.mark.parametrize(
    "case",
    [
        "'create_unprivileged_pod'",
        "'create_nohostnetwork_pod'",
        "Non-Privileged Pod Created",
        "EKS Exec Into Pod",
    ],
)
def test_published_ordinary_requests_have_no_attribute(case: str) -> None:
    event = as_event(with_time(sample(SOURCE, case)), SOURCE)
    assert "pod_privileges" not in event.attributes


def test_aks_wrapped_requests_are_read_too() -> None:
    # The AKS export holds the audit event as a JSON string, out of reach of raw.* conditions.
    published = [s for s in load_samples("azure_activity_kube_audit") if "Privileged" in s.case]
    record = next(s.event for s in published if "Pod.Privileged.Created" in s.case)
    assert isinstance(record["properties"]["log"], str)
    event = as_event(record, SOURCE)
    assert event.attributes["pod_privileges"] == "privileged"


def test_workload_templates_at_every_depth() -> None:
    pod = {"containers": [container(privileged=True)], "volumes": [{"hostPath": {"path": "/"}}]}
    deployment = {"kind": "Deployment", "spec": {"template": {"spec": pod}}}
    cronjob = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}}}
    assert pod_privileges(deployment) == "host_path,privileged"
    assert pod_privileges(cronjob) == "host_path,privileged"


def test_capabilities_are_normalized_and_only_dangerous_ones_count() -> None:
    caps = {"add": ["cap_sys_ptrace", "NET_BIND_SERVICE", "all", 7]}
    spec = {"spec": {"initContainers": [container(capabilities=caps)]}}
    assert pod_privileges(spec) == "cap:ALL,cap:SYS_PTRACE"


def test_debug_containers_count() -> None:
    ephemeral = {"spec": {"ephemeralContainers": [container(privileged=True)]}}
    assert pod_privileges(ephemeral) == "privileged"


@pytest.mark.parametrize(
    "body",
    [
        None,
        "a string",
        {"spec": "not a mapping"},
        {"spec": {"containers": "not a list", "hostPID": "true"}},
        {"spec": {"containers": [None, 3, {"securityContext": "x"}]}},
        {"spec": {"containers": [container(privileged=False, capabilities={"add": "SYS_ADMIN"})]}},
    ],
)
def test_malformed_or_harmless_bodies_ask_for_nothing(body: Any) -> None:
    assert pod_privileges(body) is None


def test_a_huge_body_is_read_within_bounds() -> None:
    harmless = [container() for _ in range(10_000)]
    spec = {"spec": {"containers": [*harmless, container(privileged=True)]}}
    assert pod_privileges(spec) is None  # past the bound: not looked at


def test_only_workload_resources_are_inspected() -> None:
    configmap = with_time(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "verb": "create",
            "user": {"username": "dana.lee@example.com"},
            "objectRef": {"resource": "configmaps", "namespace": "web", "name": "x"},
            "requestObject": {"spec": {"hostPID": True}},
            "responseStatus": {"code": 201},
        }
    )
    event = as_event(json.loads(json.dumps(configmap)), SOURCE)
    assert "pod_privileges" not in event.attributes
