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

__all__ = ["fsync_directory", "remove_stale_temporaries", "write_atomically"]

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
    is written). Returns the bytes written.

    The bytes go to ``.<name>.<pid>.tmp`` in the same directory and are
    fsynced; the old ``path`` is renamed to ``keep`` (if given: the previous
    version stays readable), the temporary file is renamed over ``path``, and
    the directory is fsynced, so the rename survives a power loss too.
    ``mode`` sets the file's permissions (else the umask decides).

    Any error (``OSError``: a full disk) removes the temporary file and leaves
    ``path`` and ``keep`` as they were. A crash between the two renames leaves
    ``keep`` and no ``path``; a crash before them leaves a temporary file, which
    :func:`remove_stale_temporaries` clears. One writer per ``path`` at a time:
    the temporary file's name is the process's.

    >>> write_atomically(state_dir / "checkpoint.json", data, keep=previous)  # doctest: +SKIP
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}{_TEMPORARY}")
    try:
        written = 0
        with temporary.open("wb") as file:
            for part in (payload,) if isinstance(payload, bytes) else payload:
                written += file.write(part)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            temporary.chmod(mode)
        if keep is not None and path.exists():
            path.replace(keep)
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(path.parent)
    return written


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
