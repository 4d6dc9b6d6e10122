"""`ciwatch run` against a real broker with the SIEM down and its spool's disk full.

The spool's segment is a symlink to ``/dev/full`` (the kernel's ``ENOSPC``, no root
needed). The daemon must pause (not crash, not commit, not ready, the gauge up, one log
line), stay in its consumer group, and deliver every alert once space returns.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from detector.sources.broker import EmbeddedBroker, free_port
from tests.full_disk import free
from tests.integration.running import (
    Daemon,
    expected_ids,
    metrics,
    produce,
    scrape,
    total,
    wait_for,
    write_config,
)
from tests.integration.test_kafka_source import consume_until, kafka_source, keys
from tests.receiver import Receiver
from tests.unit.sinks.test_webhook_disk import fill_disk

pytestmark = pytest.mark.integration


def paused(port: int) -> float | None:
    """``ciwatch_paused`` summed; None while the daemon's endpoint is not up yet."""
    try:
        return total(metrics(port), "ciwatch_paused")
    except httpx.HTTPError:
        return None


def test_a_full_disk_pauses_the_daemon_until_space_returns(
    broker: EmbeddedBroker, topic: str, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    expected = expected_ids(config, world, tmp_path)
    segment = fill_disk(tmp_path / "state" / "spool-webhook")
    receiver.answers = [(503, {})] * 1_000_000  # the SIEM is down
    daemon = Daemon(config)
    produce(broker, topic, world)
    wait_for(lambda: paused(port) == 1, "the daemon to pause")
    assert scrape(port, "/readyz")[0] == 503
    found = metrics(port)
    consumed = total(found, "ciwatch_records_consumed")
    errors = total(found, "ciwatch_spool_write_errors")
    # Retries go on (about one a second) while nothing new is committed or counted.
    wait_for(lambda: total(metrics(port), "ciwatch_spool_write_errors") >= errors + 3, "retries")
    found = metrics(port)
    assert total(found, "ciwatch_records_consumed") == consumed < len(world)
    assert total(found, "ciwatch_paused") == 1
    assert daemon.process.poll() is None  # no crash, no restart
    assert scrape(port, "/healthz")[0] == 200  # alive, only not ready

    free(segment)
    receiver.answers.clear()  # and the SIEM is back
    wait_for(lambda: receiver.first_sends() >= expected, "every alert after the pause")
    wait_for(lambda: paused(port) == 0, "the daemon to resume")
    wait_for(lambda: scrape(port, "/readyz")[0] == 200, "ready again")
    wait_for(lambda: total(metrics(port), "ciwatch_records_consumed") == len(world), "all consumed")
    assert daemon.stop() == 0
    assert receiver.first_sends() == expected
    log = daemon.log.read_text()
    assert log.count("paused: sink webhook cannot write to disk") == 1, log
    assert log.count("resumed:") == 1, log
    assert "Traceback" not in log


def test_a_paused_poll_reads_nothing_and_unread_records_come_again(
    broker: EmbeddedBroker, topic: str
) -> None:
    produce(broker, topic, [f'{{"n": {n}}}'.encode() for n in range(5)])
    source = kafka_source(broker, [topic], f"{topic}-unread", "kafka-python")
    try:
        first = consume_until(source, lambda seen: len(seen) >= 2, commit=False)
        source.unread(first)  # as the pause does with records a rebalance handed over
        source.pause_only(source.assigned())
        assert source.poll(10, 1.0) == []  # paused: polled (group kept), nothing read
        source.pause_only(set())
        again = consume_until(source, lambda seen: len(seen) >= 5, commit=False)
        assert keys(again) == [(topic, 0, offset) for offset in range(5)]
    finally:
        source.close()
