"""A full disk without root: a file that is a symlink to ``/dev/full`` (the kernel's ``ENOSPC``)."""

from __future__ import annotations

from pathlib import Path


def on_full_device(path: Path) -> Path:
    """``path`` made a file on a full device: every write to it fails with ``ENOSPC``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/full")
    return path


def free(path: Path) -> None:
    """Space returns: ``path`` becomes an empty regular file."""
    path.unlink()
    path.touch()
