from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from detector.errors import ConfigError
from detector.sources.kafka import KafkaSettings


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, str]:
    """Files that exist; validation checks presence, kafka-python reads the content."""
    files = {}
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = tmp_path / f"{key}.pem"
        path.write_text("-----BEGIN PLACEHOLDER-----\n")
        files[key] = str(path)
    return files


def sasl(**changes: Any) -> dict[str, Any]:
    settings = {
        "topics": ["a"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ciwatch",
        "sasl_plain_password": "hunter2",
    }
    settings.update(changes)
    return {key: value for key, value in settings.items() if value is not None}


def test_secrets_reach_kafka_python_but_are_masked_when_printed(
    tls_files: dict[str, str],
) -> None:
    settings = KafkaSettings.model_validate(
        sasl(bootstrap_servers=["kafka-1:9093"], topics=["github", "okta"], **tls_files)
        | {"ssl_password": "key-passphrase"}
    )
    config = settings.consumer_config()
    assert config["sasl_plain_password"] == "hunter2"
    assert config["sasl_plain_username"] == "ciwatch"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["security_protocol"] == "SASL_SSL"
    assert config["ssl_password"] == "key-passphrase"
    assert {key: config[key] for key in tls_files} == tls_files
    assert config["ssl_check_hostname"] is True
    assert "topics" not in config
    for secret in ("hunter2", "key-passphrase"):
        assert secret not in repr(settings)
        assert secret not in str(settings)
        assert secret not in str(settings.model_dump())
        assert secret not in settings.model_dump_json()


def test_unset_options_are_left_to_kafka_python_defaults() -> None:
    config = KafkaSettings(topics=["a"]).consumer_config()
    assert config["security_protocol"] == "PLAINTEXT"
    for key in ("ssl_cafile", "ssl_password", "sasl_mechanism", "sasl_plain_password"):
        assert key not in config
    assert "sasl_plain_password_file" not in config and "ssl_password_file" not in config


def test_secrets_can_come_from_files_read_without_the_trailing_newline(
    tmp_path: Path, tls_files: dict[str, str]
) -> None:
    sasl_file, key_file = tmp_path / "sasl-password", tmp_path / "key-passphrase"
    sasl_file.write_text("from-a-file\n")
    key_file.write_text("pass phrase\r\n")
    settings = KafkaSettings.model_validate(
        sasl(sasl_plain_password=None, sasl_plain_password_file=str(sasl_file), **tls_files)
        | {"ssl_password_file": str(key_file)}
    )

    config = settings.consumer_config()

    assert config["sasl_plain_password"] == "from-a-file"
    assert config["ssl_password"] == "pass phrase"
    assert "sasl_plain_password_file" not in config and "ssl_password_file" not in config
    for text in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert "from-a-file" not in text and "pass phrase" not in text


def test_secret_files_are_read_when_the_consumer_is_built(tmp_path: Path) -> None:
    password_file = tmp_path / "sasl-password"
    password_file.write_text("first\n")
    settings = KafkaSettings.model_validate(
        sasl(sasl_plain_password=None, sasl_plain_password_file=str(password_file))
    )
    password_file.write_text("rotated\n")
    assert settings.consumer_config()["sasl_plain_password"] == "rotated"

    password_file.unlink()
    with pytest.raises(ConfigError) as missing:
        settings.consumer_config()
    assert missing.value.where == "sasl_plain_password_file"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (sasl(sasl_mechanism=None), "sasl_mechanism"),
        (sasl(security_protocol="SASL_PLAINTEXT", sasl_mechanism=None), "sasl_mechanism"),
        ({"topics": ["a"], "sasl_mechanism": "PLAIN"}, "sasl_mechanism"),
        ({"topics": ["a"], "security_protocol": "SSL", "sasl_mechanism": "PLAIN"}, "SSL"),
        (sasl(sasl_plain_username=None), "sasl_plain_username"),
        (sasl(sasl_plain_username=""), "sasl_plain_username"),
        (sasl(sasl_plain_password=None), "sasl_plain_password"),
    ],
)
def test_inconsistent_sasl_settings_are_rejected_naming_the_field(
    bad: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as rejected:
        KafkaSettings.model_validate(bad)
    message = rejected.value.errors()[0]["msg"]
    assert field in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("drop", "field"),
    [
        ("ssl_keyfile", "ssl_certfile needs ssl_keyfile"),
        ("ssl_certfile", "ssl_keyfile needs ssl_certfile"),
    ],
)
def test_a_client_certificate_needs_its_key_and_vice_versa(
    tls_files: dict[str, str], drop: str, field: str
) -> None:
    settings = {"topics": ["a"], "security_protocol": "SSL", **tls_files}
    del settings[drop]
    with pytest.raises(ValidationError, match=field):
        KafkaSettings.model_validate(settings)


@pytest.mark.parametrize(
    "key",
    ["ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password_file", "sasl_plain_password_file"],
)
def test_missing_files_are_rejected_naming_the_setting(
    tmp_path: Path, tls_files: dict[str, str], key: str
) -> None:
    settings: dict[str, Any] = sasl(sasl_plain_password=None, **tls_files)
    settings["sasl_plain_password_file"] = settings["ssl_password_file"] = str(
        tls_files["ssl_cafile"]
    )
    settings[key] = str(tmp_path / "missing.pem")
    with pytest.raises(ValidationError, match=f"{key}: no such file: .*missing.pem"):
        KafkaSettings.model_validate(settings)


@pytest.mark.parametrize("secret", ["sasl_plain_password", "ssl_password"])
def test_a_secret_and_its_file_together_are_ambiguous(tmp_path: Path, secret: str) -> None:
    password_file = tmp_path / "secret"
    password_file.write_text("x\n")
    settings = sasl(**{secret: "inline", f"{secret}_file": str(password_file)})
    with pytest.raises(ValidationError, match=f"{secret} or {secret}_file, not both"):
        KafkaSettings.model_validate(settings)


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
