"""The dashboards and alert rules against live data: a real Prometheus scraping `ciwatch run`.

The daemon consumes a generated organisation with attacks (and a few malformed
records) from the real broker and posts to a webhook that fails twice before it
recovers. Prometheus scrapes it every second and evaluates the alert rules.
Every metric a panel or rule names must be in the live ``/metrics``. Every
panel query must return a finite value, and every dashboard variable must
offer a value. Every rule must evaluate without error, and the world's
critical detections must fire ``CiwatchCriticalDetection``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.prometheus import PrometheusServer
from tests.integration.running import (
    MALFORMED,
    WAIT_S,
    Daemon,
    metrics,
    produce,
    read_alerts,
    wait_for,
    write_config,
)
from tests.ops.grafana import DASHBOARDS, load, panel_queries, variable_queries
from tests.ops.prom_rules import RULES_FILE, alert_names, load_rules
from tests.ops.promql import metric_names
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

WINDOW = "10m"
LEARNING_ONLY = frozenset({"ciwatch_model_check_passed", "ciwatch_model_history_rows"})
"""Exported only by a daemon that learns its models; this one scores with the bundled
models (as the replay it is compared with). tests/integration/test_daemon_learning.py
reads both from a learning daemon."""
"""Stands for Grafana's ``$__rate_interval`` and ``$__range``: longer than the whole
test, so rates and quantiles cover everything the daemon did."""


def live_sample_names(port: int) -> set[str]:
    return {name for samples in metrics(port).values() for name, _ in samples}


def unexported(port: int, timeout: float) -> set[str]:
    """Metrics a dashboard or rule names that ``/metrics`` has not shown within ``timeout``
    (consumer lag, for one, is read every few seconds)."""
    named = named_metrics() - {"up"} - LEARNING_ONLY  # "up": Prometheus' own, per target
    deadline = time.monotonic() + timeout
    while (missing := named - live_sample_names(port)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return missing


def has_finite_value(series: list[dict[str, Any]]) -> bool:
    values = [point[1] for item in series for point in item.get("values", [item.get("value")])]
    return any(math.isfinite(float(value)) for value in values if value is not None)


def scalar(prometheus: PrometheusServer, expr: str) -> float:
    series = prometheus.query(expr)
    return float(series[0]["value"][1]) if series else math.nan


def queries_without_data(prometheus: PrometheusServer, timeout: float) -> list[str]:
    """Panel queries that have not returned a finite value within ``timeout``."""
    pending = [
        query
        for path in DASHBOARDS
        for query in panel_queries(load(path), rate_interval=WINDOW, range_=WINDOW)
        if not metric_names(query.expr) <= LEARNING_ONLY or not metric_names(query.expr)
    ]
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [q for q in pending if not has_finite_value(prometheus.query(q.expr))]
        if pending:
            time.sleep(1.0)
    return [f"{q.dashboard} / {q.panel} / {q.ref_id}: {q.expr}" for q in pending]


def unresolved_variables(prometheus: PrometheusServer) -> list[str]:
    """Dashboard variables (``label_values(selector, label)``) that would offer no value."""
    return [
        f"{query.dashboard} / {query.panel}"
        for path in DASHBOARDS
        for query in variable_queries(load(path))
        if not any(query.ref_id in item["metric"] for item in prometheus.query(query.expr))
    ]


def named_metrics() -> set[str]:
    dashboards = {
        name
        for path in DASHBOARDS
        for query in panel_queries(load(path), rate_interval=WINDOW, range_=WINDOW)
        for name in metric_names(query.expr)
    }
    rules = {name for rule in load_rules() for name in metric_names(str(rule["expr"]))}
    return dashboards | rules


def test_every_panel_and_alert_rule_reads_live_data(
    broker: EmbeddedBroker, topic: str, world: list[bytes], receiver: Receiver, tmp_path: Path
) -> None:
    receiver.answers = [(503, {}), (503, {})]  # the sink retries: its failure panels have data
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    target = f"127.0.0.1:{port}"
    daemon = Daemon(config)
    try:
        scrape = PrometheusServer(
            tmp_path / "prometheus", [target], [RULES_FILE], labels={"namespace": "security"}
        )
        with scrape as prometheus:
            # In two halves, each seen by Prometheus: a daemon that takes all the
            # records between two scrapes leaves every counter one sample high, and
            # rate() or increase() over one value is no data.
            half = len(world) // 2
            produce(broker, topic, [*MALFORMED, *world[:half]])
            wait_for(
                lambda: (
                    scalar(prometheus, "sum(ciwatch_records_consumed_total)")
                    == half + len(MALFORMED)
                ),
                "Prometheus to see the first half consumed",
            )
            produce(broker, topic, world[half:])
            records = len(world) + len(MALFORMED)
            wait_for(
                lambda: scalar(prometheus, "sum(ciwatch_records_consumed_total)") == records,
                "Prometheus to see every record consumed",
            )
            wait_for(
                lambda: (
                    bool(receiver.first_sends()) and scalar(prometheus, "ciwatch_spool_depth") == 0
                ),
                "the webhook to recover and the spool to drain",
            )

            assert unexported(port, timeout=WAIT_S) == set()
            assert queries_without_data(prometheus, timeout=WAIT_S) == []
            assert unresolved_variables(prometheus) == []

            rules = prometheus.rules()
            assert {rule["name"] for rule in rules if rule["type"] == "alerting"} == set(
                alert_names()
            )
            unhealthy = [(rule["name"], rule.get("lastError")) for rule in rules]
            assert [item for item in unhealthy if item[1]] == []

            alerts = read_alerts(tmp_path / "alerts.jsonl")
            assert any(alert["severity"] == "critical" for alert in alerts)
            wait_for(
                lambda: firing(prometheus, "CiwatchCriticalDetection"),
                "CiwatchCriticalDetection to fire",
            )
    finally:
        assert daemon.stop() == 0


def firing(prometheus: PrometheusServer, name: str) -> bool:
    return any(
        alert["labels"]["alertname"] == name and alert["state"] == "firing"
        for alert in prometheus.api("alerts")["alerts"]
    )
