"""`ciwatch run --workers 2` on the real broker: one pod, two consumers of one group.

Both workers join the group and share a 4-partition topic; the parent's
``/metrics`` shows each worker's samples with a ``worker`` label, and their
``ciwatch_records_consumed_total`` add up to the records produced. A worker
killed with SIGKILL is started again and the group goes on consuming to the
end of every partition; SIGTERM to the parent stops both well inside
Kubernetes' 30 s grace and exits 0. Workers failing at start-up stop the pod
instead of looping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from detector.config import load_config
from detector.sources.broker import EmbeddedBroker, free_ports
from detector.workers import MAX_EARLY_EXITS, Supervisor
from tests.integration import workers_entry
from tests.integration.running import ready, scrape, wait_for, write_config
from tests.receiver import Receiver

pytestmark = pytest.mark.integration

PARTITIONS = 4
WORKERS = 2
GRACE_S = 30.0


class Pod:
    """`ciwatch run --workers N` as a process: the parent the kubelet would signal."""

    def __init__(self, config: Path, workers: int) -> None:
        self.log = config.parent / "pod.log"
        self._log_handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "detector", "run", "--config", str(config),
             "--workers", str(workers), "--log-format", "json"],
            stdout=self._log_handle, stderr=self._log_handle,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def worker_pid(self, index: int) -> int:
        """The pid of worker ``index``'s newest start, from the parent's log line."""
        prefix = f"worker {index} started: pid "
        pids = [
            int(str(line["message"]).removeprefix(prefix).split(",")[0])
            for line in self._lines()
            if str(line.get("message", "")).startswith(prefix)
        ]
        assert pids, f"worker {index} never started"
        return pids[-1]

    def _lines(self) -> list[dict[str, object]]:
        found = []
        for raw in self.log.read_bytes().splitlines():
            if raw.startswith(b"{"):
                found.append(orjson.loads(raw))
        return found

    def stop(self, timeout: float = GRACE_S) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log_handle.close()
        return code, time.monotonic() - started


def by_worker(port: int, family: str) -> dict[str, float]:
    """worker label → the sum of ``family``'s samples (``_total`` only) in the parent's /metrics."""
    try:
        status, text = scrape(port)
    except httpx.TransportError:
        return {}
    assert status == 200
    sums: dict[str, float] = defaultdict(float)
    for parsed in text_string_to_metric_families(text):
        if parsed.name != family:
            continue
        for sample in parsed.samples:
            if not sample.name.endswith("_created"):
                sums[sample.labels.get("worker", "")] += sample.value
    return dict(sums)


def produce_round_robin(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> dict[int, int]:
    """Record ``i`` to partition ``i % 4``; partition → the offset after its last record.

    The broker's offsets, not record counts: they need not be contiguous.
    """
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    sent = [
        producer.send(topic, value=value, partition=number % PARTITIONS)
        for number, value in enumerate(values)
    ]
    producer.flush()
    after: dict[int, int] = {}
    for future in sent:
        written = future.get(timeout=30)
        after[written.partition] = max(after.get(written.partition, 0), written.offset + 1)
    producer.close()
    return after


def all_committed(broker: EmbeddedBroker, topic: str, group: str, after: dict[int, int]) -> bool:
    """Whether the group committed every partition of ``topic`` past the offsets ``after``."""
    reader = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                           enable_auto_commit=False)  # fmt: skip
    try:
        committed = {p: reader.committed(TopicPartition(topic, p)) or 0 for p in after}
        return all(committed[p] >= offset for p, offset in after.items())
    finally:
        reader.close()


def test_two_workers_share_the_partitions_survive_a_kill_and_stop_cleanly(
    broker: EmbeddedBroker, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    topic = "events-two-workers"
    broker.create_topics([topic], partitions=PARTITIONS)
    port = free_ports(WORKERS + 1)
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    pod = Pod(config, WORKERS)
    try:
        run_two_workers(broker, topic, world, port, pod)
    finally:
        code, took = pod.stop()
    print(f"parent stopped with status {code} in {took:.1f}s")
    assert code == 0 and took < GRACE_S
    for index in range(WORKERS):
        assert (tmp_path / "state" / f"worker-{index}" / "checkpoint.json").exists()
        assert (tmp_path / f"alerts.worker-{index}.jsonl").exists()


def run_two_workers(
    broker: EmbeddedBroker, topic: str, world: list[bytes], port: int, pod: Pod
) -> None:
    """Both join, share the first half, one is killed and restarted, the second half is read."""
    # Both in the group before any record: no rebalance re-reads a batch, so counts are exact.
    wait_for(lambda: ready(port), "both workers to join the group and be ready")
    assert by_worker(port, "ciwatch_workers") == {"": WORKERS}
    first, second = world[: len(world) // 2], world[len(world) // 2 :]
    produce_round_robin(broker, topic, first)
    wait_for(
        lambda: sum(by_worker(port, "ciwatch_records_consumed").values()) == len(first),
        "the first half consumed",
    )
    consumed = by_worker(port, "ciwatch_records_consumed")
    print(f"records consumed by worker: {consumed}")
    assert set(consumed) == {"0", "1"} and all(count > 0 for count in consumed.values())
    assert scrape(port, "/healthz")[0] == 200

    os.kill(pod.worker_pid(1), signal.SIGKILL)
    wait_for(lambda: by_worker(port, "ciwatch_worker_restarts") == {"": 1.0}, "a restart")
    wait_for(lambda: ready(port), "the restarted worker to rejoin")
    after = produce_round_robin(broker, topic, second)
    assert len(after) == PARTITIONS
    group = f"{topic}-group"
    wait_for(lambda: all_committed(broker, topic, group, after), "every record committed")
    assert by_worker(port, "ciwatch_workers") == {"": WORKERS}
    assert set(by_worker(port, "ciwatch_records_consumed")) == {"0", "1"}


def test_a_worker_failing_at_start_up_stops_the_pod(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    config = load_config(
        write_config(tmp_path / "c.yaml", broker, "unused", free_ports(3), receiver.url)
    )
    started = time.monotonic()
    status = Supervisor(config, 2, workers_entry.crash_at_start, log_settings=(20, "text")).run()
    print(f"gave up after {MAX_EARLY_EXITS} early exits in {time.monotonic() - started:.1f}s")
    assert status == 1


def test_a_config_error_in_a_worker_stops_the_pod_with_its_status(
    broker: EmbeddedBroker, tmp_path: Path, receiver: Receiver
) -> None:
    config = load_config(
        write_config(tmp_path / "c.yaml", broker, "unused", free_ports(3), receiver.url)
    )
    supervisor = Supervisor(config, 2, workers_entry.first_fails_with_2, log_settings=(20, "text"))
    assert supervisor.run() == 2
    assert supervisor.registry.get_sample_value("ciwatch_worker_restarts_total") == 0
