"""The plumbing written once: atomic file writes, secrets, TLS client contexts.

detector/files.py, detector/secrets.py and detector/tls.py, used by the
checkpoint, feature snapshots, model files, the spool's acknowledgement, the
Kafka source and the webhook sink. tests/data/tls holds a self-signed client
certificate and its key, encrypted with the passphrase ``test-passphrase``
(``openssl req -x509 -newkey rsa:2048 -days 36500 -passout ...``).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from detector.errors import ConfigError
from detector.files import fsync_directory, remove_stale_temporaries, write_atomically
from detector.secrets import read_secret, read_secret_file
from detector.service_settings import WebhookSettings
from detector.sinks.webhook import tls_context
from detector.sources.kafka import KafkaSettings
from detector.tls import client_context

TLS_DATA = Path(__file__).parents[1] / "data" / "tls"
CLIENT_CERT = TLS_DATA / "client.pem"
ENCRYPTED_KEY = TLS_DATA / "encrypted-client.key"
PASSPHRASE = "test-passphrase"
NEW_KEY = "new-signing-key-3be9"


def temporary_of(path: Path) -> Path:
    """The temporary file write_atomically uses for ``path`` in this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patch os.fsync to note the path of each descriptor synced (then sync it)."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{descriptor}").readlink()))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


# Atomic writes


def test_an_atomic_write_syncs_the_file_then_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    synced = record_fsyncs(monkeypatch)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert synced == [str(temporary_of(path)), str(tmp_path)]
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left


def test_a_write_on_a_full_disk_leaves_the_old_content(tmp_path: Path) -> None:
    path, previous = tmp_path / "checkpoint.json", tmp_path / "checkpoint.json.prev"
    path.write_bytes(b"current")
    previous.write_bytes(b"before")
    temporary_of(path).symlink_to("/dev/full")  # the kernel's own ENOSPC for this write
    with pytest.raises(OSError) as raised:
        write_atomically(path, b"x" * 100_000, keep=previous)
    assert raised.value.errno == errno.ENOSPC
    assert (path.read_bytes(), previous.read_bytes()) == (b"current", b"before")
    assert not temporary_of(path).is_symlink() and not temporary_of(path).exists()


def test_a_rename_that_fails_leaves_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.mkdir()  # a directory in the way: the rename over it fails for real
    (path / "inside").write_bytes(b"old")
    with pytest.raises(OSError):
        write_atomically(path, b"new")
    assert (path / "inside").read_bytes() == b"old"
    assert sorted(tmp_path.iterdir()) == [path]


def test_keep_holds_the_version_before(tmp_path: Path) -> None:
    path, previous = tmp_path / "checkpoint.json", tmp_path / "checkpoint.json.prev"
    write_atomically(path, b"first", keep=previous)
    assert not previous.exists()  # nothing before the first
    write_atomically(path, b"second", keep=previous)
    assert (path.read_bytes(), previous.read_bytes()) == (b"second", b"first")


def test_mode_sets_the_permissions_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "auth.npz"
    before = os.umask(0o077)
    try:
        write_atomically(path, b"arrays", mode=0o644)
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_stale_temporaries_of_the_path_go_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "ack"
    stale = [tmp_path / ".ack.4242.tmp", tmp_path / ".ack.77.tmp"]
    others = [tmp_path / "ack", tmp_path / ".ackx.1.tmp", tmp_path / "notes.tmp"]
    for file in stale + others:
        file.write_bytes(b"x")
    assert remove_stale_temporaries(path) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(others)


def test_fsync_directory_syncs_that_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = record_fsyncs(monkeypatch)
    fsync_directory(tmp_path)
    assert synced == [str(tmp_path)]


# Secrets


def test_secrets_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(NEW_KEY + "\n")
    secret = read_secret(path, None)
    assert secret is not None
    assert NEW_KEY not in repr(secret) and NEW_KEY not in str(secret)
    assert secret.get_secret_value() == NEW_KEY


def test_read_secret_from_file_strips_the_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(" tok en \r\n")
    secret = read_secret(path, "CIWATCH_TEST_UNUSED")
    assert secret is not None and secret.get_secret_value() == " tok en "


