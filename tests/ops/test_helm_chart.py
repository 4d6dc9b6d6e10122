"""The Helm chart helm/ciwatch, rendered for real with Helm's engine (helm_python).

Every combination of values is rendered, validated against the Kubernetes 1.33
OpenAPI schemas (strict: unknown fields fail), and its pod checked against the
restricted Pod Security Standard. The CRD objects (ServiceMonitor,
PrometheusRule) are checked by structure and with `promtool check rules`. The
pipeline file the chart writes is loaded with ciwatch's own config loader.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.ops import REPO_ROOT
from tests.ops.chart import CHART_DIR, find, pod_spec, render, restricted_violations
from tests.ops.chart_values import (
    COMBINATIONS,
    CRD_KINDS,
    KUBE_VERSION,
    MONITORING,
    SECRETS,
    file_of,
    mount,
    pipeline_of,
)

# --- Kubernetes validity -----------------------------------------------------------------


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_every_manifest_is_valid_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    manifests = rendered[combination]
    kinds = {m["kind"] for m in manifests}
    assert {"StatefulSet", "ConfigMap", "Service", "ServiceAccount"} <= kinds
    for manifest in manifests:
        if manifest["kind"] in CRD_KINDS:
            continue  # not in Kubernetes' schemas: test_monitoring_objects checks them
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        assert manifest["metadata"]["namespace"] == "security"
        assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == "ciwatch"
        assert manifest["metadata"]["labels"]["helm.sh/chart"] == "ciwatch-0.1.0"


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_pod_passes_the_restricted_pod_security_standard(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    (statefulset,) = find(rendered[combination], "StatefulSet")
    template = statefulset["spec"]["template"]
    assert (
        restricted_violations(template["spec"], annotations=template["metadata"].get("annotations"))
        == []
    )
    spec = template["spec"]
    assert spec["automountServiceAccountToken"] is False
    (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
    assert tmp["emptyDir"]["medium"] == "Memory" and tmp["emptyDir"]["sizeLimit"]
    context = spec["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (10001,) * 3


def test_restricted_violations_reports_each_control() -> None:
    bad = {
        "hostNetwork": True,
        "hostPID": True,
        "securityContext": {"runAsUser": 0, "sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {}}],
        "containers": [
            {
                "name": "c",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "privileged": True,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                    "seccompProfile": {"type": "Unconfined"},
                    "procMount": "Unmasked",
                    "seLinuxOptions": {"user": "root"},
                },
            }
        ],
    }
    text = "\n".join(
        restricted_violations(
            bad, annotations={"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
        )
    )
    for expected in (
        "hostNetwork",
        "hostPID",
        "runAsUser is 0",
        "kernel.msgmax",
        "hostPath",
        "'nfs'",
        "hostPort 80",
        "privileged",
        "SYS_ADMIN",
        "drop does not include ALL",
        "Unconfined",
        "procMount",
        "seLinuxOptions",
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "readOnlyRootFilesystem",
        "AppArmor",
    ):
        assert expected in text, expected
    # An empty container securityContext is exactly the fault this guards against.
    assert restricted_violations({"containers": [{"name": "c", "securityContext": {}}]})


def test_lint_strict_passes() -> None:
    for values in (COMBINATIONS["defaults"], COMBINATIONS["everything"]):
        report = helm_python.lint(CHART_DIR, values, strict=True, kube_version="v1.33.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert problems == [] and report["errors"] == []


# --- values schema ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"webhook": {"format": "xml"}}, "/webhook/format"),
        ({"replicaCount": 0}, "/replicaCount"),
        ({"replicas": 2}, "additional properties 'replicas'"),
        ({"kafka": {"bootstrapServers": []}}, "/kafka/bootstrapServers"),
        ({"kafka": {"topics": []}}, "/kafka/topics"),
        ({"webhook": {"tokenSecret": "s3cr3t-token"}}, "/webhook/tokenSecret"),
        ({"kafka": {"sasl": {"passwordSecret": "hunter2"}}}, "/kafka/sasl/passwordSecret"),
        ({"kafka": {"securityProtocol": "SASL_SSL"}}, "/kafka"),
        ({"kafka": {"securityProtocol": "TLS"}}, "/kafka/securityProtocol"),
        ({"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, "/kafka/sasl/mechanism"),
        ({"webhook": {"minSeverity": "urgent"}}, "/webhook/minSeverity"),
        ({"service": {"port": 70000}}, "/service/port"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"config": {"service": {"http_port": 1}}}, "/config"),
        ({"persistence": {"enable": False}}, "additional properties 'enable'"),
        ({"networkPolicy": {"kafka": {"to": [{}]}}}, "/networkPolicy/kafka/to/0"),
        ({"networkPolicy": {"kafka": {"to": [{"podSelector": {}}]}}}, "/networkPolicy/kafka/to/0"),
        ({"networkPolicy": {"kafka": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}}}, "cidr"),
    ],
)
def test_schema_rejects_invalid_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(message)):
        render(values)


def test_network_policy_fails_loudly_without_siem_peers() -> None:
    with pytest.raises(helm_python.HelmRenderError, match=r"networkPolicy\.siem\.to is empty"):
        render({"webhook": {"url": "https://siem.example/in"}})
    # With the policy off, nothing is needed.
    render({"webhook": {"url": "https://siem.example/in"}, "networkPolicy": {"enabled": False}})


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_no_secret_objects_or_material(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    manifests = rendered[combination]
    assert find(manifests, "Secret") == []
    text = json.dumps(manifests)
    for word in ('sasl_plain_password"', 'ssl_password"', "token_env", "BEGIN "):
        assert word not in text
    spec = pod_spec(manifests)
    for volume in spec["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o440
            mounted = mount(spec, volume["name"])
            assert mounted["readOnly"] is True and mounted["mountPath"].startswith(SECRETS)


def test_webhook_secrets_are_mounted_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["webhook-secrets"]
    spec = pod_spec(manifests)
    webhook = pipeline_of(manifests)["service"]["webhook"]
    assert webhook["url"] == "https://siem.example/api/ciwatch"
    assert (webhook["format"], webhook["min_severity"]) == ("splunk_hec", "medium")
    assert webhook["token_file"] == file_of(spec, "siem-token", "token")
    # Newest first: the order docs/webhook.md's rotation relies on.
    assert webhook["signing_key_files"] == [
        file_of(spec, "siem-hmac", "hmac-new"),
        file_of(spec, "siem-hmac", "hmac-old"),
    ]
    assert webhook["ca_file"] == file_of(spec, "siem-ca", "ca.crt")
    assert "client_cert_file" not in webhook


def test_kafka_tls_and_sasl_are_mounted_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["kafka-tls-sasl"]
    spec = pod_spec(manifests)
    kafka = pipeline_of(manifests)["service"]["kafka"]
    assert kafka["security_protocol"] == "SASL_SSL"
    assert (kafka["sasl_mechanism"], kafka["sasl_plain_username"]) == ("SCRAM-SHA-512", "ciwatch")
    assert kafka["sasl_plain_password_file"] == file_of(spec, "kafka-sasl", "password")
    assert kafka["ssl_cafile"] == file_of(spec, "kafka-tls", "ca.crt")
    assert kafka["ssl_certfile"] == file_of(spec, "kafka-tls", "tls.crt")
    assert kafka["ssl_keyfile"] == file_of(spec, "kafka-tls", "tls.key")
    assert kafka["ssl_check_hostname"] is True


# --- monitoring ---------------------------------------------------------------------------


def test_monitoring_objects_off_by_default(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["defaults"]
    kinds = {m["kind"] for m in manifests}
    assert not kinds & CRD_KINDS
    assert all("pipeline.yaml" in m["data"] for m in find(manifests, "ConfigMap"))


def test_service_monitor_scrapes_the_metrics_service(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    manifests = rendered["monitoring-on"]
    (monitor,) = find(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selected = [
        s
        for s in find(manifests, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["spec"]["ports"][0]["name"] for s in selected] == ["metrics"]
    assert len(selected) == 1 and selected[0]["spec"]["type"] == "ClusterIP"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        "metrics",
        "/metrics",
        "30s",
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["security"]}


def test_prometheus_rule_ships_the_alerts_file(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    (rule,) = find(rendered["monitoring-on"], "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    groups = rule["spec"]["groups"]
    shipped = yaml.safe_load((REPO_ROOT / "prometheus" / "alerts.yaml").read_text(encoding="utf-8"))
    assert groups[:-1] == shipped["groups"]
    assert groups[-1]["name"] == "ciwatch-additional"
    assert groups[-1]["rules"] == MONITORING["prometheusRule"]["additionalRules"]
    # Prometheus' own templates reach Prometheus untouched.
    assert "{{ $labels.pod }}" in groups[-1]["rules"][0]["annotations"]["summary"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is needed"
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_ship_byte_for_byte(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["monitoring-on"]
    dashboards = [m for m in find(manifests, "ConfigMap") if "pipeline.yaml" not in m["data"]]
    files = sorted((REPO_ROOT / "grafana" / "dashboards").glob("*.json"))
    assert len(files) >= 2 and len(dashboards) == len(files)
    shipped = {}
    for configmap in dashboards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "Security"
        ((name, text),) = configmap["data"].items()
        shipped[name] = text
    assert shipped == {f.name: f.read_text(encoding="utf-8") for f in files}
    for text in shipped.values():
        json.loads(text)


def test_dashboard_label_is_configurable() -> None:
    manifests = render({"dashboards": {"enabled": True, "label": "my_dash", "labelValue": "yes"}})
    dashboards = [m for m in find(manifests, "ConfigMap") if "pipeline.yaml" not in m["data"]]
    assert dashboards and all(m["metadata"]["labels"]["my_dash"] == "yes" for m in dashboards)
    assert all("annotations" not in m["metadata"] for m in dashboards)
