"""Read prometheus/alerts.yaml and docs/metrics.md's metric table, for the ops tests.

The alert rules, the Grafana dashboards and the Helm chart all name ciwatch
metrics; the tests check each name (see :mod:`tests.ops.promql`) against
docs/metrics.md so that nothing queries a metric the daemon no longer exports.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.ops import REPO_ROOT

__all__ = [
    "METRICS_DOC",
    "RULES_FILE",
    "alert_names",
    "documented_metrics",
    "family_name",
    "load_rules",
]

RULES_FILE = REPO_ROOT / "prometheus" / "alerts.yaml"
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"

_TABLE_NAME = re.compile(r"^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|")
_SAMPLE_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def load_rules(path: Path = RULES_FILE) -> list[dict[str, Any]]:
    """Every rule (alerting and recording) of every group in the rules file, in order."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules: list[dict[str, Any]] = []
    for group in document["groups"]:
        rules.extend(group["rules"])
    return rules


def alert_names(path: Path = RULES_FILE) -> list[str]:
    """The ``alert:`` names in the rules file, in order."""
    return [str(rule["alert"]) for rule in load_rules(path) if "alert" in rule]


def documented_metrics(path: Path = METRICS_DOC) -> set[str]:
    """The metric names in the first column of docs/metrics.md's table."""
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _TABLE_NAME.match(line)
        if match:
            names.add(match.group(1))
    return names


def family_name(sample: str, families: set[str]) -> str:
    """The metric family a sample name belongs to: ``x_bucket`` → ``x`` when ``x`` is known."""
    if sample in families:
        return sample
    for suffix in _SAMPLE_SUFFIXES:
        if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
            return sample.removesuffix(suffix)
    return sample
