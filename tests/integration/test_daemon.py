"""`ciwatch run` as a process against a real broker: same alerts as a replay, clean stops, kill -9.

The reference is `ciwatch replay` over the same records with the same config:
the daemon must deliver the same alert ids (first sends) to the JSONL file and
to a real webhook receiver, however often it is killed and restarted in
between, and none that the replay does not raise.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import (
    MALFORMED,
    Daemon,
    delivered_ids,
    expected_ids,
    loop_cpu,
    metrics,
    produce,
    read_alerts,
    ready,
    scrape,
    total,
    wait_for,
    write_config,
)
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

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


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_daemon_delivers_what_replay_raises_and_stops_cleanly(
    broker: EmbeddedBroker,
    topic: str,
    world: list[bytes],
    tmp_path: Path,
    receiver: Receiver,
    client: str,
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url, client=client
    )
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
    busy = {stage for stage, seconds in loop_cpu(port).items() if seconds > 0}
    assert busy >= {"poll", "normalize", "merge", "detect", "deliver", "commit"}
    assert "produce" not in busy  # nothing handed on without scale-out
    assert daemon.stop() == 0
    assert delivered_ids(alerts) == expected
    assert receiver.first_sends() == expected
    log = daemon.log.read_text()
    assert "stopped (SIGTERM)" in log
    assert re.search(r"[1-9]\d* kernels compiled", log)  # numba from the first batch


def test_kill_9_and_restart_loses_no_alert_and_invents_none(
    broker: EmbeddedBroker, topic: str, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
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
    # Up before it is stopped: the last killed one may have sent every alert already.
    wait_for(lambda: ready(port), "the last daemon ready")
    wait_for(lambda: receiver.first_sends() >= expected, "every replayed alert after restarts")
    assert daemon.stop() == 0
    assert delivered_ids(alerts) == expected
    assert receiver.first_sends() == expected
