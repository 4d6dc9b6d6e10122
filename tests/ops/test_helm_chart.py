"""The Helm chart helm/ciwatch, rendered for real with Helm's engine (helm_python).

Every combination of values is rendered, validated against the Kubernetes 1.33
OpenAPI schemas (strict: unknown fields fail), and its pod checked against the
restricted Pod Security Standard. The CRD objects (ServiceMonitor,
PrometheusRule) are checked by structure and with `promtool check rules`. The
pipeline file the chart writes is loaded with ciwatch's own config loader.
"""

from __future__ import annotations

import copy
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

from detector.config import load_config
from detector.rules.loader import load_rules
from tests.ops.chart import CHART_DIR, REPO_ROOT, find, pod_spec, render, restricted_violations

KUBE_VERSION = "1.33.0"
SECRETS = "/run/secrets/ciwatch"
SIEM_PEER = {"ipBlock": {"cidr": "203.0.113.0/24"}}
RULE_PACK = (REPO_ROOT / "pipelines" / "rules" / "logging.yaml").read_text(encoding="utf-8")

WEBHOOK: dict[str, Any] = {
    "webhook": {
        "url": "https://siem.example/api/ciwatch",
        "format": "splunk_hec",
        "minSeverity": "medium",
        "tokenSecret": {"name": "siem-token", "key": "token"},
        "signingKeysSecret": {"name": "siem-hmac", "keys": ["hmac-new", "hmac-old"]},
        "tls": {"secret": {"name": "siem-ca", "caKey": "ca.crt", "certKey": "", "keyKey": ""}},
        # Large integers must reach the pipeline file as integers, not 2.68e+08.
        "extraSettings": {"spool_max_bytes": 268435456, "splunk_ack": True},
    },
    "networkPolicy": {"siem": {"to": [SIEM_PEER]}},
}
KAFKA_TLS_SASL: dict[str, Any] = {
    "kafka": {
        "bootstrapServers": ["kafka-0.kafka:9093", "kafka-1.kafka:9093"],
        "topics": ["github-audit", "okta-system-log"],
        "securityProtocol": "SASL_SSL",
        "tls": {
            "secret": {
                "name": "kafka-tls",
                "caKey": "ca.crt",
                "certKey": "tls.crt",
                "keyKey": "tls.key",
            }
        },
        "sasl": {
            "mechanism": "SCRAM-SHA-512",
            "username": "ciwatch",
            "passwordSecret": {"name": "kafka-sasl", "key": "password"},
        },
    }
}
MONITORING: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {
        "enabled": True,
        "labels": {"release": "kube-prometheus-stack"},
        "additionalRules": [
            {
                "alert": "CiwatchTestExtra",
                "expr": "ciwatch_ready == 0",
                "for": "10m",
                "labels": {"severity": "low"},
                "annotations": {"summary": "{{ $labels.pod }} not ready"},
            }
        ],
    },
    "dashboards": {"enabled": True, "folder": "Security"},
}
RULE_PACKS: dict[str, Any] = {
    "config": {"rules": {"bundled": False, "disabled": ["cloudtrail-logging-stopped"]}},
    "rulePacks": {"logging.yaml": RULE_PACK},
}


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        _deep_update(out, copy.deepcopy(part))
    return out


def _deep_update(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "webhook-secrets": WEBHOOK,
    "kafka-tls-sasl": KAFKA_TLS_SASL,
    "persistence-off": {"persistence": {"enabled": False}},
    "replicas-3": {"replicaCount": 3},
    "monitoring-on": MONITORING,
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "rule-packs": RULE_PACKS,
    "everything": _merge(
        WEBHOOK,
        KAFKA_TLS_SASL,
        MONITORING,
        RULE_PACKS,
        {"replicaCount": 3, "alertsTopic": {"topic": "ciwatch-alerts"}},
        {"extraEnv": [{"name": "CIWATCH_LOG_LEVEL", "value": "info"}]},
        {
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "ciwatch"}},
                }
            ]
        },
    ),
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(values) for name, values in COMBINATIONS.items()}


