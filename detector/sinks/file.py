"""Alerts as JSON lines in a file (``ciwatch replay --alerts-out``), fsynced on flush.

Not only regular files: ``/dev/null``, ``/dev/stdout`` or a pipe work too (they
are not fsynced, there is nothing to sync). A write that fails (a full disk)
ends the command with one line naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import orjson

from detector.alerts.model import Alert
from detector.detections import Severity
from detector.errors import ConfigError
from detector.sinks.base import Sink

__all__ = ["JsonlFileSink"]


class JsonlFileSink(Sink):
    """Appends one JSON object per alert (``Alert.to_dict``) to ``path``.

    ``truncate`` starts the file empty, which replay wants so that running it
    twice gives the same file.
    """

    name = "file"

    def __init__(
        self, path: Path, *, truncate: bool = False, min_severity: Severity = Severity.INFO
    ) -> None:
        super().__init__(min_severity=min_severity)
        self.path = path
        try:
            self._handle = path.open("wb" if truncate else "ab")
            # fsync fails on devices and pipes (EINVAL): only a regular file needs it.
            self._durable = stat.S_ISREG(os.fstat(self._handle.fileno()).st_mode)
        except OSError as exc:
            raise ConfigError(f"cannot write alerts: {exc.strerror}", where=str(path)) from None

    def send(self, batch: Sequence[Alert]) -> None:
        try:
            self._handle.write(b"".join(orjson.dumps(a.to_dict()) + b"\n" for a in batch))
        except OSError as exc:
            raise self._write_error(exc) from None

    def flush(self) -> None:
        try:
            self._handle.flush()
            if self._durable:
                os.fsync(self._handle.fileno())
        except OSError as exc:
            raise self._write_error(exc) from None

    def close(self) -> None:
        try:
            self._handle.close()
        except OSError as exc:  # the last buffered alerts did not reach the file
            raise self._write_error(exc) from None

    def _write_error(self, exc: OSError) -> ConfigError:
        return ConfigError(f"cannot write alerts: {exc.strerror}", where=str(self.path))
