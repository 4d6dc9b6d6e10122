"""The checkpoint's large parts written a line at a time and read back lazily: the state a
pipeline restores from it is the state it was saved from, version 1 files still load, and a
damaged or replaced file is found out, not restored from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.checkpoint import CHECKPOINT_FORMAT, Checkpoint
from detector.config import load_config
from detector.daemon import Daemon
from detector.errors import ConfigError
from detector.events.model import Event
from detector.pipeline import Pipeline
from detector.streamed import Section, StreamedArray, StreamedObject, split_sections

OFFSETS = {("audit", 0): 1_204, ("audit", 1): 17}


@pytest.fixture(scope="module")
def pipeline(world_events: list[Event]) -> Pipeline:
    """The bundled rules and models over a generated world: actors, IPs, targets, estimates."""
    pipeline = Pipeline.from_config(load_config(None))
    for start in range(0, len(world_events), 500):
        pipeline.detect(world_events[start : start + 500])
    return pipeline


def plain(state: Any) -> Any:
    """``state`` with every streamed part read, as a restore reads it."""
    if isinstance(state, StreamedObject | dict):
        return {key: plain(value) for key, value in state.items()}
    if isinstance(state, StreamedArray | list):
        return [plain(value) for value in state]
    return state


def test_a_pipeline_restored_from_a_streamed_checkpoint_has_the_state_it_was_saved_from(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    checkpoint = Checkpoint(tmp_path)
    written = checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    assert written == checkpoint.path.stat().st_size
    loaded = checkpoint.load()
    assert loaded is not None
    state, offsets = loaded
    assert offsets == OFFSETS
    features = state["features"]
    assert isinstance(features["actors"], StreamedObject)  # read when restored, not loaded
    assert len(features["actors"]) == pipeline.features.key_counts["actor"] > 20
    restored = Pipeline.from_config(load_config(None))
    restored.restore(state)
    assert restored.snapshot() == pipeline.snapshot()
    assert plain(state) == orjson.loads(orjson.dumps(pipeline.snapshot()))


def test_the_file_is_a_header_a_line_per_entry_of_each_section_and_an_index(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    checkpoint = Checkpoint(tmp_path)
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    data = checkpoint.path.read_bytes()
    lines = data.splitlines(keepends=True)
    assert orjson.loads(lines[0]) == {"format": CHECKPOINT_FORMAT, "version": 2}
    index = orjson.loads(lines[-1])
    paths = [tuple(entry["path"]) for entry in index["sections"]]
    assert paths == [
        ("features", "actors"),
        ("features", "ips"),
        ("features", "targets"),
        ("anomaly_actors", "tracks"),
    ]
    snapshot = pipeline.snapshot()
    for entry in index["sections"]:
        section = data[entry["start"] : entry["end"]].splitlines()
        assert len(section) == entry["count"]
        whole = snapshot[entry["path"][0]][entry["path"][1]]
        read = [orjson.loads(line) for line in section]
        assert (dict(read) if entry["object"] else read) == orjson.loads(orjson.dumps(whole))
    assert index["pipeline"]["features"]["actors"] is None  # in its section, not here


def test_a_version_1_checkpoint_still_loads(tmp_path: Path, pipeline: Pipeline) -> None:
    snapshot = pipeline.snapshot()
    document = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "offsets": [{"topic": "audit", "partition": 0, "offset": 1_204}],
        "pipeline": snapshot,
    }
    checkpoint = Checkpoint(tmp_path)
    checkpoint.path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    assert checkpoint.load() == (orjson.loads(orjson.dumps(snapshot)), {("audit", 0): 1_204})


def saved_twice(directory: Path, pipeline: Pipeline, lines: list[str]) -> Checkpoint:
    checkpoint = Checkpoint(directory, log=lines.append)
    checkpoint.save({"version": 1, "note": "first"}, {("audit", 0): 5})
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    return checkpoint


def restored_by(checkpoint: Checkpoint) -> tuple[Any, Any]:
    """The state and offsets :meth:`Checkpoint.restore` applies, every section read."""
    applied: list[Any] = []
    offsets = checkpoint.restore(lambda state: applied.append(plain(state)))
    return applied[-1], offsets


def damage_line(path: Path, number: int, replacement: bytes) -> None:
    """Line ``number`` of the file replaced, padded with spaces to its length: the other
    lines stay where the index says they are."""
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number] = replacement.ljust(len(lines[number]) - 1) + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    "damage",
    [b'["alice", {"first": 1', b"not json", b"[1, 2, 3]", b"[7, {}]"],
    ids=["cut", "not-json", "not-a-pair", "not-a-key"],
)
def test_a_damaged_section_line_falls_back_to_the_previous_checkpoint(
    tmp_path: Path, pipeline: Pipeline, damage: bytes
) -> None:
    lines: list[str] = []
    checkpoint = saved_twice(tmp_path, pipeline, lines)
    damage_line(checkpoint.path, 1, damage)  # the first actor's line
    assert restored_by(checkpoint) == ({"version": 1, "note": "first"}, {("audit", 0): 5})
    [line] = [line for line in lines if "previous checkpoint" in line]
    assert f"{checkpoint.path}: section features.actors: " in line


def test_a_daemon_restores_the_previous_checkpoint_when_a_section_is_damaged(
    tmp_path: Path, world_events: list[Event]
) -> None:
    config = tmp_path / "ciwatch.yaml"
    config.write_text(f"models: {{enabled: false}}\nservice: {{state_dir: {tmp_path}}}\n")
    lines: list[str] = []
    daemon = Daemon(load_config(config), [], log=lines.append)
    checkpoint = daemon.checkpoint
    assert checkpoint is not None
    before = daemon.pipeline.snapshot()
    checkpoint.save(daemon.pipeline.snapshot(streamed=True), {("audit", 0): 5})
    daemon.pipeline.detect(world_events[:2_000])
    checkpoint.save(daemon.pipeline.snapshot(streamed=True), OFFSETS)
    damage_line(checkpoint.path, 1, b"not json")
    restarted = Daemon(load_config(config), [], log=lines.append)
    assert restarted._restore() == {("audit", 0): 5}
    assert restarted.pipeline.snapshot() == before
    [line] = [line for line in lines if "previous checkpoint" in line]
    damaged = f"{checkpoint.path}: damaged checkpoint: section features.actors: line 1"
    assert line.startswith(damaged) and line.count(f"{checkpoint.path}:") == 1
    assert line.endswith(f"using the previous checkpoint {checkpoint.previous}")
    assert "\n" not in line


def rewrite_index(path: Path, index: dict[str, Any]) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + orjson.dumps(index) + b"\n")


@pytest.mark.parametrize(
    "entry",
    [
        {"path": ["features", "actors"], "object": True, "start": 0, "end": 10, "count": 1},
        {"path": ["features", "nowhere", "x"], "object": True, "start": 50, "end": 60, "count": 1},
        {"path": ["version"], "object": False, "start": 50, "end": 60, "count": 1},
        {"path": ["features", "actors"], "object": True, "start": 60, "end": 50, "count": 1},
        {"path": [], "object": True, "start": 50, "end": 60, "count": 1},
        {"path": ["features", "actors"], "object": "yes", "start": 50, "end": 60, "count": 1},
        [1, 2],
    ],
)
def test_an_index_entry_that_does_not_fit_the_file_is_a_damaged_checkpoint(
    tmp_path: Path, pipeline: Pipeline, entry: object
) -> None:
    checkpoint = Checkpoint(tmp_path)
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    index = orjson.loads(checkpoint.path.read_bytes().splitlines()[-1])
    index["sections"][0] = entry
    rewrite_index(checkpoint.path, index)
    with pytest.raises(ConfigError, match=r"damaged checkpoint: sections\[0\]") as raised:
        checkpoint.load()
    assert raised.value.where == str(checkpoint.path)


def test_a_section_whose_lines_do_not_add_up_to_the_index_is_damaged(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    checkpoint = Checkpoint(tmp_path)
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    index = orjson.loads(checkpoint.path.read_bytes().splitlines()[-1])
    index["sections"][1]["count"] += 1
    rewrite_index(checkpoint.path, index)
    loaded = checkpoint.load()
    assert loaded is not None
    with pytest.raises(ConfigError, match=r"section features\.ips: \d+ lines, the index says"):
        dict(loaded[0]["features"]["ips"].items())


def saved_and_loaded(directory: Path, pipeline: Pipeline) -> tuple[Checkpoint, dict[str, Any]]:
    checkpoint = Checkpoint(directory)
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)
    loaded = checkpoint.load()
    assert loaded is not None
    return checkpoint, loaded[0]


def test_a_file_replaced_after_it_was_loaded_is_not_read_as_the_same(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    checkpoint, state = saved_and_loaded(tmp_path, pipeline)
    checkpoint.save(pipeline.snapshot(streamed=True), OFFSETS)  # the same bytes, a new file
    with pytest.raises(ConfigError, match="the file changed while it was read"):
        list(state["features"]["actors"])


def test_a_file_removed_after_it_was_loaded_is_one_line_naming_it(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    checkpoint, state = saved_and_loaded(tmp_path, pipeline)
    checkpoint.path.unlink()
    with pytest.raises(ConfigError, match=r"section features\.targets: cannot read it") as raised:
        list(state["features"]["targets"])
    assert raised.value.where == str(checkpoint.path)


def test_a_section_is_made_while_it_is_written_a_few_hundred_entries_at_a_time() -> None:
    made: list[int] = []

    def entries() -> Iterator[tuple[str, int]]:
        for number in range(2_000):
            made.append(number)
            yield f"actor-{number}", number

    section = Section.of_pairs(entries)
    assert not made  # nothing is read before it is written
    written = 0
    for chunk, count in section.lines():
        written += count
        assert len(made) == written <= 2_000  # never more made than written so far
        assert chunk.count(b"\n") == count <= 500
    assert written == 2_000


def test_split_sections_leaves_none_where_each_section_was() -> None:
    section = Section.of_items(lambda: iter([1, 2]))
    skeleton, found = split_sections({"a": {"b": section, "c": [1]}, "d": 2})
    assert skeleton == {"a": {"b": None, "c": [1]}, "d": 2}
    assert found == [(("a", "b"), section)]