def _configmap(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [m for m in find(manifests, "ConfigMap") if "pipeline.yaml" in m["data"]]
    return configmap


def _pipeline(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(_configmap(manifests)["data"]["pipeline.yaml"])
    return data


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
            mount = _mount(spec, volume["name"])
            assert mount["readOnly"] is True and mount["mountPath"].startswith(SECRETS)


def _mount(spec: dict[str, Any], volume: str) -> dict[str, Any]:
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume]
    found: dict[str, Any] = mount
    return found


def _file_of(spec: dict[str, Any], secret: str, key: str) -> str:
    """The path where ``key`` of Secret ``secret`` appears in the container."""
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
    (item,) = [i for i in volume["secret"]["items"] if i["key"] == key]
    return f"{_mount(spec, volume['name'])['mountPath']}/{item['path']}"


def test_webhook_secrets_are_mounted_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["webhook-secrets"]
    spec = pod_spec(manifests)
    webhook = _pipeline(manifests)["service"]["webhook"]
    assert webhook["url"] == "https://siem.example/api/ciwatch"
    assert (webhook["format"], webhook["min_severity"]) == ("splunk_hec", "medium")
    assert webhook["token_file"] == _file_of(spec, "siem-token", "token")
    # Newest first: the order docs/webhook.md's rotation relies on.
    assert webhook["signing_key_files"] == [
        _file_of(spec, "siem-hmac", "hmac-new"),
        _file_of(spec, "siem-hmac", "hmac-old"),
    ]
    assert webhook["ca_file"] == _file_of(spec, "siem-ca", "ca.crt")
    assert "client_cert_file" not in webhook


def test_kafka_tls_and_sasl_are_mounted_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["kafka-tls-sasl"]
    spec = pod_spec(manifests)
    kafka = _pipeline(manifests)["service"]["kafka"]
    assert kafka["security_protocol"] == "SASL_SSL"
    assert (kafka["sasl_mechanism"], kafka["sasl_plain_username"]) == ("SCRAM-SHA-512", "ciwatch")
    assert kafka["sasl_plain_password_file"] == _file_of(spec, "kafka-sasl", "password")
    assert kafka["ssl_cafile"] == _file_of(spec, "kafka-tls", "ca.crt")
    assert kafka["ssl_certfile"] == _file_of(spec, "kafka-tls", "tls.crt")
    assert kafka["ssl_keyfile"] == _file_of(spec, "kafka-tls", "tls.key")
    assert kafka["ssl_check_hostname"] is True


# --- the pipeline file --------------------------------------------------------------------


def _mirror(manifests: list[dict[str, Any]], root: Path) -> Path:
    """Write the config volume's files under root/etc/ciwatch, as the pod sees them."""
    configmap, spec = _configmap(manifests), pod_spec(manifests)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "config"]
    base = root / str(_mount(spec, "config")["mountPath"]).lstrip("/")
    for item in volume["configMap"]["items"]:
        target = base / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmap["data"][item["key"]], encoding="utf-8")
    return base / "pipeline.yaml"


@pytest.mark.parametrize("combination", ["defaults", "webhook-secrets", "rule-packs", "replicas-3"])
def test_pipeline_loads_with_ciwatch_config_loader(
    rendered: dict[str, list[dict[str, Any]]], combination: str, tmp_path: Path
) -> None:
    manifests = rendered[combination]
    config = load_config(_mirror(manifests, tmp_path))
    (container,) = pod_spec(manifests)["containers"]
    assert container["args"] == ["run", "--config", "/etc/ciwatch/pipeline.yaml"]
    assert str(config.service.state_dir) == _mount(pod_spec(manifests), "state")["mountPath"]
    assert config.service.http_port == container["ports"][0]["containerPort"] == 9464
    if config.service.webhook is not None:
        # Secret files are paths only; the loader does not need them to exist.
        assert str(config.service.webhook.token_file).startswith(SECRETS)
        assert all(str(p).startswith(SECRETS) for p in config.service.webhook.signing_key_files)
        assert config.service.webhook.spool_max_bytes == 268435456
        assert config.service.webhook.splunk_ack is True


