"""A `ciwatch run` process for integration tests, and what they read back from it.

Shared by the daemon, Prometheus and container tests: the config they start it
with, records produced to the broker, its alerts file and its ``/metrics``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from detector.sources.broker import EmbeddedBroker

WAIT_S = 90.0
"""How long a test waits for a condition on a running daemon."""


def write_config(
    path: Path,
    broker: EmbeddedBroker,
    topic: str,
    port: int,
    webhook: str,
    *,
    client: str = "kafka-python",
) -> Path:
    """``client``: the Kafka client library (``service.kafka.client``)."""
    state = path.parent / "state"
    path.write_text(
        "service:\n"
        f"  kafka: {{client: {client}, bootstrap_servers: ['{broker.bootstrap}'],"
        f" topics: ['{topic}'],"
        f" group_id: '{topic}-group', session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}\n"
        f"  http_host: 127.0.0.1\n  http_port: {port}\n  state_dir: '{state}'\n"
        f"  alerts_file: '{path.parent / 'alerts.jsonl'}'\n  snapshot_every: 1s\n"
        f"  webhook: {{url: '{webhook}', min_severity: info, max_backoff: 1s}}\n"
        # The bundled models in the daemon and the replay it is compared with, not learnt ones.
        "models: {dir: bundled}\n"
    )
    return path


def expected_ids(config: Path, world: list[bytes], tmp_path: Path) -> set[str]:
    records = tmp_path / "records.jsonl"
    records.write_bytes(b"\n".join(world) + b"\n")
    out = tmp_path / "replayed.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "detector", "replay", str(records), "--config", str(config),
         "--alerts-out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return delivered_ids(out)


def read_alerts(path: Path) -> list[dict[str, object]]:
    """The alerts written so far: complete lines only, as a running daemon may be mid-line."""
    if not path.exists():
        return []
    *complete, _unfinished = path.read_bytes().split(b"\n")
    return [orjson.loads(line) for line in complete if line.strip()]


def produce(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    for value in values:
        producer.send(topic, value=value)
    producer.flush()
    producer.close()


class Daemon:
    """A `ciwatch run` process and its stderr."""

    def __init__(self, config: Path) -> None:
        self.log = config.parent / "daemon.log"
        self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "detector", "run", "--config", str(config)],
            stdout=self._log_handle,
            stderr=self._log_handle,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self._log_handle.close()
        return code


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def delivered_ids(alerts_path: Path) -> set[str]:
    return {str(a["id"]) for a in read_alerts(alerts_path) if a["revision"] == 0}


MALFORMED = [b"not json", b"[1, 2]", b'{"no": "known format"}']
"""Records every daemon test produces too: each becomes a dead letter."""


def metrics(port: int) -> dict[str, list[tuple[str, float]]]:
    """Family name → (sample name, value) pairs, parsed with prometheus-client's parser."""
    _, text = scrape(port)
    return {
        family.name: [(sample.name, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def loop_cpu(port: int) -> dict[str, float]:
    """``ciwatch_loop_cpu_seconds_total`` by stage."""
    _, text = scrape(port)
    return {
        sample.labels["stage"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "ciwatch_loop_cpu_seconds"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def total(found: dict[str, list[tuple[str, float]]], family: str) -> float:
    """The sum of a family's counter/gauge samples, or of its histogram ``_count`` samples."""
    samples = found.get(family, [])
    counts = [value for name, value in samples if name.endswith("_count")]
    if counts:
        return sum(counts)
    return sum(value for name, value in samples if not name.endswith("_created"))


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)
    return response.status_code, response.text


def ready(port: int) -> bool:
    """The daemon answers ``/readyz`` with 200: started, its signal handlers in place."""
    try:
        return scrape(port, "/readyz")[0] == 200
    except httpx.TransportError:
        return False
