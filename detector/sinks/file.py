"""Alerts as JSON lines in a file (``service.alerts_file``, ``ciwatch replay --alerts-out``).

``flush`` returns once every alert sent is in the file, fsynced. Not only
regular files: ``/dev/null``, ``/dev/stdout`` or a pipe work too (they are not
fsynced, there is nothing to sync).

A file that cannot be opened at start is a :class:`~detector.errors.ConfigError`
(one line naming it). A write or fsync that fails later (``ENOSPC``, ``EIO``)
raises :class:`AlertsFileError`, an ``OSError``: the daemon pauses consumption
on it (:mod:`detector.delivery`) and replay ends in one line. The alerts not
written stay in memory and the next ``flush`` writes them. It first reopens
the path (a file replaced meanwhile is written afresh) and, in the same
regular file, truncates back to where the failed write began, so a line is
neither torn nor written twice. Only alerts that reached a file which was then
replaced, or a device or pipe, may appear twice (their ids are stable:
readers deduplicate). Each failure counts in
``ciwatch_spool_write_errors_total{sink="file"}``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import orjson

from detector.alerts.model import Alert
from detector.detections import Severity
from detector.errors import ConfigError
from detector.metrics import Metrics
from detector.sinks.base import Sink

__all__ = ["AlertsFileError", "JsonlFileSink"]

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class AlertsFileError(OSError):
    """A write to the alerts file failed; ``filename`` names it. The alerts stay pending."""


class JsonlFileSink(Sink):
    """Appends one JSON object per alert (``Alert.to_dict``) to ``path``.

    ``truncate`` starts the file empty, which replay wants so that running it
    twice gives the same file. ``metrics`` counts failed writes.
    """

    name = "file"

    def __init__(
        self,
        path: Path,
        *,
        truncate: bool = False,
        min_severity: Severity = Severity.INFO,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(min_severity=min_severity)
        self.path = path
        self._metrics = metrics
        self._pending = bytearray()  # lines sent and not yet durable in the file
        self._written = 0  # how much of _pending the current descriptor has written
        self._start = 0  # the file's size before _pending's first byte was written
        self._identity: tuple[int, int] | None = None  # (device, inode) of the open file
        self._regular = False
        self._descriptor: int | None = None
        try:
            self._open(os.O_TRUNC if truncate else 0)
        except OSError as exc:
            raise ConfigError(f"cannot write alerts: {exc.strerror}", where=str(path)) from None

    @property
    def pending(self) -> int:
        """Bytes of alerts sent but not yet durably in the file."""
        return len(self._pending)

    def send(self, batch: Sequence[Alert]) -> None:
        self._pending += b"".join(orjson.dumps(alert.to_dict()) + b"\n" for alert in batch)

    def flush(self) -> None:
        """Write and fsync the pending lines; :class:`AlertsFileError` keeps them for next time."""
        if not self._pending:
            return
        try:
            descriptor = self._descriptor if self._descriptor is not None else self._reopen()
            if self._written == 0 and self._regular:
                self._start = os.fstat(descriptor).st_size
            with memoryview(self._pending) as view:  # released even on failure: _pending grows
                while self._written < len(view):
                    self._written += os.write(descriptor, view[self._written :])
            if self._regular:  # fsync fails on devices and pipes (EINVAL): nothing to sync there
                os.fsync(descriptor)
        except OSError as exc:
            self._failed()
            raise AlertsFileError(exc.errno, exc.strerror, str(self.path)) from None
        self._pending.clear()
        self._written = 0

    def close(self) -> None:
        """Close the file; alerts still pending were never flushed, so never committed either."""
        if self._descriptor is not None:
            descriptor, self._descriptor = self._descriptor, None
            with contextlib.suppress(OSError):  # what was flushed is fsynced already
                os.close(descriptor)

    def _open(self, extra_flags: int = 0) -> int:
        descriptor = os.open(self.path, _FLAGS | extra_flags, 0o644)
        try:
            status = os.fstat(descriptor)
        except OSError:
            os.close(descriptor)
            raise
        self._descriptor = descriptor
        self._identity = (status.st_dev, status.st_ino)
        self._regular = stat.S_ISREG(status.st_mode)
        return descriptor

    def _reopen(self) -> int:
        """Open the path again after a failure; undo that failure's partial write if it is here.

        In the same regular file the bytes written since ``_start`` may be torn
        or not durable (a failed fsync): they are cut off and written again. A
        device or pipe cannot be cut: what it took stays taken.
        """
        before, was_regular = self._identity, self._regular
        descriptor = self._open()
        same = self._identity == before
        if same and was_regular:
            os.ftruncate(descriptor, min(self._start, os.fstat(descriptor).st_size))
        if was_regular or not same:  # another file now: all of _pending goes into it
            self._written = 0
        return descriptor

    def _failed(self) -> None:
        """Count the failure and close the descriptor: the next flush reopens the path."""
        if self._metrics is not None:
            self._metrics.spool_write_errors.labels(self.name).inc()
        self.close()  # a close reporting the same failure changes nothing: we reopen anyway
