"""Webhook and config safety: secrets in urls stay out of output; bad input is one line.

Issue 12 (hardening), item 4 and the one-line errors of item 9.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from detector.checkpoint import CHECKPOINT_FORMAT, Checkpoint
from detector.cli import main
from detector.config import load_config
from detector.errors import ConfigError
from detector.service_settings import WebhookSettings, redact_url
from detector.sinks.webhook import WebhookSink
from tests.receiver import running_receiver
from tests.unit.sinks.test_webhook_format import make_alert

SECRETS = ("password", "s3cret")
NOT_UTF8 = b"service:\n  http_port: 9464  # caf\xe9\n"
WAIT_S = 20.0


def one_error_line(err: str) -> str:
    """The single stderr line of a failed command (and that there is no traceback)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ciwatch: error: ")
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- redact_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:password@siem.example:8443/in?token=s3cret&x=1#frag",
            "https://***@siem.example:8443/in?token=***&x=***",
        ),
        ("https://siem.example/services/collector", "https://siem.example/services/collector"),
        ("http://[::1]:8080/in?flag", "http://[::1]:8080/in?flag=***"),
        ("https://token@siem.example/", "https://***@siem.example/"),
        ("https://siem.example:notaport/?token=s3cret", "<unparsable url>"),
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
            "https://hooks.slack.com/services/T00000000/B00000000/***",
        ),
        (
            "https://siem.example/api/9f86d081884c7d659a2feaa0c55ad015/events",
            "https://siem.example/api/***/events",
        ),
        (
            "https://siem.example/services/collector/event",
            "https://siem.example/services/collector/event",
        ),
    ],
)
def test_redact_url_hides_user_info_query_values_and_fragment(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_webhook_retries_never_log_the_urls_secrets(tmp_path: Path) -> None:
    url = f"http://user:password@127.0.0.1:{closed_port()}/in?token=s3cret&x=1"
    lines: list[str] = []
    settings = WebhookSettings.model_validate({"url": url, "max_backoff": "1s"})
    sink = WebhookSink(settings, spool_dir=tmp_path / "spool", log=lines.append)
    sink.accept([make_alert("alice")])
    deadline = time.monotonic() + WAIT_S
    while len(lines) < 3:  # the first attempt and two retries, each logged
        assert time.monotonic() < deadline, "timed out waiting for retries"
        sink.flush()
        time.sleep(0.05)
    sink.close()
    assert all("cannot reach http://***@127.0.0.1:" in line for line in lines)
    assert not [line for line in lines if any(secret in line for secret in SECRETS)]


def test_an_unauthorized_answer_is_logged_without_the_urls_secrets(tmp_path: Path) -> None:
    lines: list[str] = []
    with running_receiver() as receiver:
        receiver.answers.append((401, {}))
        url = receiver.url.replace("http://", "http://user:password@") + "?token=s3cret"
        settings = WebhookSettings.model_validate({"url": url})
        sink = WebhookSink(settings, spool_dir=tmp_path / "spool", log=lines.append)
        sink.accept([make_alert("alice")])
        sink.flush()
        sink.close()
    [line] = lines
    assert "answered 401" in line and "token=***" in line
    assert not any(secret in line for secret in SECRETS)


# --- http:// only to loopback -------------------------------------------------------------


def write_config(tmp_path: Path, webhook: str) -> Path:
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"service:\n  state_dir: {tmp_path / 'state'}\n  webhook:\n{webhook}")
    return config


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/in", "http://127.9.9.9/in", "http://[::1]/in", "http://localhost/"],
)
def test_plain_http_to_loopback_is_accepted(url: str) -> None:
    assert WebhookSettings(url=url).url == url


