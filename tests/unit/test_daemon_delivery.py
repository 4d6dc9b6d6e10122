"""The daemon's delivery step: sinks fail independently, a failure blocks the commit, and
spooled alerts go out when the SIEM is back even if no new alert comes."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from detector.alerts.model import Alert
from detector.config import load_config
from detector.daemon import Daemon
from detector.errors import ConfigError
from detector.sinks.base import Sink
from tests.receiver import running_receiver
from tests.unit.sinks.test_webhook_format import make_alert
from tests.unit.sinks.test_webhook_sink import make_sink


class Broken(Sink):
    name = "broken"

    def send(self, batch: Sequence[Alert]) -> None:
        raise RuntimeError("broken")


class Collecting(Sink):
    name = "collecting"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[Alert] = []

    def send(self, batch: Sequence[Alert]) -> None:
        self.got.extend(batch)


def test_a_failing_sink_does_not_keep_alerts_from_the_others(tmp_path: Path) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text("models: {enabled: false}\n")
    collecting = Collecting()
    lines: list[str] = []
    daemon = Daemon(load_config(config_path), [Broken(), collecting], log=lines.append)
    alerts = [make_alert("alice"), make_alert("bob")]
    with pytest.raises(RuntimeError, match="broken"):  # so the batch is not committed
        daemon._deliver(alerts)
    assert collecting.got == alerts
    assert any("sink broken failed" in line for line in lines)
    failed = daemon.metrics.registry.get_sample_value(
        "ciwatch_sink_deliveries_total", {"sink": "broken", "status": "failed"}
    )
    assert failed == len(alerts)


def test_spooled_alerts_go_out_when_the_siem_returns_without_new_alerts(tmp_path: Path) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text("models: {enabled: false}\n")
    with running_receiver() as receiver:
        receiver.answers = [(503, {})]
        sink = make_sink(receiver, tmp_path)
        daemon = Daemon(load_config(config_path), [sink], log=lambda line: None)
        alert = make_alert("alice")
        daemon._deliver([alert])  # the SIEM is down: spooled, committed
        assert sink.depth == 1
        deadline = time.monotonic() + 20.0
        while sink.depth:  # what the loop does after each batch without alerts
            assert time.monotonic() < deadline, "the spool did not drain"
            daemon.retry_spooled()
            time.sleep(0.05)
        assert receiver.first_sends() == {alert.id}


@pytest.mark.parametrize("pipeline_state", [{}, {"version": 1}, {"version": 1, "features": 3}])
def test_a_checkpoint_whose_state_is_of_the_wrong_shape_is_one_line(
    tmp_path: Path, pipeline_state: dict[str, object]
) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text(f"models: {{enabled: false}}\nservice: {{state_dir: {tmp_path}}}\n")
    daemon = Daemon(load_config(config_path), [], log=lambda line: None)
    assert daemon.checkpoint is not None
    daemon.checkpoint.save(pipeline_state, {("audit", 0): 5})
    with pytest.raises(ConfigError, match="damaged checkpoint") as raised:
        daemon._restore()
    assert raised.value.where == str(daemon.checkpoint.path)
