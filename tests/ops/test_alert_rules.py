"""The Prometheus alert rules: valid, unit-tested by promtool, documented, on real metrics.

prometheus/alerts.yaml is what pages the on-call engineer, so it is held to
more than "it loads": promtool checks it and runs prometheus/alerts.test.yaml;
every alert must be shown firing and then resolving there; each carries a
severity, a summary, a description and a runbook link to its own section of
docs/runbooks.md; and each metric it queries is one docs/metrics.md lists
(the daemon's integration test checks that list against a live scrape).
promtool comes from the Debian ``prometheus`` package (tests/system-deps.sh).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.ops import REPO_ROOT
from tests.ops.prom_rules import (
    RULES_FILE,
    alert_names,
    documented_metrics,
    family_name,
    load_rules,
)
from tests.ops.promql import metric_names

TESTS_FILE = REPO_ROOT / "prometheus" / "alerts.test.yaml"
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
RUNBOOK_URL = "https://github.com/ciwatch/ciwatch/blob/main/docs/runbooks.md#{anchor}"
SEVERITIES = {"warning", "critical"}
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

ALERTS = alert_names()
RULES = {str(rule["alert"]): rule for rule in load_rules() if "alert" in rule}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool from the repository root; fails (never skips) when it is missing."""
    binary = shutil.which("promtool")
    assert binary, "promtool not found: run tests/system-deps.sh (Debian package prometheus)"
    return subprocess.run(
        [binary, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def seconds(duration: str) -> float:
    """A Prometheus duration (``1h5m``) in seconds."""
    parts = _DURATION_PART.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(int(number) * _SECONDS[unit] for number, unit in parts)


def unit_test_outcomes() -> Iterator[dict[str, list[tuple[float, bool]]]]:
    """Per test of alerts.test.yaml: alert name → [(eval time, fired?)], in file order."""
    document: dict[str, Any] = yaml.safe_load(TESTS_FILE.read_text(encoding="utf-8"))
    for test in document["tests"]:
        outcomes: dict[str, list[tuple[float, bool]]] = {}
        for case in test.get("alert_rule_test", []):
            fired = bool(case.get("exp_alerts"))
            outcomes.setdefault(case["alertname"], []).append((seconds(case["eval_time"]), fired))
        yield outcomes


def runbook_sections() -> dict[str, str]:
    """``## Heading`` → the text of its section in docs/runbooks.md."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in RUNBOOKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    result = promtool("check", "rules", str(RULES_FILE.relative_to(REPO_ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(TESTS_FILE.relative_to(REPO_ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_load_the_rules_file() -> None:
    document = yaml.safe_load(TESTS_FILE.read_text(encoding="utf-8"))
    assert document["rule_files"] == [RULES_FILE.name]
    assert document["evaluation_interval"] == "1m"


def test_alert_names_are_unique_and_cover_the_service() -> None:
    assert len(ALERTS) == len(set(ALERTS))
    assert {"CiwatchDown", "CiwatchAbsent", "CiwatchSinkUnauthorized"} <= set(ALERTS)


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_fires_then_resolves_in_a_unit_test(alert: str) -> None:
    """Some test shows the alert firing, and the same series later show it resolved."""
    tests = [outcomes[alert] for outcomes in unit_test_outcomes() if alert in outcomes]
    assert tests, f"{alert} has no unit test in {TESTS_FILE.name}"
    resolved = [
        (fired_at, clear_at)
        for cases in tests
        for fired_at, fired in cases
        if fired
        for clear_at, clear in cases
        if not clear and clear_at > fired_at
    ]
    assert resolved, f"no test of {alert} fires it and then expects it resolved"


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_has_severity_summary_description_and_for(alert: str) -> None:
    rule = RULES[alert]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert "for" in rule, f"{alert} has no explicit for:"
    seconds(rule["for"])


@pytest.mark.parametrize("alert", ALERTS)
def test_runbook_url_points_at_the_alerts_own_runbook_section(alert: str) -> None:
    url = RULES[alert]["annotations"]["runbook_url"]
    assert url == RUNBOOK_URL.format(anchor=alert.lower())
    sections = runbook_sections()
    assert alert in sections, f"docs/runbooks.md has no '## {alert}' heading"
    assert len(sections[alert].split()) > 50, f"the runbook of {alert} is a stub"


def test_every_runbook_section_belongs_to_an_alert() -> None:
    assert set(runbook_sections()) == set(ALERTS)


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_queries_only_documented_metrics(alert: str) -> None:
    known = documented_metrics() | {"up"}
    names = metric_names(RULES[alert]["expr"])
    assert names, f"no metric found in the expression of {alert}"
    unknown = {name for name in names if family_name(name, known) not in known}
    assert not unknown, f"{alert} queries metrics docs/metrics.md does not list: {unknown}"


def test_documented_metrics_reads_the_metrics_table() -> None:
    names = documented_metrics()
    assert {"ciwatch_ready", "ciwatch_sink_deliveries_total", "ciwatch_spool_bytes"} <= names
    assert all(name.startswith("ciwatch_") for name in names)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('up{job=~".*ciwatch.*"} == 0', {"up"}),
        ("absent(up)", {"up"}),
        (
            'sum by (sink, status) (rate(ciwatch_sink_deliveries_total{status="retry"}[5m]))',
            {"ciwatch_sink_deliveries_total"},
        ),
        (
            "histogram_quantile(0.99, sum(rate(ciwatch_batch_duration_seconds_bucket[10m]))"
            " by (le))",
            {"ciwatch_batch_duration_seconds_bucket"},
        ),
        ("a / on (instance) group_left (pod) b offset 5m > bool 1e3", {"a", "b"}),
        (
            "time() - ciwatch_model_trained_timestamp_seconds > 30 * 86400",
            {"ciwatch_model_trained_timestamp_seconds"},
        ),
        ('sum without (le) (y{le="+Inf", name="sum rate"}) unless x', {"x", "y"}),
    ],
)
def test_metric_names_finds_selectors_not_functions_labels_or_strings(
    expr: str, expected: set[str]
) -> None:
    assert metric_names(expr) == expected


def test_family_name_maps_histogram_samples_to_their_metric() -> None:
    known = {"ciwatch_batch_duration_seconds", "ciwatch_ready"}
    assert family_name("ciwatch_batch_duration_seconds_bucket", known) in known
    assert family_name("ciwatch_batch_duration_seconds_count", known) in known
    assert family_name("ciwatch_ready", known) == "ciwatch_ready"
    assert family_name("ciwatch_gone_bucket", known) == "ciwatch_gone_bucket"