def test_plain_http_to_a_remote_host_is_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "    url: http://user:password@siem.example/in?token=s3cret\n")
    assert main(["validate", "--config", str(config)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "service.webhook.url" in line and "allow_insecure_http" in line
    assert not any(secret in line for secret in SECRETS)


def test_plain_http_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    config = write_config(tmp_path, "    url: https://siem.example/in\n")
    with pytest.raises(ConfigError, match=r"service\.webhook\.url"):
        load_config(config, environ={"CIWATCH_WEBHOOK_URL": "http://siem.example/in"})


def test_allow_insecure_http_accepts_a_remote_http_url(tmp_path: Path) -> None:
    webhook = "    url: http://siem.example/in\n    allow_insecure_http: true\n"
    config = load_config(write_config(tmp_path, webhook))
    assert config.service.webhook is not None
    assert config.service.webhook.url == "http://siem.example/in"


def test_validate_shows_the_webhook_url_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://user:password@siem.example/in?token=s3cret&x=1"
    config = write_config(tmp_path, f"    url: '{url}'\n")
    assert main(["validate", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "webhook: json to https://***@siem.example/in?token=***&x=***" in out
    assert not any(secret in out + err for secret in SECRETS)


# --- files that are not UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "replay"])
def test_a_config_that_is_not_utf8_is_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(NOT_UTF8)
    argv = [command, "--config", str(config)]
    if command == "replay":
        argv += [str(tmp_path), "--alerts-out", str(tmp_path / "alerts.jsonl")]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(config) in line and "not UTF-8" in line


def bad_taxonomy(tmp_path: Path) -> Path:
    directory = tmp_path / "taxonomy"
    directory.mkdir()
    (directory / "extra.yaml").write_bytes(b"source: github_audit  # \xff\n")
    return directory


def test_a_taxonomy_file_that_is_not_utf8_is_one_line_in_normalize(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = bad_taxonomy(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_text("")
    assert main(["normalize", "--taxonomy", str(directory), str(events)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(directory / "extra.yaml") in line and "not UTF-8" in line


def test_a_taxonomy_file_that_is_not_utf8_is_one_line_in_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = bad_taxonomy(tmp_path)
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"taxonomy:\n  dirs: ['{directory}']\n")
    alerts = tmp_path / "alerts.jsonl"
    argv = ["replay", "--config", str(config), str(tmp_path), "--alerts-out", str(alerts)]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(directory / "extra.yaml") in line and "not UTF-8" in line


# --- checkpoints of the wrong shape ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pipeline": []},
        {"pipeline": {}, "offsets": {}},
        {"pipeline": {}, "offsets": [7]},
        {"pipeline": {}, "offsets": [{"topic": "t", "partition": 0}]},
        {"pipeline": {}, "offsets": [{"topic": "t", "partition": "0", "offset": 3}]},
        {"pipeline": {}, "offsets": [{"topic": 1, "partition": 0, "offset": 3}]},
        {"pipeline": {}, "offsets": [{"topic": "t", "partition": 0, "offset": True}]},
    ],
)
def test_a_checkpoint_of_the_wrong_shape_is_a_config_error(
    body: dict[str, object], tmp_path: Path
) -> None:
    document = {"format": CHECKPOINT_FORMAT, "version": 1, **body}
    (tmp_path / "checkpoint.json").write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="damaged checkpoint") as raised:
        Checkpoint(tmp_path).load()
    assert raised.value.where == str(tmp_path / "checkpoint.json")


def test_a_checkpoint_of_the_right_shape_loads(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path)
    checkpoint.save({"version": 1}, {("audit", 2): 40})
    assert checkpoint.load() == ({"version": 1}, {("audit", 2): 40})


# --- --alerts-out ------------------------------------------------------------------------


def replay_argv(tmp_path: Path, alerts_out: str, *extra: str) -> list[str]:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"@timestamp": 1606929874512, "action": "team.add_member", "actor": "octocat"}\n'
    )
    return ["replay", str(events), "--no-models", "--alerts-out", alerts_out, *extra]


def test_alerts_out_dev_null_simply_works(tmp_path: Path) -> None:
    assert main(replay_argv(tmp_path, "/dev/null")) == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_alerts_out_that_cannot_be_written_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = Path(__file__).parents[1] / "data" / "samples" / "cloudtrail.jsonl"
    argv = ["replay", str(events), "--no-models", "--alerts-out", "/dev/full"]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "/dev/full: cannot write alerts" in line


def test_alerts_out_naming_a_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(replay_argv(tmp_path, str(tmp_path))) == 2
    assert "cannot write alerts" in one_error_line(capsys.readouterr().err)


# --- a configured model directory that is missing or empty -------------------------------


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_replay_with_models_naming_no_models_is_one_line(
    state: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    if state == "empty":
        models.mkdir()
    argv = replay_argv(tmp_path, str(tmp_path / "alerts.jsonl"))
    argv.remove("--no-models")
    assert main([*argv, "--models", str(models)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(models) in line


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_configured_empty_model_directory_is_reported(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"models:\n  dir: '{models}'\n")
    # validate reports problems with status 1 (its contract: "found problems"); run 2.
    assert main([command, "--config", str(config)]) == (1 if command == "validate" else 2)
    out, err = capsys.readouterr()
    assert "ok:" not in out
    line = one_error_line(err)
    assert str(models) in line and "no models" in line


def test_the_bundled_models_still_load_without_a_configured_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
