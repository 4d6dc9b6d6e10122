"""`ciwatch run` against a real broker with its alerts file on a full disk.

The alerts file is a symlink to ``/dev/full`` (the kernel's ``ENOSPC``, no root needed)
while the SIEM is healthy. The daemon must pause (not crash, not commit, not ready, the
write errors counted), keep delivering the batch in hand to the SIEM, and write every
alert to the file, once, when space returns.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from detector.sources.broker import EmbeddedBroker, free_port
from tests.full_disk import free, on_full_device
from tests.integration.running import (
    Daemon,
    expected_ids,
    metrics,
    produce,
    read_alerts,
    scrape,
    total,
    wait_for,
    write_config,
)
from tests.integration.test_daemon_disk import paused
from tests.receiver import Receiver

pytestmark = pytest.mark.integration


def test_a_full_alerts_file_pauses_the_daemon_and_is_written_once_space_returns(
    broker: EmbeddedBroker, topic: str, world: list[bytes], tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    expected = expected_ids(config, world, tmp_path)
    alerts_file = on_full_device(tmp_path / "alerts.jsonl")  # the config's service.alerts_file
    daemon = Daemon(config)
    produce(broker, topic, world)
    wait_for(lambda: paused(port) == 1, "the daemon to pause")
    assert scrape(port, "/readyz")[0] == 503
    found = metrics(port)
    consumed = total(found, "ciwatch_records_consumed")
    errors = total(found, "ciwatch_spool_write_errors")
    wait_for(lambda: total(metrics(port), "ciwatch_spool_write_errors") >= errors + 3, "retries")
    assert total(metrics(port), "ciwatch_records_consumed") == consumed < len(world)
    assert daemon.process.poll() is None  # no crash, no restart
    assert receiver.first_sends()  # the SIEM got the batch in hand: sinks fail independently

    free(alerts_file)  # space returns
    wait_for(lambda: paused(port) == 0, "the daemon to resume")
    wait_for(lambda: total(metrics(port), "ciwatch_records_consumed") == len(world), "all consumed")
    wait_for(lambda: receiver.first_sends() >= expected, "every alert at the SIEM")
    assert daemon.stop() == 0
    # An alert folding repeats is written again as a new revision: (id, revision) is a line.
    written = Counter((str(alert["id"]), alert["revision"]) for alert in read_alerts(alerts_file))
    assert {key for key, revision in written if revision == 0} == expected
    assert max(written.values()) == 1  # nothing written twice
    log = daemon.log.read_text()
    assert log.count("paused: sink file cannot write to disk") == 1, log
    assert log.count("resumed:") == 1, log
    assert "Traceback" not in log
