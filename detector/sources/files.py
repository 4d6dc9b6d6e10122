"""Files, directories and standard input as a source; framing detected per file.

Used by ``ciwatch normalize``, ``replay`` and ``train``. Paths are read in the
order given; ``-`` is standard input. A directory is walked recursively in
sorted path order, skipping hidden files and directories (names starting with
``.``), so an S3 export laid out as
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`` reads day by day.

Each file is decompressed by its content (gzip, zstd; streamed), a UTF-8 BOM is
dropped, then its framing is detected: JSON Lines, a JSON array of documents
(each element a record), concatenated objects, or one pretty-printed document
(see :mod:`detector.sources.framing.stream`). A record's position is
``path:line``, the line where it starts. Memory is bounded by the largest
record, not the file: past the record limit only the first bytes are kept (the
normalizer dead-letters them as ``too_large``) and the rest is skipped.

Bad input never stops the run: a file that ends inside a value, or whose gzip
or zstd stream is corrupt or cut short, yields a record the normalizer
dead-letters with why, and the next file is read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO

from detector.errors import SourceError
from detector.sources.base import Source
from detector.sources.framing import BadRecord, CompressionError, FramedStream, open_decompressed
from detector.sources.record import Position, RawRecord

__all__ = ["FileSource", "input_files"]


class FileSource(Source):
    """Records from files, directories (walked recursively) and ``-`` (standard input)."""

    def __init__(self, paths: Sequence[str | Path], *, max_record_bytes: int = 1 << 20) -> None:
        self._paths = input_files(paths)
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
            yield from self._read(path)

    def _read(self, path: str) -> Generator[RawRecord, None, None]:
        raw = _open(path)
        framed: FramedStream | None = None
        try:
            stream, _ = open_decompressed(raw)
            framed = FramedStream(stream, path, limit=self._max)
            yield from framed
        except (CompressionError, OSError) as exc:
            # A corrupt or truncated gzip/zstd stream (or a read error) costs this file only.
            line = framed.line if framed is not None else 1
            detail = f"cannot read: {exc}; the rest of this file is skipped"
            yield BadRecord(b"", Position(path, line), reason="invalid_json", detail=detail)
        finally:
            if raw is not sys.stdin.buffer:
                raw.close()


def input_files(paths: Sequence[str | Path]) -> list[str]:
    """The files to read for ``paths``: directories expanded, ``-`` kept, in order.

    Raises :class:`SourceError` naming the path for one that does not exist, a
    directory without a file to read, or no paths at all.
    """
    if not paths:
        raise SourceError("no input files given")
    found: list[str] = []
    for given in map(str, paths):
        if given == "-":
            found.append(given)
        elif Path(given).is_dir():
            inside = _walk(Path(given))
            if not inside:
                raise SourceError("no files in this directory (hidden ones skipped)", where=given)
            found.extend(inside)
        elif Path(given).exists():
            found.append(given)
        else:
            raise SourceError("no such file", where=given)
    return found


def _walk(root: Path) -> list[str]:
    """Every file under ``root`` but hidden ones, sorted by path component by component."""
    files: list[Path] = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".")]
        files.extend(Path(directory, n) for n in names if not n.startswith("."))
    return [str(f) for f in sorted(files, key=lambda f: f.relative_to(root).parts)]


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise SourceError(f"cannot open: {exc.strerror or exc}", where=path) from None
