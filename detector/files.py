"""Files replaced whole, atomically and durably: checkpoints, snapshots, models, acknowledgements.

One implementation of "write to a temporary file beside the target, fsync it,
rename it over the target, fsync the directory", so that a crash or a full
disk leaves readers the old content or the new, never a mix or nothing.
Append-only files (the spool's segments, JSON Lines outputs) are not written
this way.

Like :mod:`detector.errors`, this module sits above the data flow: any layer
may import it, and it imports nothing of ciwatch (docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["AtomicFile", "fsync_directory", "remove_stale_temporaries", "write_atomically"]

_TEMPORARY = ".tmp"  # the suffix of write_atomically's temporary files


def write_atomically(
    path: Path,
    payload: bytes | Iterable[bytes],
    *,
    keep: Path | None = None,
    mode: int | None = None,
) -> int:
    """Write ``payload`` to ``path`` so readers see the old content or the new, never a mix.

    ``payload``: the bytes, or their parts in order (a large file made while it
    is written). Returns the bytes written; :class:`AtomicFile` says how.

    >>> write_atomically(state_dir / "checkpoint.json", data, keep=previous)  # doctest: +SKIP
    """
    atomic = AtomicFile(path, keep=keep, mode=mode)
    try:
        for part in (payload,) if isinstance(payload, bytes) else payload:
            atomic.write(part)
    except BaseException:
        atomic.abandon()
        raise
    return atomic.commit()


class AtomicFile:
    """A file written a part at a time and put in place whole by :meth:`commit`.

    The bytes go to ``.<name>.<pid>.tmp`` in the same directory; :meth:`commit`
    fsyncs it, renames the old ``path`` to ``keep`` (if given: the previous
    version stays readable), renames the temporary file over ``path`` and
    fsyncs the directory, so the rename survives a power loss too. ``mode``
    sets the file's permissions (else the umask decides).

    Any error (``OSError``: a full disk) removes the temporary file and leaves
    ``path`` and ``keep`` as they were, as does :meth:`abandon`. A crash between
    the two renames leaves ``keep`` and no ``path``; a crash before them leaves
    a temporary file, which :func:`remove_stale_temporaries` clears. One writer
    per ``path`` at a time: the temporary file's name is the process's.
    """

    def __init__(self, path: Path, *, keep: Path | None = None, mode: int | None = None) -> None:
        self.path = path
        self.written = 0
        self._keep, self._mode = keep, mode
        self._temporary = path.with_name(f".{path.name}.{os.getpid()}{_TEMPORARY}")
        self._file = self._temporary.open("wb")

    def write(self, part: bytes) -> None:
        try:
            self.written += self._file.write(part)
        except BaseException:
            self.abandon()
            raise

    def commit(self) -> int:
        """Put the file in place, durably; the bytes written."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._mode is not None:
                self._temporary.chmod(self._mode)
            if self._keep is not None and self.path.exists():
                self.path.replace(self._keep)
            self._temporary.replace(self.path)
        except BaseException:
            self.abandon()
            raise
        fsync_directory(self.path.parent)
        return self.written

    def abandon(self) -> None:
        """Remove the temporary file: ``path`` stays as it was."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._temporary.unlink()


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files :func:`write_atomically` left for ``path`` (a crash); those.

    Call it at start-up, before writing: a temporary file of a live writer would go too.
    """
    stale = sorted(path.parent.glob(f".{path.name}.*{_TEMPORARY}"))
    for temporary in stale:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return stale


def fsync_directory(directory: Path) -> None:
    """Make the files created, renamed or deleted in ``directory`` survive a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
