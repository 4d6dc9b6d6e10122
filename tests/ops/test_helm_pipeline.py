"""The chart's StatefulSet, pipeline file, scaling and NetworkPolicy, rendered for real.

The pipeline file the chart writes is loaded with ciwatch's own config loader
and its rule packs with the rule loader; replicas share one consumer group; the
NetworkPolicy denies by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from detector.config import load_config
from detector.rules.loader import load_rules
from tests.ops.chart import CHART_DIR, find, pod_spec, render
from tests.ops.chart_values import (
    RULE_PACK,
    SECRETS,
    SIEM_PEER,
    configmap,
    mount,
    pipeline_of,
)

# --- the pipeline file --------------------------------------------------------------------


def _mirror(manifests: list[dict[str, Any]], root: Path) -> Path:
    """Write the config volume's files under root/etc/ciwatch, as the pod sees them."""
    files, spec = configmap(manifests), pod_spec(manifests)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "config"]
    base = root / str(mount(spec, "config")["mountPath"]).lstrip("/")
    for item in volume["configMap"]["items"]:
        target = base / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files["data"][item["key"]], encoding="utf-8")
    return base / "pipeline.yaml"


@pytest.mark.parametrize("combination", ["defaults", "webhook-secrets", "rule-packs", "replicas-3"])
def test_pipeline_loads_with_ciwatch_config_loader(
    rendered: dict[str, list[dict[str, Any]]], combination: str, tmp_path: Path
) -> None:
    manifests = rendered[combination]
    config = load_config(_mirror(manifests, tmp_path))
    (container,) = pod_spec(manifests)["containers"]
    assert container["args"] == ["run", "--config", "/etc/ciwatch/pipeline.yaml"]
    assert str(config.service.state_dir) == mount(pod_spec(manifests), "state")["mountPath"]
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
    assert container["resources"]["limits"]["memory"] == "2Gi"  # docs/sizing.md
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
    assert pipeline_of(manifests)["service"]["kafka"]["group_id"] == "ciwatch"
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
