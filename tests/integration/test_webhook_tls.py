"""The webhook sink over HTTPS: a custom CA, a client certificate, and a CA that does not vouch."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.service_settings import WebhookSettings
from detector.sinks.webhook import WebhookSink
from tests.integration.tls import Certificates, make_certificates
from tests.receiver import Receiver, running_receiver
from tests.unit.sinks.test_webhook_format import make_alert

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def siem(certificates: Certificates) -> Iterator[Receiver]:
    """An HTTPS receiver that asks for a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificates.ca))
    context.load_cert_chain(certificates.server_cert, certificates.server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    with running_receiver(tls=context) as receiver:
        yield receiver


def sink(siem: Receiver, tmp_path: Path, ca: Path, client: bool, lines: list[str]) -> WebhookSink:
    settings: dict[str, object] = {"url": siem.url, "ca_file": ca, "max_backoff": "1s"}
    if client:
        certificates = ca.parent
        settings["client_cert_file"] = certificates / "client.pem"
        settings["client_key_file"] = certificates / "client.key"
    return WebhookSink(
        WebhookSettings.model_validate(settings), spool_dir=tmp_path / "spool", log=lines.append
    )


def test_delivered_with_the_custom_ca_and_a_client_certificate(
    siem: Receiver, certificates: Certificates, tmp_path: Path
) -> None:
    lines: list[str] = []
    webhook = sink(siem, tmp_path, certificates.ca, True, lines)
    alert = make_alert()
    webhook.accept([alert])
    webhook.flush()
    assert webhook.depth == 0 and siem.ids() == [alert.id]


@pytest.mark.parametrize("wrong", ["unrelated CA", "no client certificate"])
def test_a_failed_handshake_delivers_nothing_and_keeps_the_alert(
    siem: Receiver, certificates: Certificates, tmp_path: Path, wrong: str
) -> None:
    lines: list[str] = []
    ca = certificates.other_ca if wrong == "unrelated CA" else certificates.ca
    webhook = sink(siem, tmp_path, ca, wrong != "no client certificate", lines)
    webhook.accept([make_alert()])
    webhook.flush()
    assert webhook.depth == 1  # spooled, to be retried: nothing lost
    assert siem.ids() == []
    assert any("cannot reach" in line for line in lines)
