"""``ciwatch generate``: the files, their determinism, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detector.cli import main
from detector.generator import MAX_PEOPLE, MERGED, MIN_PEOPLE, SOURCES, generate, write


def run(out: Path, *options: str) -> int:
    return main(["generate", "--out", str(out), *options])


def contents(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_generate_writes_the_source_files_the_merged_file_and_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "--seed", "2", "--days", "3", "--people", "30") == 0
    expected = {f"{s}.jsonl" for s in SOURCES} | {MERGED, "labels.json"}
    assert set(contents(tmp_path)) == expected
    labels = orjson.loads((tmp_path / "labels.json").read_bytes())
    assert (labels["seed"], labels["days"], labels["people"]) == (2, 3, 30)
    merged = (tmp_path / MERGED).read_bytes().splitlines()
    assert len(merged) == labels["events"] == sum(labels["counts"].values())
    out = capsys.readouterr().out
    assert f"{labels['events']} events" in out and "5 behavioural attacks" in out


def test_the_same_options_give_the_same_bytes_as_the_library(tmp_path: Path) -> None:
    assert run(tmp_path / "a", "--seed", "4", "--days", "3", "--people", "25") == 0
    assert run(tmp_path / "b", "--seed", "4", "--days", "3", "--people", "25") == 0
    write(generate(seed=4, days=3, people=25), tmp_path / "c")
    first = contents(tmp_path / "a")
    assert first == contents(tmp_path / "b") == contents(tmp_path / "c")
    assert run(tmp_path / "d", "--seed", "4", "--days", "3", "--people", "26") == 0
    assert contents(tmp_path / "d")[MERGED] != first[MERGED]


def test_a_bad_option_value_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "--people", "5") == 2
    error = f"ciwatch: error: people: must be from {MIN_PEOPLE} to {MAX_PEOPLE}\n"
    assert capsys.readouterr().err == error
    assert list(tmp_path.iterdir()) == []


def test_no_attacks_keeps_the_look_alikes_and_drops_every_attack(tmp_path: Path) -> None:
    assert run(tmp_path, "--seed", "2", "--days", "3", "--no-attacks") == 0
    labels = orjson.loads((tmp_path / "labels.json").read_bytes())
    assert labels["attacks"] == []
    assert labels["benign"]
