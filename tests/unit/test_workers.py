"""`ciwatch run --workers N`: the per-worker overrides and the merging of the workers' metrics."""

from __future__ import annotations

import gc
import logging
import pickle
import ssl
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detector import logs
from detector.collector import YOUNG_THRESHOLD
from detector.config import PipelineConfig
from detector.errors import ConfigError
from detector.metrics import Metrics, MetricsServer
from detector.service_settings import ServiceSettings, WebhookSettings
from detector.sources.broker import free_port
from detector.worker_metrics import WorkerMetrics, WorkerScrapes, merge_workers
from detector.workers import PROBE_EVERY_S, Supervisor, _worker_main, worker_configs


def config_with(**service: object) -> PipelineConfig:
    return PipelineConfig().model_copy(
        update={"service": ServiceSettings().model_copy(update=service)}
    )


def test_each_worker_gets_its_port_client_id_and_state(tmp_path: Path) -> None:
    hook = WebhookSettings(url="https://siem.example/in", dead_letter_file=tmp_path / "dl.jsonl")
    config = config_with(
        http_port=9464, state_dir=tmp_path, alerts_file=tmp_path / "alerts.jsonl", webhook=hook
    )
    first, second = worker_configs(config, 2)
    assert (first.service.http_host, first.service.http_port) == ("127.0.0.1", 9465)
    assert second.service.http_port == 9466
    assert [c.service.kafka.client_id for c in (first, second)] == ["ciwatch-0", "ciwatch-1"]
    assert second.service.kafka.group_id == config.service.kafka.group_id
    assert second.service.state_dir == tmp_path / "worker-1"
    assert second.service.alerts_file == tmp_path / "alerts.worker-1.jsonl"
    assert second.service.webhook is not None
    assert second.service.webhook.dead_letter_file == tmp_path / "dl.worker-1.jsonl"
    # Everything else is the validated config itself, and it survives the trip to a spawn.
    assert second.rules == config.rules and second.features == config.features
    assert pickle.loads(pickle.dumps(second)) == second
    assert config.service.http_port == 9464 and config.service.state_dir == tmp_path


def test_without_a_state_dir_or_files_nothing_is_invented() -> None:
    (only,) = worker_configs(config_with(http_port=9000), 1)
    assert only.service.state_dir is None and only.service.alerts_file is None


