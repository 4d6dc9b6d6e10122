"""The value combinations the chart tests render, and what they read back from the output.

Each combination switches on one feature (webhook secrets, Kafka TLS and SASL,
monitoring, rule packs, ...) or all of them; the tests render every one.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.ops import REPO_ROOT
from tests.ops.chart import find

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


def merge(*parts: dict[str, Any]) -> dict[str, Any]:
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
    "everything": merge(
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


def configmap(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    (configmap,) = [m for m in find(manifests, "ConfigMap") if "pipeline.yaml" in m["data"]]
    return configmap


def pipeline_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(configmap(manifests)["data"]["pipeline.yaml"])
    return data


def mount(spec: dict[str, Any], volume: str) -> dict[str, Any]:
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume]
    found: dict[str, Any] = mount
    return found


def file_of(spec: dict[str, Any], secret: str, key: str) -> str:
    """The path where ``key`` of Secret ``secret`` appears in the container."""
    (volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == secret]
    (item,) = [i for i in volume["secret"]["items"] if i["key"] == key]
    return f"{mount(spec, volume['name'])['mountPath']}/{item['path']}"
