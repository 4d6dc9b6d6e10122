"""Alerts as JSON lines in a file (``ciwatch replay --alerts-out``), fsynced on flush."""

from __future__ import annotations

import os
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
        except OSError as exc:
            raise ConfigError(f"cannot write alerts: {exc.strerror}", where=str(path)) from None

    def send(self, batch: Sequence[Alert]) -> None:
        self._handle.write(b"".join(orjson.dumps(a.to_dict()) + b"\n" for a in batch))

    def flush(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()