@pytest.mark.parametrize(("port", "message"), [(0, "fixed port"), (65_534, "past 65535")])
def test_ports_the_workers_cannot_have_are_a_config_error(port: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        worker_configs(config_with(http_port=port), 2)
    assert str(raised.value).startswith("service.http_port: ")


def worker_text(records: float) -> str:
    metrics = Metrics()
    metrics.records.labels("audit").inc(records)
    metrics.batch_seconds.observe(0.2)
    return metrics.exposition().decode()


def test_merging_labels_every_sample_and_sums_nothing() -> None:
    families = {f.name: f for f in merge_workers({0: worker_text(3), 1: worker_text(5)})}
    records = families["ciwatch_records_consumed"]
    assert records.type == "counter"
    values = {(s.labels["worker"], s.labels["topic"]): s.value for s in records.samples}
    assert values == {("0", "audit"): 3.0, ("1", "audit"): 5.0}
    buckets = families["ciwatch_batch_duration_seconds"].samples
    assert {s.labels["worker"] for s in buckets} == {"0", "1"}
    assert all("worker" in s.labels for f in families.values() for s in f.samples)
    # The workers' own copies of the pod's metrics are the parent's to serve.
    assert "ciwatch_workers" not in families and "ciwatch_worker_restarts" not in families


def test_merged_families_render_as_valid_exposition_once_each() -> None:
    registry = CollectorRegistry()

    class Merged:
        def collect(self) -> list[object]:
            return list(merge_workers({0: worker_text(1), 1: worker_text(2)}))

    registry.register(Merged())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert text.count("# TYPE ciwatch_records_consumed_total counter") == 1
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert len(parsed["ciwatch_records_consumed"].samples) == 2


def test_text_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(ValueError):
        merge_workers({0: "ciwatch_records_consumed_total{topic=audit 1\n"})


def test_pod_metrics_come_from_the_parent() -> None:
    registry = CollectorRegistry()
    running = [2.0]
    pod = WorkerMetrics(registry, running=lambda: running[0])
    pod.restarts.inc()
    running[0] = 1.0
    assert registry.get_sample_value("ciwatch_workers") == 1.0
    assert registry.get_sample_value("ciwatch_worker_restarts_total") == 1.0
    # One process, one worker: the daemon's own registry says so.
    assert Metrics().registry.get_sample_value("ciwatch_workers") == 1.0


def test_scrapes_read_live_workers_and_skip_a_silent_one() -> None:
    live = Metrics()
    live.records.labels("audit").inc(7)
    ready = [False]
    server = MetricsServer(live, host="127.0.0.1", port=0, ready=lambda: ready[0]).start()
    silent_port = free_port()  # nothing listens there
    try:
        scrapes = WorkerScrapes([server.port, silent_port])
        families = {f.name: f for f in scrapes.collect()}
        (sample,) = families["ciwatch_records_consumed"].samples
        assert (sample.labels["worker"], sample.value) == ("0", 7.0)
        assert not scrapes.answers("/healthz")
        alone = WorkerScrapes([server.port])
        assert alone.answers("/healthz") and not alone.answers("/readyz")
        ready[0] = True
        assert alone.answers("/readyz")
    finally:
        server.stop()


def test_a_scrape_naming_series_gets_only_those() -> None:
    metrics = Metrics()
    metrics.records.labels("audit").inc(3)
    metrics.rules_loaded.set(5)
    server = MetricsServer(metrics, host="127.0.0.1", port=0, ready=lambda: True).start()
    url = f"http://127.0.0.1:{server.port}/metrics"
    try:
        named = httpx.get(url, params={"name[]": ["ciwatch_records_consumed_total"]}, timeout=5.0)
        whole = httpx.get(url, timeout=5.0)
    finally:
        server.stop()
    samples = [line for line in named.text.splitlines() if not line.startswith("#")]
    assert samples == ['ciwatch_records_consumed_total{topic="audit"} 3.0']
    assert "ciwatch_rules_loaded 5.0" in whole.text


def test_the_parent_asks_its_workers_only_for_the_named_series() -> None:
    live = Metrics()
    live.records.labels("audit").inc(7)
    server = MetricsServer(live, host="127.0.0.1", port=0, ready=lambda: True).start()
    try:
        scrapes = WorkerScrapes([server.port])
        with scrapes.only(["ciwatch_records_consumed_total"]):
            named = {family.name for family in scrapes.collect()}
        whole = {family.name for family in scrapes.collect()}
    finally:
        server.stop()
    assert named == {"ciwatch_records_consumed"}
    assert {"ciwatch_records_consumed", "ciwatch_rules_loaded"} <= whole


def test_scrapes_build_no_tls_context_per_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx.get per scrape built a client and a TLS context (~20 ms) each time: at a
    # 50 ms scrape interval, 40 % of the parent's core. One client serves them all.
    live = Metrics()
    server = MetricsServer(live, host="127.0.0.1", port=0, ready=lambda: True).start()
    contexts: list[ssl.SSLContext] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        contexts.append(create(*args, **kwargs))
        return contexts[-1]

    try:
        scrapes = WorkerScrapes([server.port])
        monkeypatch.setattr(ssl, "create_default_context", counted)
        for _ in range(3):
            assert {family.name for family in scrapes.collect()} >= {"ciwatch_records_consumed"}
            assert scrapes.answers("/readyz")
        scrapes.close()
    finally:
        server.stop()
    assert contexts == []


def test_the_supervisor_sleeps_between_probes_while_every_worker_runs() -> None:
    # It once waited 0 s whenever no worker was due for a restart: a core spent polling.
    config = config_with(http_port=free_port())
    supervisor = Supervisor(config, 2, lambda config: 0, log_settings=(logging.INFO, "json"))
    running = cast(BaseProcess, object())
    for worker in supervisor._workers:
        worker.process = running
    assert supervisor._until_restart() == PROBE_EVERY_S
    waiting = supervisor._workers[0]
    waiting.process, waiting.restart_at = None, time.monotonic() + 1.0
    assert 0.0 < supervisor._until_restart() <= 1.0
    waiting.restart_at = time.monotonic() - 1.0  # overdue: at once
    assert supervisor._until_restart() == 0.0


def test_the_parents_metrics_naming_series_give_its_workers_and_its_own() -> None:
    # Restricted to names, the parent's registry once left out the workers' series entirely.
    base = free_port()
    live = Metrics()
    live.records.labels("audit").inc(7)
    worker = MetricsServer(live, host="127.0.0.1", port=base + 1, ready=lambda: True).start()
    try:
        config = config_with(http_port=base)
        supervisor = Supervisor(config, 1, lambda config: 0, log_settings=(logging.INFO, "json"))
        named = supervisor.exposition(["ciwatch_records_consumed_total", "ciwatch_workers"])
    finally:
        worker.stop()
    samples = [line for line in named.decode().splitlines() if not line.startswith("#")]
    assert samples == [
        "ciwatch_workers 0.0",
        'ciwatch_records_consumed_total{topic="audit",worker="0"} 7.0',
    ]


def test_a_worker_sets_the_collector_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spawned worker is a fresh interpreter: it ran with CPython's default thresholds,
    # about 12 % more CPU per record than one process, until it set them itself.
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
    seen: list[tuple[int, ...]] = []

    def entry(config: PipelineConfig) -> int:
        seen.append(gc.get_threshold())
        return 0

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # a fresh interpreter's
    try:
        with pytest.raises(SystemExit) as exited:
            _worker_main(entry, config_with(http_port=free_port()), 0, (logging.INFO, "json"))
    finally:
        gc.set_threshold(*before)
    assert exited.value.code == 0
    assert seen == [(YOUNG_THRESHOLD, 20, 100)]
