"""JSON Lines files (plain or gzip) as a source, read in the order given.

Used by ``ciwatch normalize`` and ``ciwatch replay``. Each non-blank line is one
record; its position is ``path:line``. A line longer than the record limit is
not held in memory: its first bytes are kept (so the normalizer dead-letters it
as ``too_large`` with an excerpt) and the rest skipped.
"""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO, cast

from detector.errors import SourceError
from detector.sources.base import Source
from detector.sources.record import Position, RawRecord

__all__ = ["FileSource"]

_GZIP_MAGIC = b"\x1f\x8b"
_SKIP_CHUNK = 1 << 16


class FileSource(Source):
    """Records from JSONL files; ``-`` reads standard input."""

    def __init__(self, paths: Sequence[str | Path], *, max_record_bytes: int = 1 << 20) -> None:
        if not paths:
            raise SourceError("no input files given")
        self._paths = [str(p) for p in paths]
        for path in self._paths:
            if path != "-" and not Path(path).is_file():
                raise SourceError("no such file", where=path)
        self._max = max_record_bytes
        self._records = self._read_all()
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def poll(self, max_records: int = 500, timeout_s: float = 1.0) -> list[RawRecord]:
        batch: list[RawRecord] = []
        for record in self._records:
            batch.append(record)
            if len(batch) >= max_records:
                return batch
        self._finished = True
        return batch

    def close(self) -> None:
        self._records.close()

    def _read_all(self) -> Generator[RawRecord, None, None]:
        for path in self._paths:
            with _open(path) as handle:
                try:
                    yield from self._read(path, handle)
                except (OSError, EOFError, zlib.error) as exc:
                    # A truncated or corrupt gzip stream: stop with the file named, not a traceback.
                    raise SourceError(f"cannot read: {exc}", where=path) from None

    def _read(self, path: str, handle: IO[bytes]) -> Generator[RawRecord, None, None]:
        line_number = 0
        while True:
            line = handle.readline(self._max + 1)
            if not line:
                return
            line_number += 1
            if len(line) > self._max and not line.endswith(b"\n"):
                _skip_rest_of_line(handle)
            value = line.strip()
            if value:
                yield RawRecord(value, Position(path, line_number))


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        with Path(path).open("rb") as probe:
            compressed = probe.read(2) == _GZIP_MAGIC
        if compressed:
            return cast(IO[bytes], gzip.open(path, "rb"))
        return Path(path).open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open: {exc.strerror or exc}", where=path) from None


def _skip_rest_of_line(handle: IO[bytes]) -> None:
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return
