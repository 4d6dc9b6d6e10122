"""A bounded, durable, in-order disk spool for payloads a sink cannot deliver yet.

The SIEM webhook sink spools here while the SIEM is down, so source offsets can
be committed and delivery catch up later without unbounded memory (the bar is
Vector's disk buffer). Records go to numbered segment files, framed as
``length | CRC32C(payload) | payload``. ``sync()`` fsyncs the segment (and the
directory after a segment was created), so records survive ``kill -9`` or power
loss. ``ack()`` writes the acknowledged position to a checkpoint file atomically
and durably and deletes segments wholly behind it: delivery is at-least-once.

On open a torn last record is truncated away, and a record failing its checksum
is skipped and counted in ``corrupt_records``. A damaged length field looks like
a torn tail and loses the rest of its segment: frames carry no resync marker.

A write that fails (``ENOSPC``, ``EIO``: an ``OSError`` from ``append`` or
``sync``) is rolled back: the segment is truncated to where it was, so the
records of that call are neither on disk nor counted, and the same spool can
be written again later (when space returns). An ``ack`` whose checkpoint
cannot be written stays in effect in memory and becomes durable with the next
one that can (until then a restart redelivers).

One owner per directory (a lock file refuses a second process); not thread-safe.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crc32c import crc32c

from detector.errors import CiwatchError, ConfigError
from detector.files import fsync_directory, remove_stale_temporaries, write_atomically

__all__ = ["DiskSpool", "SpoolFull", "SpoolPosition", "SpooledRecord"]

_HEADER = struct.Struct(">II")  # payload length, CRC32C of the payload
_POSITION = struct.Struct(">QQ")  # the checkpoint: segment, offset; then its CRC32C
_SUFFIX = ".seg"
_ACK = "ack"  # the checkpoint file: the acknowledged position


class SpoolFull(CiwatchError):  # noqa: N818  (reads as a state, like queue.Full)
    """Appending would exceed ``max_bytes``; nothing was written. Pause and retry after acks."""


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """A place in the spool: a segment number and a byte offset within it. Opaque to callers."""

    segment: int
    offset: int


@dataclass(frozen=True)
class SpooledRecord:
    """One payload read by ``peek``; ``ack(record.position)`` drops it and all before it."""

    payload: bytes
    position: SpoolPosition  # just past this record


class DiskSpool:
    """Payloads (opaque bytes) in append order, kept on disk under ``directory``.

    ``max_bytes`` bounds the bytes waiting (payloads plus 8 bytes of framing
    each); the disk may hold up to one more ``segment_bytes`` of acknowledged
    records until their segment fills up and is deleted.

    >>> spool = DiskSpool(path, max_bytes=64 << 20)   # doctest: +SKIP
    >>> spool.append([b'{"id": 1}']); spool.sync()    # doctest: +SKIP
    >>> batch = spool.peek(100)                       # doctest: +SKIP
    >>> deliver(batch); spool.ack(batch[-1].position) # doctest: +SKIP
    """

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int = 8 << 20) -> None:
        for key, value in (("max_bytes", max_bytes), ("segment_bytes", segment_bytes)):
            if value <= 0:
                raise ConfigError(f"must be positive, not {value}", where=f"spool {key}")
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.corrupt_records = 0
        try:
            if not directory.exists():
                directory.mkdir(parents=True)
                fsync_directory(directory.parent)
            self._lock = (directory / "lock").open("wb")
        except OSError as exc:
            raise ConfigError(f"cannot use spool: {exc.strerror}", where=str(directory)) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError("spool is in use by another process", where=str(directory)) from None
        with contextlib.suppress(OSError):  # what a crash mid-acknowledgement left; harmless
            remove_stale_temporaries(directory / _ACK)
        self._sizes: dict[int, int] = {}  # segment number -> bytes in it, oldest first
        self._acked = self._open_segments()
        # Unbuffered: a failed write is known at once, with how much of it reached the file.
        self._writer: BinaryIO | None = self._open_writer()
        self._synced = dict(self._sizes)  # segment sizes as of the last sync
        self._unsynced = 0  # records appended since then
        # The first sync also makes the directory entries of this open durable.
        self._directory_dirty = True
        # Everything before `_checked` has been verified and counted, so a corrupt
        # record is counted once however often it is read past.
        self._checked = self._acked
        self._depth = 0
        for _ in self._walk(self._acked):
            self._depth += 1  # a corrupt record, undone by _walk, nets zero

    @property
    def depth(self) -> int:
        """Records waiting to be acknowledged (corrupt ones excluded)."""
        return self._depth

    @property
    def bytes(self) -> int:
        """Bytes on disk waiting to be acknowledged, framing included."""
        later = sum(size for number, size in self._sizes.items() if number > self._acked.segment)
        return self._sizes[self._acked.segment] - self._acked.offset + later

    def append(self, payloads: Sequence[builtins.bytes]) -> None:
        """Append ``payloads`` in order; durable only after ``sync``.

        Raises :class:`SpoolFull`, writing nothing, if they do not fit in ``max_bytes``;
        on an ``OSError`` nothing of this call stays in the spool.
        """
        frames = [_HEADER.pack(len(p), crc32c(p)) + p for p in payloads]
        size = sum(len(frame) for frame in frames)
        if self.bytes + size > self.max_bytes:
            raise SpoolFull(
                f"{len(frames)} records of {size} bytes do not fit: {self.bytes} of "
                f"{self.max_bytes} bytes in use",
                where=str(self.directory),
            )
        before = dict(self._sizes)
        try:
            for frame in frames:
                if (
                    self._sizes[self._last]
                    and self._sizes[self._last] + len(frame) > self.segment_bytes
                ):
                    self._roll()
                self._write(frame)
        except OSError:
            self._roll_back(before)
            raise
        self._depth += len(frames)
        self._unsynced += len(frames)

    def sync(self) -> None:
        """Make every appended record survive a crash before returning.

        On an ``OSError`` the records appended since the last sync are dropped
        (the caller still holds them and may append them again).
        """
        try:
            os.fsync(self._writable().fileno())
            if self._directory_dirty:
                fsync_directory(self.directory)
                self._directory_dirty = False
        except OSError:
            self._depth -= self._unsynced
            self._roll_back(self._synced)
            raise
        self._synced = dict(self._sizes)
        self._unsynced = 0

    def peek(self, limit: int) -> list[SpooledRecord]:
        """Up to ``limit`` of the oldest unacknowledged records, oldest first."""
        records: list[SpooledRecord] = []
        if limit <= 0:
            return records
        for position, payload in self._walk(self._acked):
            if payload is not None:
                records.append(SpooledRecord(payload, position))
                if len(records) == limit:
                    break
        return records

    def ack(self, upto: int | SpoolPosition) -> None:
        """Drop the oldest ``upto`` records, or every record up to a ``SpooledRecord.position``.

        Durable when it returns. Raises ``ValueError`` for a count beyond
        ``depth`` or a position that is not a record boundary ahead.
        """
        if isinstance(upto, int) and upto < 0:
            raise ValueError(f"cannot acknowledge {upto} records")
        if upto == 0 or (isinstance(upto, SpoolPosition) and upto <= self._acked):
            return  # nothing new: acknowledging twice is harmless
        passed = 0
        target: SpoolPosition | None = None
        for position, payload in self._walk(self._acked):
            if payload is not None:
                passed += 1
            if passed == upto if isinstance(upto, int) else position >= upto:
                target = position
                break
        if target is None or (isinstance(upto, SpoolPosition) and target != upto):
            raise ValueError(f"cannot acknowledge up to {upto!r}: no such record waiting")
        self._depth -= passed
        self._acked = self._skip_finished(target)
        self._save_checkpoint(self._acked)  # on OSError: acknowledged in memory only, for now
        for number in [n for n in self._sizes if n < self._acked.segment]:
            del self._sizes[number]
            self._synced.pop(number, None)
            self._segment(number).unlink(missing_ok=True)

    def close(self) -> None:
        """Release the directory; call ``sync`` first for durability."""
        if self._writer is not None:
            self._writer.close()
        self._lock.close()

    @property
    def _last(self) -> int:
        return next(reversed(self._sizes))

    def _segment(self, number: int) -> Path:
        return self.directory / f"{number:020d}{_SUFFIX}"

    def _open_segments(self) -> SpoolPosition:
        """Load the segments and the checkpoint, repair the tail; the acknowledged position."""
        numbers = sorted(
            int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit()
        )
        acked = self._load_checkpoint() or SpoolPosition(numbers[0] if numbers else 0, 0)
        for number in numbers:
            if number < acked.segment:  # a crash between checkpoint and deletion
                self._segment(number).unlink()
            else:
                self._sizes[number] = self._segment(number).stat().st_size
        if not self._sizes:
            self._segment(acked.segment).touch()
            self._sizes[acked.segment] = 0
        if acked.segment not in self._sizes:
            acked = SpoolPosition(next(iter(self._sizes)), 0)
        valid = 0
        with self._segment(self._last).open("rb") as handle:
            for valid, _ in _frames(handle, 0, self._sizes[self._last]):  # noqa: B007
                pass
        if valid < self._sizes[self._last]:  # torn by a crash mid-append
            os.truncate(self._segment(self._last), valid)
            self._sizes[self._last] = valid
        if acked.offset > self._sizes[acked.segment]:
            # Acked records whose unsynced bytes were lost: start after what is left,
            # and say so on disk before new records reuse those offsets.
            acked = SpoolPosition(acked.segment, self._sizes[acked.segment])
            self._save_checkpoint(acked)
        return acked

    def _walk(self, start: SpoolPosition) -> Iterator[tuple[SpoolPosition, builtins.bytes | None]]:
        """Each record from ``start``: its end and its payload, or None if it is corrupt."""
        for number, size in list(self._sizes.items()):
            if number < start.segment:
                continue
            reached = start.offset if number == start.segment else 0
            with self._segment(number).open("rb") as handle:
                for end, payload in _frames(handle, reached, size):
                    reached = end
                    position = SpoolPosition(number, end)
                    if payload is None and position > self._checked:
                        self.corrupt_records += 1
                        self._depth -= 1  # counted when appended, never deliverable
                    self._checked = max(self._checked, position)
                    yield position, payload
            tail = SpoolPosition(number, size)
            if reached < size and tail > self._checked:  # bytes no frame covers: a bad length
                self.corrupt_records += 1
                self._checked = tail

    def _skip_finished(self, position: SpoolPosition) -> SpoolPosition:
        """Move a position at the end of an older segment to the start of the next."""
        later = [n for n in self._sizes if n > position.segment]
        if later and position.offset >= self._sizes[position.segment]:
            return SpoolPosition(later[0], 0)
        return position

    def _roll(self) -> None:
        """Start a new segment; the old one is fsynced first, so only the last can be torn."""
        os.fsync(self._writable().fileno())
        number = self._last + 1
        writer = self._segment(number).open("ab", buffering=0)
        self._close_writer()
        self._writer = writer
        self._sizes[number] = 0
        self._directory_dirty = True

    def _open_writer(self) -> BinaryIO:
        return self._segment(self._last).open("ab", buffering=0)

    def _writable(self) -> BinaryIO:
        """The last segment, open for appending (again, after a failed write closed it)."""
        if self._writer is None:
            self._writer = self._open_writer()
        return self._writer

    def _close_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(OSError):
                self._writer.close()
            self._writer = None

    def _write(self, frame: builtins.bytes) -> None:
        """Write all of ``frame`` to the last segment, counting each byte that reached it."""
        view = memoryview(frame)
        while view:
            written = self._writable().write(view) or 0
            self._sizes[self._last] += written
            view = view[written:]

    def _roll_back(self, sizes: dict[int, int]) -> None:
        """Cut the segments back to ``sizes`` after a failed write; newer segments go.

        The writer is closed and reopened on next use, so no half-written
        state survives in it. If truncating fails too, the torn tail is
        repaired when the spool is next opened (frames are checksummed).
        """
        self._close_writer()
        for number in [n for n in self._sizes if n not in sizes and n != min(self._sizes)]:
            del self._sizes[number]
            self._segment(number).unlink(missing_ok=True)
        for number, size in self._sizes.items():
            if size != sizes.get(number, 0):
                with contextlib.suppress(OSError):
                    os.truncate(self._segment(number), sizes.get(number, 0))
                self._sizes[number] = sizes.get(number, 0)
        self._unsynced = 0

    def _load_checkpoint(self) -> SpoolPosition | None:
        """The acknowledged position; None (start at the oldest record) if missing or damaged."""
        try:
            data = (self.directory / _ACK).read_bytes()
        except FileNotFoundError:
            return None
        body, checksum = data[: _POSITION.size], data[_POSITION.size :]
        if len(body) != _POSITION.size or checksum != crc32c(body).to_bytes(4, "big"):
            return None  # redelivery, never loss
        return SpoolPosition(*_POSITION.unpack(body))

    def _save_checkpoint(self, acked: SpoolPosition) -> None:
        """Write ``acked`` to the checkpoint file atomically (rename) and durably (fsync)."""
        body = _POSITION.pack(acked.segment, acked.offset)
        write_atomically(self.directory / _ACK, body + crc32c(body).to_bytes(4, "big"))


def _frames(handle: BinaryIO, offset: int, size: int) -> Iterator[tuple[int, bytes | None]]:
    """Whole frames from ``offset`` up to ``size``: each one's end and its payload if intact."""
    handle.seek(offset)
    while offset + _HEADER.size <= size:
        length, checksum = _HEADER.unpack(handle.read(_HEADER.size))
        end = offset + _HEADER.size + length
        if end > size:
            return  # torn, or a damaged length: nothing after it can be framed
        payload = handle.read(length)
        yield end, payload if crc32c(payload) == checksum else None
        offset = end