def test_pipeline_with_kafka_tls_loads_once_the_files_exist(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """KafkaSettings checks that its TLS and password files exist, so they are provided."""
    manifests = rendered["kafka-tls-sasl"]
    path = _mirror(manifests, tmp_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    kafka = data["service"]["kafka"]
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_plain_password_file"):
        local = tmp_path / kafka[key].lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("x\n", encoding="utf-8")
        kafka[key] = str(local)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(path)
    assert config.service.kafka.topics == ["github-audit", "okta-system-log"]
    assert config.service.kafka.consumer_config()["sasl_plain_password"] == "x"


def test_rule_packs_are_mounted_and_referenced(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    manifests = rendered["rule-packs"]
    config = load_config(_mirror(manifests, tmp_path))
    pack = tmp_path / "etc" / "ciwatch" / "rules" / "logging.yaml"
    assert config.rules.packs == (pack,)
    assert pack.read_text(encoding="utf-8") == RULE_PACK
    assert config.rules.bundled is False
    assert config.rules.disabled == ("cloudtrail-logging-stopped",)
    assert {rule.id for rule in load_rules(config.rules.packs)} >= {"cloudtrail-logging-stopped"}


def test_config_change_rolls_the_pods() -> None:
    def checksum(values: dict[str, Any]) -> str:
        (statefulset,) = find(render(values), "StatefulSet")
        annotation: str = statefulset["spec"]["template"]["metadata"]["annotations"][
            "checksum/config"
        ]
        return annotation

    assert checksum({}) == checksum({})
    assert checksum({}) != checksum({"config": {"features": {"learning_period": "14d"}}})
    assert checksum({}) != checksum({"rulePacks": {"mine.yaml": "rules: []\n"}})


# --- StatefulSet, persistence, scaling ----------------------------------------------------


def test_statefulset_defaults(rendered: dict[str, list[dict[str, Any]]]) -> None:
    manifests = rendered["defaults"]
    (statefulset,) = find(manifests, "StatefulSet")
    spec = statefulset["spec"]
    assert spec["replicas"] == 1 and spec["podManagementPolicy"] == "Parallel"
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert all(v["name"] != "state" for v in spec["template"]["spec"]["volumes"])
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 30
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/ciwatch/ciwatch:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"] == "1Gi"
    (budget,) = find(manifests, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    (account,) = find(manifests, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def _notes(values: dict[str, Any]) -> str:
    chart = helm_python.Chart.load(CHART_DIR)
    return chart.render(values, name="ciwatch", namespace="security")["ciwatch/templates/NOTES.txt"]


def test_persistence_off_uses_an_empty_dir_and_warns(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    (statefulset,) = find(rendered["persistence-off"], "StatefulSet")
    assert "volumeClaimTemplates" not in statefulset["spec"]
    (state,) = [
        v for v in statefulset["spec"]["template"]["spec"]["volumes"] if v["name"] == "state"
    ]
    assert "emptyDir" in state
    assert "LOST" in _notes({"persistence": {"enabled": False}})
    assert "LOST" not in _notes({})


def test_three_replicas_share_one_consumer_group(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    manifests = rendered["replicas-3"]
    (statefulset,) = find(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert _pipeline(manifests)["service"]["kafka"]["group_id"] == "ciwatch"
    assert "key the topics by actor" in _notes({"replicaCount": 3})


# --- NetworkPolicy ------------------------------------------------------------------------


def _allows_everything(peer: dict[str, Any]) -> bool:
    if not peer:
        return True
    if peer.get("ipBlock", {}).get("cidr", "").endswith("/0"):
        return True
    selectors = [peer[k] for k in ("namespaceSelector", "podSelector") if k in peer]
    return any(not (s.get("matchLabels") or s.get("matchExpressions")) for s in selectors) and (
        "podSelector" not in peer or not peer.get("namespaceSelector")
    )


@pytest.mark.parametrize("combination", ["defaults", "everything"])
def test_network_policy_denies_by_default(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    manifests = rendered[combination]
    (policy,) = find(manifests, "NetworkPolicy")
    spec = policy["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert spec["podSelector"]["matchLabels"] == pod_spec_labels(manifests)
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    for rule in spec["egress"]:
        assert rule.get("to") and rule.get("ports"), rule
        assert not any(_allows_everything(peer) for peer in rule["to"]), rule
    dns = spec["egress"][0]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    kafka_ports = {p["port"] for p in spec["egress"][1]["ports"]}
    assert kafka_ports == {9092, 9093}
    if combination == "everything":
        assert spec["egress"][2] == {"to": [SIEM_PEER], "ports": [{"port": 443, "protocol": "TCP"}]}
    else:
        assert len(spec["egress"]) == 2


def pod_spec_labels(manifests: list[dict[str, Any]]) -> dict[str, str]:
    (statefulset,) = find(manifests, "StatefulSet")
    labels: dict[str, str] = statefulset["spec"]["selector"]["matchLabels"]
    return labels


def test_network_policy_off_renders_none(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert find(rendered["network-policy-off"], "NetworkPolicy") == []


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
