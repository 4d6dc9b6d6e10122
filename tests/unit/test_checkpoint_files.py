"""The checkpoint on disk: atomic and durable writes, the previous one kept and used when the
current one is damaged, a crash's leftovers cleaned on start, a full disk survived."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from detector.checkpoint import Checkpoint
from detector.errors import ConfigError

STATE = {"version": 1, "note": "first"}


def saved_twice(directory: Path, lines: list[str] | None = None) -> Checkpoint:
    checkpoint = Checkpoint(directory, log=lines.append if lines is not None else None)
    checkpoint.save({"version": 1, "note": "first"}, {("audit", 0): 5})
    checkpoint.save({"version": 1, "note": "second"}, {("audit", 0): 9})
    return checkpoint


def test_the_previous_checkpoint_is_kept(tmp_path: Path) -> None:
    checkpoint = saved_twice(tmp_path)
    assert checkpoint.load() == ({"version": 1, "note": "second"}, {("audit", 0): 9})
    assert Checkpoint(tmp_path).path.with_name("checkpoint.json.prev").exists()
    checkpoint.path.unlink()  # as a crash between the two renames leaves it
    assert checkpoint.load() == ({"version": 1, "note": "first"}, {("audit", 0): 5})


@pytest.mark.parametrize("damage", [b'{"format": "ciwatch-checkpoint", "ver', b"", b"[1]"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_in_one_line(
    tmp_path: Path, damage: bytes
) -> None:
    lines: list[str] = []
    checkpoint = saved_twice(tmp_path, lines)
    checkpoint.path.write_bytes(damage)
    assert checkpoint.load() == ({"version": 1, "note": "first"}, {("audit", 0): 5})
    [line] = lines
    assert str(checkpoint.path) in line and "previous checkpoint" in line
    assert "\n" not in line


def test_both_damaged_is_the_one_line_error_of_the_current(tmp_path: Path) -> None:
    checkpoint = saved_twice(tmp_path)
    checkpoint.path.write_bytes(b"not json")
    checkpoint.previous.write_bytes(b"not json either")
    with pytest.raises(ConfigError, match="damaged checkpoint") as raised:
        checkpoint.load()
    assert raised.value.where == str(checkpoint.path)


def test_stale_temporary_files_of_a_crash_are_removed_on_start(tmp_path: Path) -> None:
    saved_twice(tmp_path)
    stale = tmp_path / ".checkpoint.json.4242.tmp"  # a writer killed before its rename
    stale.write_bytes(b"{half a checkp")
    other = tmp_path / "notes.tmp"  # not the checkpoint's: left alone
    other.write_bytes(b"x")
    lines: list[str] = []
    checkpoint = Checkpoint(tmp_path, log=lines.append)
    assert not stale.exists() and other.exists()
    assert len(lines) == 1 and "unfinished checkpoint" in lines[0]
    assert checkpoint.load() == ({"version": 1, "note": "second"}, {("audit", 0): 9})


def test_a_save_fsyncs_the_file_then_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{descriptor}").readlink()))
        real_fsync(descriptor)

    checkpoint = Checkpoint(tmp_path)
    monkeypatch.setattr(os, "fsync", fsync)
    checkpoint.save(STATE, {})
    assert synced[0].startswith(str(tmp_path / ".checkpoint.json."))  # the temporary file
    assert synced[-1] == str(tmp_path)  # the directory, so the rename is durable too


def test_a_full_disk_leaves_both_checkpoints_as_they_were(tmp_path: Path) -> None:
    checkpoint = saved_twice(tmp_path)
    before = (checkpoint.path.read_bytes(), checkpoint.previous.read_bytes())
    temporary = tmp_path / f".checkpoint.json.{os.getpid()}.tmp"
    temporary.symlink_to("/dev/full")  # the kernel's own ENOSPC for this write
    with pytest.raises(OSError) as raised:
        checkpoint.save({"version": 1, "note": "third"}, {("audit", 0): 12})
    assert raised.value.errno == errno.ENOSPC
    assert (checkpoint.path.read_bytes(), checkpoint.previous.read_bytes()) == before
    assert not temporary.exists() and not temporary.is_symlink()
