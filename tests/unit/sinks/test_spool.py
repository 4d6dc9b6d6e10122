"""The disk spool: order, durable acks, the size bound, crash repair and corruption.

Every test uses real files under ``tmp_path``; the last one kills a real
process with SIGKILL after ``sync`` and reopens what it left behind.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from detector.errors import CiwatchError, ConfigError
from detector.sinks.spool import DiskSpool, SpoolFull

HEADER = 8  # bytes of framing per record: length and CRC32C, both u32
REPO = Path(__file__).resolve().parents[3]


def payloads(count: int, start: int = 0) -> list[bytes]:
    return [f"alert-{i:04d}".encode() for i in range(start, start + count)]


def everything(spool: DiskSpool) -> list[bytes]:
    return [record.payload for record in spool.peek(1_000_000)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_order_is_kept_across_reopen_and_segments(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=100)
    spool.append(payloads(10))
    spool.append(payloads(15, start=10))
    spool.sync()
    spool.close()
    assert len(segments(tmp_path / "spool")) > 1
    reopened = DiskSpool(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=100)
    assert everything(reopened) == payloads(25)
    assert reopened.depth == 25
    assert reopened.corrupt_records == 0


def test_peek_does_not_consume_and_respects_limit(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(5))
    assert [r.payload for r in spool.peek(3)] == payloads(3)
    assert [r.payload for r in spool.peek(3)] == payloads(3)
    assert spool.peek(0) == []


def test_ack_is_durable_across_reopen(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    spool.append(payloads(12))
    spool.sync()
    spool.ack(3)
    spool.ack(spool.peek(4)[-1].position)
    assert everything(spool) == payloads(5, start=7)
    spool.close()  # no sync after the acks: they are durable on their own
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=64)
    assert everything(reopened) == payloads(5, start=7)
    assert reopened.depth == 5


def test_ack_twice_is_harmless_and_beyond_the_end_refused(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    first = spool.peek(1)[0].position
    spool.ack(first)
    spool.ack(first)
    assert spool.depth == 2
    with pytest.raises(ValueError, match="cannot acknowledge"):
        spool.ack(3)
    with pytest.raises(ValueError, match="cannot acknowledge"):
        spool.ack(-1)
    assert everything(spool) == payloads(2, start=1)


def test_spool_full_writes_nothing(tmp_path: Path) -> None:
    size = 3 * (len(payloads(1)[0]) + HEADER)
    spool = DiskSpool(tmp_path, max_bytes=size)
    spool.append(payloads(2))
    spool.sync()
    before = {path.name: path.read_bytes() for path in segments(tmp_path)}
    with pytest.raises(SpoolFull) as caught:
        spool.append(payloads(2, start=2))
    assert isinstance(caught.value, CiwatchError)
    spool.sync()
    assert {path.name: path.read_bytes() for path in segments(tmp_path)} == before
    assert (spool.depth, spool.bytes) == (2, 2 * size // 3)
    spool.ack(1)  # room again once something is delivered
    spool.append(payloads(2, start=2))
    assert everything(spool) == payloads(3, start=1)


def test_torn_tail_is_truncated_on_open(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    spool.sync()
    spool.close()
    (segment,) = segments(tmp_path)
    whole = segment.stat().st_size
    with segment.open("ab") as handle:  # a crash half way through a fourth record
        handle.write((100).to_bytes(4, "big") + b"\x00\x00\x00\x00" + b"half")
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20)
    assert segment.stat().st_size == whole
    assert everything(reopened) == payloads(3)
    assert reopened.corrupt_records == 0
    reopened.append(payloads(1, start=3))
    reopened.sync()
    reopened.close()
    assert everything(DiskSpool(tmp_path, max_bytes=1 << 20)) == payloads(4)


def test_corrupt_record_is_skipped_and_counted(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    spool.sync()
    spool.close()
    (segment,) = segments(tmp_path)
    data = bytearray(segment.read_bytes())
    record = len(payloads(1)[0]) + HEADER
    data[record + HEADER + 2] ^= 0xFF  # a payload byte of the middle record
    segment.write_bytes(bytes(data))
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20)
    assert everything(reopened) == [payloads(3)[0], payloads(3)[2]]
    assert (reopened.corrupt_records, reopened.depth) == (1, 2)
    everything(reopened)  # reading past it again does not count it again
    assert reopened.corrupt_records == 1
    reopened.ack(2)
    assert (reopened.depth, reopened.bytes) == (0, 0)


def test_fully_acked_segments_are_deleted(tmp_path: Path) -> None:
    record = len(payloads(1)[0]) + HEADER
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=2 * record)
    spool.append(payloads(6))
    assert len(segments(tmp_path)) == 3
    spool.ack(3)  # the first segment and half of the second
    assert len(segments(tmp_path)) == 2
    spool.ack(1)
    assert len(segments(tmp_path)) == 1
    spool.ack(2)  # the last segment stays, empty of waiting records, for appends
    assert len(segments(tmp_path)) == 1
    assert (spool.depth, spool.bytes) == (0, 0)
    spool.append(payloads(1, start=6))
    assert everything(spool) == payloads(1, start=6)


def test_depth_and_bytes(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=50)
    assert (spool.depth, spool.bytes) == (0, 0)
    batch = [b"", b"x" * 30, b"y" * 70]
    spool.append(batch)
    assert (spool.depth, spool.bytes) == (3, 100 + 3 * HEADER)
    spool.ack(2)
    assert (spool.depth, spool.bytes) == (1, 70 + HEADER)
    spool.sync()
    spool.close()
    reopened = DiskSpool(tmp_path, max_bytes=1 << 20, segment_bytes=50)
    assert (reopened.depth, reopened.bytes) == (1, 70 + HEADER)


def test_a_damaged_checkpoint_means_redelivery_not_loss(tmp_path: Path) -> None:
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.append(payloads(3))
    spool.ack(1)
    spool.sync()
    spool.close()
    (tmp_path / "ack").write_bytes(b"garbage")
    assert everything(DiskSpool(tmp_path, max_bytes=1 << 20)) == payloads(3)


def test_settings_and_second_owner_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        DiskSpool(tmp_path, max_bytes=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot use spool"):
        DiskSpool(tmp_path / "file" / "spool", max_bytes=1 << 20)
    spool = DiskSpool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(ConfigError, match="in use"):
        DiskSpool(tmp_path, max_bytes=1 << 20)
    spool.close()
    DiskSpool(tmp_path, max_bytes=1 << 20).close()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from detector.sinks.spool import DiskSpool

    spool = DiskSpool(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=4096)
    for start in range(0, 300, 10):
        spool.append([f"alert-{i:04d}".encode() for i in range(start, start + 10)])
    spool.sync()
    print("synced", flush=True)
    i = 300
    while True:  # keep writing, unsynced and rolling segments, until killed mid-write
        spool.append([f"alert-{i:04d}".encode()])
        i += 1
        if i == 2_000:
            print("writing", flush=True)
    """
)


def wait_for_output(descriptor: int, expected: bytes, *, timeout: float) -> None:
    """Read ``descriptor`` until it has produced ``expected``, failing after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    seen = b""
    while expected not in seen:
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the child printed only {seen!r} within {timeout} s"
        chunk = os.read(descriptor, 1024)
        assert chunk, f"the child exited after printing {seen!r}"
        seen += chunk


def test_synced_records_survive_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory)],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        wait_for_output(child.stdout.fileno(), b"synced\nwriting\n", timeout=60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    spool = DiskSpool(directory, max_bytes=1 << 30, segment_bytes=4096)
    found = everything(spool)
    # Every synced record, then whatever unsynced ones reached the OS, all in order.
    assert len(found) >= 300
    assert found == payloads(len(found))
    assert spool.corrupt_records == 0
