from __future__ import annotations

import pytest
from pydantic import ValidationError

from detector.sources.kafka import KafkaSettings


def test_secrets_reach_kafka_python_but_are_masked_when_printed() -> None:
    settings = KafkaSettings(
        bootstrap_servers=["kafka-1:9093"],
        topics=["github", "okta"],
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="ciwatch",
        sasl_plain_password="hunter2",  # type: ignore[arg-type]  # pydantic coerces to SecretStr
        ssl_cafile="/etc/kafka/ca.pem",
    )
    config = settings.consumer_config()
    assert config["sasl_plain_password"] == "hunter2"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["ssl_check_hostname"] is True
    assert "topics" not in config
    assert "ssl_password" not in config  # unset options are left to kafka-python's defaults
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


@pytest.mark.parametrize(
    "bad",
    [
        {"topics": []},
        {"topics": ["a"], "sasl_mechanism": "GSSAPI-ish"},
        {"topics": ["a"], "security_protocol": "TLS"},
        {"topics": ["a"], "unknown_option": 1},
    ],
)
def test_invalid_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        KafkaSettings.model_validate(bad)
