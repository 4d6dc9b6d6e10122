"""The `service:` section and its CIWATCH_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import load_config
from detector.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ciwatch.yaml"
    path.write_text(text)
    return path


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  kafka: {topics: [from-file], group_id: file-group}\n")
    environ = {
        "CIWATCH_KAFKA_BOOTSTRAP": "k1:9093, k2:9093",
        "CIWATCH_TOPICS": "github,okta",
        "CIWATCH_GROUP_ID": "prod-ciwatch",
        "CIWATCH_WEBHOOK_URL": "https://siem.example/hook",
        "CIWATCH_WEBHOOK_FORMAT": "splunk_hec",
        "CIWATCH_HTTP_PORT": "9100",
        "CIWATCH_STATE_DIR": "/var/lib/ciwatch",
        "CIWATCH_MODELS": "/models",
    }
    service = (config := load_config(path, environ=environ)).service
    assert service.kafka.bootstrap_servers == ["k1:9093", "k2:9093"]
    assert service.kafka.topics == ["github", "okta"]
    assert service.kafka.group_id == "prod-ciwatch"
    assert service.webhook is not None
    assert service.webhook.url == "https://siem.example/hook"
    assert service.webhook.format == "splunk_hec"
    assert service.http_port == 9100
    assert service.state_dir == Path("/var/lib/ciwatch")
    assert config.models.dir == Path("/models")


def test_without_an_environment_the_file_stands(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  kafka: {topics: [from-file]}\n")
    config = load_config(path)
    assert config.service.kafka.topics == ["from-file"]
    assert config.service.webhook is None


def test_empty_variables_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "service:\n  http_port: 9500\n")
    assert load_config(path, environ={"CIWATCH_HTTP_PORT": " "}).service.http_port == 9500


@pytest.mark.parametrize(
    ("environ", "where"),
    [
        ({"CIWATCH_HTTP_PORT": "ninety"}, "service.http_port (environment: CIWATCH_HTTP_PORT)"),
        (
            {"CIWATCH_WEBHOOK_FORMAT": "xml", "CIWATCH_WEBHOOK_URL": "https://s/h"},
            "service.webhook.format",
        ),
        ({"CIWATCH_WEBHOOK_URL": "siem.example"}, "service.webhook.url"),
    ],
)
def test_a_bad_override_fails_naming_the_key_and_the_variable(
    tmp_path: Path, environ: dict[str, str], where: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, ""), environ=environ)
    assert where in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_client_key_needs_a_client_certificate(tmp_path: Path) -> None:
    text = "service:\n  webhook: {url: 'https://s/h', client_key_file: /k.pem}\n"
    with pytest.raises(ConfigError, match="client_key_file needs client_cert_file"):
        load_config(write(tmp_path, text))


def test_printing_the_config_masks_kafka_passwords(tmp_path: Path) -> None:
    text = (
        "service:\n  kafka: {topics: [t], security_protocol: SASL_SSL, sasl_mechanism: PLAIN,"
        " sasl_plain_username: u, sasl_plain_password: hunter2-secret}\n"
    )
    config = load_config(write(tmp_path, text))
    assert "hunter2-secret" not in repr(config) and "hunter2-secret" not in str(config)
