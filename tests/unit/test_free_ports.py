"""free_port(s): loopback ports for tests, benches and the demo, outside the ephemeral range."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from detector.sources import broker
from detector.sources.broker import free_port, free_ports

EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def bindable(port: int) -> bool:
    """Whether a server can listen on ``port`` now, as a daemon's metrics server does."""
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError:
        return False
    return True


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on (the kernel's choice: not one free_ports handed out)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.mark.skipif(not EPHEMERAL.exists(), reason="the kernel's ephemeral range is Linux's")
def test_ports_lie_below_the_range_outgoing_connections_take_source_ports_from() -> None:
    ephemeral_low = int(EPHEMERAL.read_text().split()[0])

    bases = [free_ports(3) for _ in range(20)]

    assert all(base >= 16_384 and base + 3 <= ephemeral_low for base in bases)
    assert all(bindable(base + i) for base in bases for i in range(3))


def test_a_port_is_not_handed_out_twice_before_it_is_bound() -> None:
    ports = [free_port() for _ in range(500)]  # nothing binds them meanwhile

    assert len(set(ports)) == len(ports)


def test_a_busy_port_is_passed_over(monkeypatch: pytest.MonkeyPatch, listening: int) -> None:
    offered: list[int] = []

    def offer(low: int, high: int) -> int:
        """First the run that holds the busy port, then ports the kernel finds free."""
        offered.append(listening - 1 if not offered else broker._kernel_port())
        return offered[-1]

    monkeypatch.setattr(broker, "_listening_range", lambda: (1024, 65_000))
    monkeypatch.setattr(random, "randrange", offer)

    base = free_ports(2)

    assert offered[0] == listening - 1
    assert base == offered[-1] != listening - 1


def test_without_the_kernels_range_the_kernels_own_choice_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(broker, "_EPHEMERAL", tmp_path / "missing")

    port = free_port()

    assert bindable(port)
