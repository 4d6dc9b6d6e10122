"""Logging (issue 12, item 8): JSON lines or text on stderr, one place to configure it,
levels, kafka-python's logs routed, context fields, and no secrets in any line."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka.net.transport import KafkaTCPTransport

from detector import logs
from detector.alerts.model import Alert
from detector.cli import main
from detector.config import load_config
from detector.daemon import Daemon
from detector.service_settings import WebhookSettings
from detector.sinks.base import Sink
from detector.sinks.webhook import WebhookSink
from tests.unit.sinks.test_webhook_format import make_alert
from tests.unit.test_safety import closed_port

WAIT_S = 20.0
_TOUCHED = ("", "ciwatch", "kafka")  # the loggers configure() sets levels on


class Refusing(Sink):
    name = "refusing"

    def send(self, batch: Sequence[Alert]) -> None:
        raise RuntimeError("SIEM rejected the batch")


class Terminal(io.StringIO):
    """A captured stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test configures logging afresh; put back the levels and handlers it changed."""
    loggers = [logging.getLogger(name) for name in _TOUCHED]
    levels = [logger.level for logger in loggers]
    handlers = list(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) for line in lines), text
    return lines


def test_json_lines_carry_time_level_logger_message_and_context() -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "json", stream=out)
    logging.getLogger("ciwatch.sources").info(
        "partition %d assigned", 3, extra={"topic": "audit", "partition": 3}
    )
    [line] = json_lines(out.getvalue())
    assert line["level"] == "info"
    assert line["logger"] == "ciwatch.sources"
    assert line["message"] == "partition 3 assigned"
    assert (line["topic"], line["partition"]) == ("audit", 3)
    assert line["time"].endswith("Z")
    logged = datetime.fromisoformat(line["time"])
    assert logged.utcoffset() == timedelta(0)
    assert abs(time.time() - logged.timestamp()) < 60


def test_an_exception_is_one_json_line_with_its_traceback() -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "json", stream=out)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("ciwatch.daemon").exception("batch failed")
    [line] = json_lines(out.getvalue())
    assert line["level"] == "error" and "ValueError: bad value" in line["exception"]


def test_auto_is_text_at_a_terminal_and_json_for_the_daemon_otherwise() -> None:
    terminal, piped, one_shot = Terminal(), io.StringIO(), io.StringIO()
    for stream, service in ((terminal, True), (piped, True), (one_shot, False)):
        logs.configure(logging.INFO, "auto", service=service, stream=stream)
        logging.getLogger("ciwatch.daemon").warning("rules not reloaded: x")
    assert " WARNING ciwatch.daemon: rules not reloaded: x\n" in terminal.getvalue()
    assert not terminal.getvalue().startswith("{")
    assert json_lines(piped.getvalue())[0]["message"] == "rules not reloaded: x"
    assert not one_shot.getvalue().startswith("{")


def test_an_explicit_format_wins_over_the_terminal() -> None:
    terminal = Terminal()
    logs.configure(logging.INFO, "json", service=True, stream=terminal)
    logging.getLogger("ciwatch.daemon").info("metrics on http://127.0.0.1:9464/metrics")
    assert json_lines(terminal.getvalue())[0]["level"] == "info"


def test_the_level_filters_lines() -> None:
    out = io.StringIO()
    logs.configure(logging.WARNING, "json", stream=out)
    daemon = logging.getLogger("ciwatch.daemon")
    daemon.debug("debug line")
    daemon.info("info line")
    daemon.warning("warning line")
    daemon.error("error line")
    assert [line["message"] for line in json_lines(out.getvalue())] == [
        "warning line",
        "error line",
    ]


def test_kafka_python_logs_go_through_the_same_handler_at_warning() -> None:
    out = io.StringIO()
    logs.configure(logging.DEBUG, "json", stream=out)  # even at debug, kafka stays at warning
    kafka = logging.getLogger("kafka.coordinator")
    kafka.info("joined group ciwatch")
    kafka.warning("heartbeat failed")
    logging.getLogger("ciwatch.daemon").debug("ciwatch's own debug line")
    lines = json_lines(out.getvalue())
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("kafka.coordinator", "heartbeat failed"),
        ("ciwatch.daemon", "ciwatch's own debug line"),
    ]


def test_kafka_pythons_close_race_stays_out_of_the_log_and_real_errors_do_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, "json", stream=out)
    # The installed kafka-python's network thread reading a socket a close took away.
    transport = KafkaTCPTransport(None, None)
    transport._closed = True
    with caplog.at_level(logging.ERROR, logger="kafka.net.transport"):
        transport._sock_recv()
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError:
            logging.getLogger("kafka.net.transport").exception("lost the broker")
    raced = caplog.records[0].exc_info
    assert raced is not None and isinstance(raced[1], AttributeError)  # the library logs it
    lines = json_lines(out.getvalue())
    assert [line["message"] for line in lines] == ["lost the broker"]
    assert "ConnectionResetError" in lines[0]["exception"]


def test_configuring_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    logs.configure(logging.INFO, "json", stream=first)
    logs.configure(logging.INFO, "json", stream=second)
    logging.getLogger("ciwatch.daemon").info("once")
    assert first.getvalue() == "" and len(json_lines(second.getvalue())) == 1


def test_a_daemon_line_carries_its_context_fields(tmp_path: Path) -> None:
    config_path = tmp_path / "ciwatch.yaml"
    config_path.write_text("models: {enabled: false}\n")
    out = io.StringIO()
    logs.configure(logging.INFO, "json", service=True, stream=out)
    daemon = Daemon(load_config(config_path), [Refusing()])
    with pytest.raises(RuntimeError, match="SIEM rejected"):  # so the batch is not committed
        daemon._deliver([make_alert("alice")])
    [line] = json_lines(out.getvalue())
    assert line["logger"] == "ciwatch.daemon" and line["level"] == "error"
    assert line["message"] == "sink refusing failed: RuntimeError: SIEM rejected the batch"
    assert (line["sink"], line["error_type"]) == ("refusing", "RuntimeError")


def test_a_credentialed_webhook_url_never_reaches_the_json_log(tmp_path: Path) -> None:
    port = closed_port()
    url = f"http://svc-user:hunter2pass@127.0.0.1:{port}/in?token=t0ps3cret&x=1"
    out = io.StringIO()
    logs.configure(logging.INFO, "json", service=True, stream=out)
    settings = WebhookSettings.model_validate({"url": url, "max_backoff": "1s"})
    sink = WebhookSink(settings, spool_dir=tmp_path / "spool")
    sink.accept([make_alert("alice")])
    deadline = time.monotonic() + WAIT_S
    while len(out.getvalue().splitlines()) < 2:  # the first attempt and a retry
        assert time.monotonic() < deadline, "timed out waiting for the retries to be logged"
        sink.flush()
        time.sleep(0.05)
    sink.close()
    text = out.getvalue()
    for secret in ("svc-user", "hunter2pass", "t0ps3cret"):
        assert secret not in text
    line = json_lines(text)[0]
    assert line["logger"] == "ciwatch.sinks.webhook" and line["level"] == "warning"
    assert line["url"] == f"http://***@127.0.0.1:{port}/in?token=***&x=***"
    assert line["sink"] == "webhook" and line["error_type"] == "ConnectError"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_url_with_credentials_logged_by_anyone_is_redacted(log_format: logs.LogFormat) -> None:
    out = io.StringIO()
    logs.configure(logging.INFO, log_format, stream=out)
    leaked = "https://admin:pa55word@siem.example/in?api_key=k3y&page=2"
    logging.getLogger("kafka.conn").error("cannot reach %s", leaked, extra={"target": leaked})
    text = out.getvalue()
    assert "admin" not in text and "pa55word" not in text and "k3y" not in text
    assert "https://***@siem.example/in?api_key=***&page=2" in text


def test_the_cli_takes_the_level_before_or_after_the_command_or_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    ciwatch = logging.getLogger("ciwatch")
    assert main(["--log-level", "error", "normalize", str(events)]) == 0
    assert ciwatch.level == logging.ERROR
    assert main(["normalize", str(events), "--log-level", "DEBUG"]) == 0
    assert ciwatch.level == logging.DEBUG
    monkeypatch.setenv("CIWATCH_LOG_LEVEL", "warning")
    assert main(["normalize", str(events)]) == 0
    assert ciwatch.level == logging.WARNING
    assert main(["normalize", str(events), "--log-level", "info"]) == 0  # the option wins
    assert ciwatch.level == logging.INFO
    capsys.readouterr()


def test_a_bad_log_level_in_the_environment_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    monkeypatch.setenv("CIWATCH_LOG_LEVEL", "loud")
    assert main(["normalize", str(events)]) == 2
    assert capsys.readouterr().err == (
        "ciwatch: error: CIWATCH_LOG_LEVEL: expected one of debug, info, warning, error, "
        "got 'loud'\n"
    )


def test_a_log_callable_still_gets_the_message_alone() -> None:
    lines: list[str] = []
    log = logs.line_log("ciwatch.daemon", lines.append)
    log("stopped (SIGTERM)", level=logging.WARNING, sink="webhook")
    handed_on = logs.line_log("ciwatch.checkpoint", log)  # a part passing its log to another
    handed_on("using the previous checkpoint", level=logging.WARNING)
    assert lines == ["stopped (SIGTERM)", "using the previous checkpoint"]


def test_a_handed_on_log_keeps_its_level_and_context_under_its_own_logger() -> None:
    out = io.StringIO()
    logs.configure(logging.WARNING, "json", service=True, stream=out)
    daemon_log = logs.line_log("ciwatch.daemon")
    checkpoint_log = logs.line_log("ciwatch.checkpoint", daemon_log)
    checkpoint_log("checkpoint.json unreadable", level=logging.WARNING, file="checkpoint.json")
    checkpoint_log("checkpoint written")  # info: below the level
    [line] = json_lines(out.getvalue())
    assert (line["logger"], line["level"], line["file"]) == (
        "ciwatch.checkpoint",
        "warning",
        "checkpoint.json",
    )
