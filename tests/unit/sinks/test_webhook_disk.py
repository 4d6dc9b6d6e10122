"""The webhook sink and its spool on a full disk: a healthy SIEM never needs the disk, an
outage on a full disk keeps the alerts in memory and raises, and space coming back resumes.

A full disk is the kernel's own: the spool's segment file is a symlink to ``/dev/full``,
whose writes fail with ``ENOSPC`` (works unprivileged). Space "returns" when the symlink
is replaced by a regular file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from detector.metrics import Metrics
from detector.sinks.spool import DiskSpool
from tests.full_disk import free, on_full_device
from tests.receiver import running_receiver
from tests.unit.sinks.test_webhook_format import make_alert
from tests.unit.sinks.test_webhook_sink import make_sink, sample, wait_for


def fill_disk(spool_dir: Path) -> Path:
    """Make the spool's first segment a file on a full device; its path."""
    return on_full_device(spool_dir / f"{0:020d}.seg")


def test_a_healthy_siem_gets_alerts_even_when_the_disk_is_full(tmp_path: Path) -> None:
    metrics = Metrics()
    fill_disk(tmp_path / "spool")
    with running_receiver() as receiver:
        sink = make_sink(receiver, tmp_path, metrics, batch_size=1)
        alerts = [make_alert(f"user{i}") for i in range(3)]
        sink.accept(alerts)
        sink.flush()  # no spool write: nothing to fail
        assert receiver.ids() == [alert.id for alert in alerts]
    assert sink.depth == 0
    assert sample(metrics, "ciwatch_sink_delivered_via_total", sink="webhook", path="direct") == 3
    assert sample(metrics, "ciwatch_spool_write_errors_total", sink="webhook") == 0


def test_a_healthy_siem_leaves_the_spool_unwritten(tmp_path: Path) -> None:
    with running_receiver() as receiver:
        sink = make_sink(receiver, tmp_path)
        sink.accept([make_alert("alice")])
        sink.flush()
    segments = list((tmp_path / "spool").glob("*.seg"))
    assert [path.stat().st_size for path in segments] == [0]
    assert not (tmp_path / "spool" / "ack").exists()  # nothing was ever acknowledged


def test_an_outage_on_a_full_disk_raises_keeps_the_alerts_and_recovers(tmp_path: Path) -> None:
    metrics = Metrics()
    segment = fill_disk(tmp_path / "spool")
    with running_receiver() as receiver:
        receiver.answers = [(503, {})] * 2
        sink = make_sink(receiver, tmp_path, metrics, batch_size=1)
        alerts = [make_alert(f"user{i}") for i in range(3)]
        sink.accept(alerts)
        with pytest.raises(OSError) as raised:  # neither delivered nor spooled: not committable
            sink.flush()
        assert raised.value.errno == errno.ENOSPC
        assert sink.depth == 0
        assert sample(metrics, "ciwatch_spool_write_errors_total", sink="webhook") == 1
        free(segment)
        wait_for(lambda: sink.depth == 0 and not sink._pending, "the alerts to go out", sink.flush)
        assert list(dict.fromkeys(receiver.ids())) == [alert.id for alert in alerts]
        assert receiver.first_sends() == {alert.id for alert in alerts}


def test_a_failed_spool_write_is_rolled_back_and_the_spool_stays_usable(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    segment = fill_disk(directory)
    spool = DiskSpool(directory, max_bytes=1 << 20)
    with pytest.raises(OSError) as raised:
        spool.append([b"lost-1", b"lost-2"])
    assert raised.value.errno == errno.ENOSPC
    assert spool.depth == 0 and spool.bytes == 0
    free(segment)
    spool.append([b"kept"])
    spool.sync()
    spool.close()
    reopened = DiskSpool(directory, max_bytes=1 << 20)
    assert [record.payload for record in reopened.peek(10)] == [b"kept"]
    assert reopened.corrupt_records == 0


def test_an_acknowledgement_the_disk_refuses_does_not_stop_delivery(tmp_path: Path) -> None:
    metrics = Metrics()
    with running_receiver() as receiver:
        receiver.answers = [(503, {})]
        sink = make_sink(receiver, tmp_path, metrics, batch_size=1)
        alerts = [make_alert(f"user{i}") for i in range(2)]
        sink.accept(alerts)
        sink.flush()  # the SIEM is down: both spooled on a disk with room
        assert sink.depth == 2
        # The disk fills up: the acknowledgement's temporary file lands on a full device.
        (tmp_path / "spool" / f".ack.{os.getpid()}.tmp").symlink_to("/dev/full")
        wait_for(lambda: sink.depth == 0, "the spool to drain", sink.flush)
        assert list(dict.fromkeys(receiver.ids())) == [alert.id for alert in alerts]
    assert sample(metrics, "ciwatch_spool_write_errors_total", sink="webhook") == 1
    assert sample(metrics, "ciwatch_sink_delivered_via_total", sink="webhook", path="spool") == 2