def test_read_secret_file_wins_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "token"
    path.write_text("from-file")
    monkeypatch.setenv("CIWATCH_TEST_TOKEN", "from-env")
    secret = read_secret(path, "CIWATCH_TEST_TOKEN")
    assert secret is not None and secret.get_secret_value() == "from-file"


def test_read_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIWATCH_TEST_TOKEN", "from-env")
    secret = read_secret(None, "CIWATCH_TEST_TOKEN")
    assert secret is not None and secret.get_secret_value() == "from-env"
    monkeypatch.delenv("CIWATCH_TEST_TOKEN")
    assert read_secret(None, "CIWATCH_TEST_TOKEN") is None
    assert read_secret(None, None) is None


def test_read_secret_empty_env_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIWATCH_TEST_TOKEN", "")
    with pytest.raises(ConfigError, match=r"^webhook\.token: environment variable .* is empty"):
        read_secret(None, "CIWATCH_TEST_TOKEN", name="webhook.token")


def test_read_secret_missing_file_is_one_line_naming_the_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(ConfigError) as info:
        read_secret_file(path, name="sasl_plain_password_file")
    assert info.value.where == "sasl_plain_password_file"
    assert str(info.value) == f"sasl_plain_password_file: secret file {path} does not exist"


@pytest.mark.parametrize("content", ["", "\n", "\r\n\n"])
def test_read_secret_empty_file_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty"
    path.write_text(content)
    with pytest.raises(ConfigError, match="is empty") as info:
        read_secret(path, None)
    assert info.value.where == str(path)


def test_read_secret_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read secret file") as info:
        read_secret(tmp_path, None, name="webhook.token_file")
    assert info.value.where == "webhook.token_file"


def test_a_secret_that_is_not_text_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_bytes(b"hunter2\xff\xfe")
    with pytest.raises(ConfigError) as info:
        read_secret_file(path, name="ssl_password_file")
    assert "not UTF-8 text" in str(info.value) and "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_kafka_reads_its_password_files_with_the_same_reader(tmp_path: Path) -> None:
    password = tmp_path / "sasl-password"
    password.write_text("s3cret\n")
    settings = KafkaSettings(
        topics=["audit"],
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="ciwatch",
        sasl_plain_password_file=password,
    )
    assert settings.consumer_config()["sasl_plain_password"] == "s3cret"
    password.write_text("\n")  # a secret mount not filled in yet
    with pytest.raises(ConfigError, match="is empty") as info:
        settings.consumer_config()
    assert info.value.where == "sasl_plain_password_file"


# TLS client contexts


def test_a_missing_ca_file_names_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the CA file") as info:
        client_context(tmp_path / "missing-ca.pem", cafile_key="service.webhook.ca_file")
    assert info.value.where == "service.webhook.ca_file"


def test_a_ca_file_that_is_not_pem_names_its_setting(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load the CA file") as info:
        client_context(garbage, cafile_key="ssl_cafile")
    assert info.value.where == "ssl_cafile"


def test_an_encrypted_key_without_its_passphrase_fails_instead_of_prompting() -> None:
    # OpenSSL would ask on the terminal; a daemon must fail, naming the setting.
    for password in (None, "wrong"):
        with pytest.raises(ConfigError, match="cannot load the client certificate") as info:
            client_context(None, CLIENT_CERT, ENCRYPTED_KEY, password, certfile_key="ssl_certfile")
        assert info.value.where == "ssl_certfile"
        assert PASSPHRASE not in str(info.value)


def test_the_client_certificate_loads_with_its_passphrase() -> None:
    for password in (PASSPHRASE, SecretStr(PASSPHRASE)):
        context = client_context(None, CLIENT_CERT, ENCRYPTED_KEY, password)
        assert context.check_hostname and context.minimum_version.name == "TLSv1_2"
    assert not client_context(check_hostname=False).check_hostname


def test_the_webhook_names_its_own_settings(tmp_path: Path) -> None:
    missing = tmp_path / "missing-cert.pem"
    settings = WebhookSettings.model_construct(
        ca_file=None, client_cert_file=missing, client_key_file=None
    )
    with pytest.raises(ConfigError) as info:
        tls_context(settings)
    assert info.value.where == "service.webhook.client_cert_file"
