"""``service.kafka.client``: the settings each client gets, and confluent chosen but not installed.

"Not installed" is real: ``sys.modules[name] = None`` makes Python's import
fail for that package, as it does where the package is absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from pydantic import ValidationError

from detector.cli import main
from detector.detections import Severity
from detector.errors import ConfigError
from detector.sinks.kafka_topic import open_topic_sink
from detector.sources import librdkafka
from detector.sources.factory import open_source, require_client
from detector.sources.kafka import KafkaSettings

INSTALL = "pip install 'ciwatch[fast]'"


@pytest.fixture
def confluent_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)


def test_kafka_python_is_the_default_and_unknown_clients_are_rejected() -> None:
    assert KafkaSettings(topics=["a"]).client == "kafka-python"
    assert "client" not in KafkaSettings(topics=["a"], client="confluent").consumer_config()
    with pytest.raises(ValidationError, match="client"):
        KafkaSettings.model_validate({"topics": ["a"], "client": "rdkafka"})


def test_tls_and_sasl_settings_become_librdkafka_properties(tmp_path: Path) -> None:
    files = {}
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        files[key] = str(tmp_path / f"{key}.pem")
        Path(files[key]).write_text("-----BEGIN PLACEHOLDER-----\n")
    password_file = tmp_path / "sasl-password"
    password_file.write_text("from-a-file\n")
    settings = KafkaSettings(
        client="confluent",
        bootstrap_servers=["kafka-1:9093", "kafka-2:9093"],
        topics=["github"],
        group_id="detectors",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="ciwatch",
        sasl_plain_password_file=password_file,
        ssl_password="key-passphrase",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        ssl_check_hostname=False,
        **files,  # type: ignore[arg-type]
    )
    config = librdkafka.consumer_config(settings)
    assert config["bootstrap.servers"] == "kafka-1:9093,kafka-2:9093"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "ciwatch"
    assert config["sasl.password"] == "from-a-file"
    assert config["ssl.key.password"] == "key-passphrase"
    assert config["ssl.ca.location"] == files["ssl_cafile"]
    assert config["ssl.certificate.location"] == files["ssl_certfile"]
    assert config["ssl.key.location"] == files["ssl_keyfile"]
    assert config["ssl.endpoint.identification.algorithm"] == "none"
    assert config["group.id"] == "detectors"
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    # A paused partition's queue is dropped: its next fetch must not wait librdkafka's 1 s.
    assert config["fetch.queue.backoff.ms"] == librdkafka.FETCH_QUEUE_BACKOFF_MS < 1_000


def test_librdkafka_accepts_every_property_given() -> None:
    """librdkafka rejects unknown or invalid properties when a client is built (no connection)."""
    settings = KafkaSettings(
        client="confluent",
        topics=["a"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="ciwatch",
        sasl_plain_password="hunter2",  # type: ignore[arg-type]
    )
    Consumer(librdkafka.consumer_config(settings))
    Producer(librdkafka.connection_config(settings))


@pytest.mark.usefixtures("confluent_missing")
def test_confluent_without_the_package_is_one_config_error_saying_what_to_install() -> None:
    settings = KafkaSettings(client="confluent", topics=["a"])
    for start in (
        lambda: require_client(settings),
        lambda: open_source(settings),
        lambda: open_topic_sink(settings, "alerts", min_severity=Severity.HIGH),
    ):
        with pytest.raises(ConfigError) as refused:
            start()
        assert refused.value.where == "service.kafka.client"
        assert INSTALL in str(refused.value)
        assert "\n" not in str(refused.value)
    require_client(KafkaSettings(topics=["a"]))  # kafka-python needs nothing more


@pytest.mark.usefixtures("confluent_missing")
@pytest.mark.parametrize(("command", "exit_status"), [("run", 2), ("validate", 1)])
def test_the_cli_says_so_in_one_line_before_starting_anything(
    command: str, exit_status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ciwatch.yaml"
    # An unreachable broker: reaching for it would fail differently, and much later.
    config.write_text(
        "service:\n  kafka: {client: confluent, bootstrap_servers: ['127.0.0.1:9'],"
        " topics: [events]}\n  http_port: 0\n"
    )
    status = main([command, "--config", str(config)])
    err = capsys.readouterr().err
    assert status == exit_status
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ciwatch: error: service.kafka.client: ")
    assert INSTALL in lines[0]
