"""TLS for integration tests: throwaway certificates and a stunnel terminator.

The embedded broker speaks plain TCP; stunnel (Debian's ``stunnel4``, which
``.ci/run`` installs) listens on another loopback port, terminates TLS with a
certificate from a CA made here, and forwards to the broker. The broker
advertises stunnel's address, so after the bootstrap every client connection
goes through TLS as well. Certificates come from the ``openssl`` CLI, so the
tests need no crypto library beyond the one kafka-python already uses.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from detector.sources.broker import terminate, wait_for_port

__all__ = ["Certificates", "Stunnel", "make_certificates"]

_DAYS = "2"
_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA that signed the server and client certificates, and a CA that did not."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """Write a CA, a server certificate for 127.0.0.1/localhost, a client one, an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca(directory, "ciwatch-test-ca")
    other_ca, _ = _make_ca(directory, "ciwatch-unrelated-ca")
    key, csr = directory / "server.key", directory / "server.csr"
    _openssl("req", "-new", *_new_key(key), "-out", csr, "-subj", "/CN=localhost")
    extensions = directory / "server.ext"
    extensions.write_text(_SERVER_EXTENSIONS)
    cert = directory / "server.pem"
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-CAserial", directory / "ca.srl", "-days", _DAYS, "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    client_key, client_csr = directory / "client.key", directory / "client.csr"
    _openssl("req", "-new", *_new_key(client_key), "-out", client_csr, "-subj", "/CN=ciwatch")
    client_cert = directory / "client.pem"
    _openssl(
        "x509", "-req", "-in", client_csr, "-CA", ca, "-CAkey", ca_key,
        "-CAserial", directory / "ca.srl", "-days", _DAYS, "-out", client_cert,
    )  # fmt: skip
    return Certificates(
        ca=ca, server_cert=cert, server_key=key, other_ca=other_ca,
        client_cert=client_cert, client_key=client_key,
    )  # fmt: skip


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", *_new_key(key), "-out", cert, "-days", _DAYS, "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _new_key(key: Path) -> tuple[str | Path, ...]:
    # EC keys: generated in milliseconds, where RSA takes noticeably longer.
    return ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key)


def _openssl(*args: str | Path) -> None:
    done = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")


class Stunnel:
    """stunnel in the foreground: TLS on ``127.0.0.1:accept_port`` → plain TCP to ``target_port``.

    Use as a context manager; entering waits until the TLS port accepts
    connections. A missing stunnel binary is an error, never a skip.
    """

    def __init__(
        self,
        workdir: Path,
        certificates: Certificates,
        *,
        accept_port: int,
        target_port: int,
        start_timeout_s: float = 15.0,
    ) -> None:
        self.accept_port = accept_port
        self.log_path = workdir / "stunnel.log"
        self._config = workdir / "stunnel.conf"
        self._config.write_text(
            "foreground = yes\npid =\nsyslog = no\n"
            "[kafka]\n"
            f"accept = 127.0.0.1:{accept_port}\nconnect = 127.0.0.1:{target_port}\n"
            f"cert = {certificates.server_cert}\nkey = {certificates.server_key}\n"
        )
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.accept_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> Stunnel:
        binary = shutil.which("stunnel4") or shutil.which("stunnel")
        if binary is None:
            raise RuntimeError("stunnel is not installed (apt-get install stunnel4; .ci/run does)")
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [binary, str(self._config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self._wait_until_listening()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate(process, timeout_s)

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        problem = wait_for_port(self.accept_port, self._process, self._start_timeout_s)
        if problem is not None:
            self.stop()
            raise RuntimeError(f"stunnel {problem} at start:\n{self.log()}")

    def __enter__(self) -> Stunnel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
