"""`ciwatch run` as a process against a real broker: same alerts as a replay, clean stops, kill -9.

The reference is `ciwatch replay` over the same records with the same config:
the daemon must deliver the same alert ids (first sends) to the JSONL file and
to a real webhook receiver, however often it is killed and restarted in
between, and none that the replay does not raise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from detector.generator import MERGED, generate, write
from detector.sources.broker import EmbeddedBroker, free_port
from tests.receiver import Receiver, running_receiver

pytestmark = pytest.mark.integration

WAIT_S = 90.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    directory = tmp_path_factory.mktemp("world")
    write(generate(seed=7, days=10, people=20), directory)
    return (directory / MERGED).read_bytes().splitlines()


def write_config(path: Path, broker: EmbeddedBroker, topic: str, port: int, webhook: str) -> Path:
    state = path.parent / "state"
    path.write_text(
        "service:\n"
        f"  kafka: {{bootstrap_servers: ['{broker.bootstrap}'], topics: ['{topic}'],"
        f" group_id: '{topic}-group', session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}\n"
        f"  http_host: 127.0.0.1\n  http_port: {port}\n  state_dir: '{state}'\n"
        f"  alerts_file: '{path.parent / 'alerts.jsonl'}'\n  snapshot_every: 1s\n"
        f"  webhook: {{url: '{webhook}', min_severity: info, max_backoff: 1s}}\n"
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
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def topic(broker: EmbeddedBroker, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"events-{request.node.name.replace('[', '-').replace(']', '')}"
    broker.create_topics([name], partitions=1)
    yield name


MALFORMED = [b"not json", b"[1, 2]", b'{"no": "known format"}']
MOVING = [
    "ciwatch_events_normalized",
    "ciwatch_alerts",
    "ciwatch_anomaly_score",
    "ciwatch_sink_deliveries",
    "ciwatch_batch_duration_seconds",
    "ciwatch_event_to_alert_seconds",
    "ciwatch_model_info",
    "ciwatch_model_trained_timestamp_seconds",
    "ciwatch_rules_loaded",
    "ciwatch_state_snapshots",
    "ciwatch_ready",
]
"""Metrics a run over the world must have moved (counts, sums or gauges above zero)."""


def metrics(port: int) -> dict[str, list[tuple[str, float]]]:
    """Family name → (sample name, value) pairs, parsed with prometheus-client's parser."""
    _, text = scrape(port)
    return {
        family.name: [(sample.name, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def total(found: dict[str, list[tuple[str, float]]], family: str) -> float:
    """The sum of a family's counter/gauge samples, or of its histogram ``_count`` samples."""
    samples = found.get(family, [])
    counts = [value for name, value in samples if name.endswith("_count")]
    if counts:
        return sum(counts)
    return sum(value for name, value in samples if not name.endswith("_created"))


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    import httpx

    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5.0)
    return response.status_code, response.text


def test_daemon_delivers_what_replay_raises_and_stops_cleanly(
    broker: EmbeddedBroker, topic: str, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    expected = expected_ids(config, world, tmp_path)
    assert len(expected) >= 16
    daemon = Daemon(config)
    produce(broker, topic, [*MALFORMED, *world])
    alerts = tmp_path / "alerts.jsonl"
    wait_for(lambda: delivered_ids(alerts) >= expected, "every replayed alert")
    status, _ = scrape(port, "/readyz")
    assert status == 200
    assert scrape(port, "/healthz")[0] == 200
    wait_for(lambda: total(metrics(port), "ciwatch_state_keys") > 0, "a checkpoint")
    found = metrics(port)
    assert total(found, "ciwatch_records_consumed") == len(world) + len(MALFORMED)
    assert total(found, "ciwatch_dead_letters") == len(MALFORMED)
    moved = [name for name in MOVING if total(found, name) <= 0]
    assert moved == [], "metrics that did not move"
    present = {
        "ciwatch_consumer_lag",
        "ciwatch_spool_depth",
        "ciwatch_late_events",
        "ciwatch_spool_capacity_bytes",
    }
    assert present <= set(found)
    assert daemon.stop() == 0
    assert delivered_ids(alerts) == expected
    assert receiver.first_sends() == expected
    assert "stopped (SIGTERM)" in daemon.log.read_text()


def test_kill_9_and_restart_loses_no_alert_and_invents_none(
    broker: EmbeddedBroker, topic: str, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, free_port(), receiver.url)
    expected = expected_ids(config, world, tmp_path)
    alerts = tmp_path / "alerts.jsonl"
    chunks = [world[i : i + len(world) // 4] for i in range(0, len(world), len(world) // 4)]
    for number, chunk in enumerate(chunks):
        daemon = Daemon(config)
        produce(broker, topic, chunk)
        # Killed while it works through the chunk: once some of it has become alerts.
        before = len(read_alerts(alerts))
        wait_for(
            lambda before=before: len(read_alerts(alerts)) > before,  # type: ignore[misc]
            f"alerts of chunk {number}",
        )
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    daemon = Daemon(config)
    wait_for(lambda: receiver.first_sends() >= expected, "every replayed alert after restarts")
    assert daemon.stop() == 0
    assert delivered_ids(alerts) == expected
    assert receiver.first_sends() == expected
