"""The TLS client context every ciwatch connection uses: Kafka brokers, the SIEM webhook.

Built the way kafka-python builds its own from the same settings (TLS 1.2 or
newer, the server's certificate verified against ``cafile`` or the system's
CAs, an optional client certificate), so that checking a broker's TLS up front
agrees with what the consumer will do. A file that cannot be loaded is one
:class:`~detector.errors.ConfigError` line naming the setting that gave it.

Like :mod:`detector.errors`, this module sits above the data flow: any layer
may import it (docs/architecture.md).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import SecretStr

from detector.errors import ConfigError

__all__ = ["client_context"]


def client_context(
    cafile: str | Path | None = None,
    certfile: str | Path | None = None,
    keyfile: str | Path | None = None,
    password: str | SecretStr | None = None,
    *,
    check_hostname: bool = True,
    cafile_key: str = "cafile",
    certfile_key: str = "certfile",
) -> ssl.SSLContext:
    """A client context verifying servers against ``cafile`` (else the system CAs).

    ``certfile`` (with ``keyfile``, unless the certificate file holds the key,
    and ``password``, the key's passphrase) is presented to servers that ask
    for a client certificate. ``cafile_key`` and ``certfile_key`` are the
    settings named when a file cannot be loaded.

    >>> client_context("ca.pem", cafile_key="service.webhook.ca_file")  # doctest: +SKIP
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = check_hostname
    try:
        if cafile:
            context.load_verify_locations(cafile)
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA file: {exc}", where=cafile_key) from None
    if isinstance(password, SecretStr):
        password = password.get_secret_value()
    # Without a passphrase OpenSSL would prompt on the terminal for an encrypted
    # key; a daemon must fail instead, naming the setting.
    passphrase = password if password is not None else ""
    try:
        if certfile:
            context.load_cert_chain(certfile, keyfile or None, passphrase)
    except (OSError, ssl.SSLError) as exc:
        message = f"cannot load the client certificate or key: {exc}"
        raise ConfigError(message, where=certfile_key) from None
    return context
