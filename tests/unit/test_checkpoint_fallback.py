"""Pipeline state of the wrong shape inside a checkpoint that parses: the daemon restores
``checkpoint.json.prev`` instead (one line logged) and fails in one line only when both
cannot be restored."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import load_config
from detector.daemon import Daemon
from detector.errors import ConfigError

WRONG_SHAPES = [{}, {"version": 1}, {"version": 1, "features": 3}]


def make_daemon(tmp_path: Path, lines: list[str]) -> Daemon:
    config_path = tmp_path / "ciwatch.yaml"
    state = tmp_path / "state"
    config_path.write_text(f"models: {{enabled: false}}\nservice: {{state_dir: {state}}}\n")
    return Daemon(load_config(config_path), [], log=lines.append)


@pytest.mark.parametrize("wrong", WRONG_SHAPES)
def test_wrong_shaped_state_falls_back_to_the_previous_checkpoint(
    tmp_path: Path, wrong: dict[str, object]
) -> None:
    lines: list[str] = []
    daemon = make_daemon(tmp_path, lines)
    checkpoint = daemon.checkpoint
    assert checkpoint is not None
    good = daemon.pipeline.snapshot()
    checkpoint.save(good, {("audit", 0): 5})
    checkpoint.save(wrong, {("audit", 0): 9})  # the previous one becomes .prev
    assert daemon._restore() == {("audit", 0): 5}
    assert daemon.pipeline.snapshot() == good
    [fallback] = [line for line in lines if "previous checkpoint" in line]
    assert str(checkpoint.path) in fallback and "damaged checkpoint" in fallback
    assert "\n" not in fallback
    assert f"from {checkpoint.previous}" in lines[-1]


@pytest.mark.parametrize("previous", [{"version": 1}, None, "missing"])
def test_both_unrestorable_is_one_line_naming_the_current(
    tmp_path: Path, previous: dict[str, object] | str | None
) -> None:
    daemon = make_daemon(tmp_path, [])
    checkpoint = daemon.checkpoint
    assert checkpoint is not None
    if isinstance(previous, dict):
        checkpoint.save(previous, {("audit", 0): 5})
    checkpoint.save({"version": 1, "features": 3}, {("audit", 0): 9})
    if previous is None:
        checkpoint.previous.write_bytes(b"not json")
    with pytest.raises(ConfigError, match="damaged checkpoint") as raised:
        daemon._restore()
    assert raised.value.where == str(checkpoint.path)
    assert "the previous checkpoint too: " in str(raised.value)  # both were tried
    assert "\n" not in str(raised.value)


def test_a_previous_used_already_by_load_is_not_tried_twice(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path, [])
    checkpoint = daemon.checkpoint
    assert checkpoint is not None
    checkpoint.save({"version": 1}, {("audit", 0): 5})
    checkpoint.save(daemon.pipeline.snapshot(), {("audit", 0): 9})
    checkpoint.path.write_bytes(b"{torn")  # load falls back to the wrong-shaped previous one
    with pytest.raises(ConfigError, match="damaged checkpoint") as raised:
        daemon._restore()
    assert raised.value.where == str(checkpoint.previous)
