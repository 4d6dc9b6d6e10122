"""``ciwatch normalize`` end to end, in process: stdout events, dead letters, summary, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main

GOOD = b'{"@timestamp": 1606929874512, "action": "team.add_member", "actor": "octocat"}'


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(GOOD + b"\n{broken\n" + b'{"action": "repo.create", "actor": "a"}\n')
    return path


def test_normalize_writes_events_and_a_summary(
    events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["normalize", str(events_file)]) == 0
    out, err = capsys.readouterr()
    [event] = [json.loads(line) for line in out.splitlines()]
    assert event["actor"] == "octocat"
    assert event["time"] == "2020-12-02T17:24:34.512000Z"
    assert event["position"] == f"{events_file}:1"
    assert "raw" not in event
    assert err.splitlines()[-1] == "1 events, 2 dead letters (invalid_json: 1, missing_time: 1)"
    assert f"dead letter: invalid_json at {events_file}:2:" in err


def test_dead_letters_go_to_a_file_as_jsonl(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_path = tmp_path / "dead.jsonl"
    assert main(["normalize", str(events_file), "--dead-letters", str(dead_path)]) == 0
    dead = [json.loads(line) for line in dead_path.read_text().splitlines()]
    assert [(d["reason"], d["position"]) for d in dead] == [
        ("invalid_json", f"{events_file}:2"),
        ("missing_time", f"{events_file}:3"),
    ]
    assert dead[0]["excerpt"] == "{broken"
    assert "dead letter:" not in capsys.readouterr().err


def test_with_raw_includes_the_vendor_object(
    events_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["normalize", "--with-raw", str(events_file)])
    event = json.loads(capsys.readouterr().out.splitlines()[0])
    assert event["raw"] == json.loads(GOOD)


def test_a_missing_file_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["normalize", "/nonexistent/x.jsonl"]) == 2
    assert capsys.readouterr().err == "ciwatch: error: /nonexistent/x.jsonl: no such file\n"


def test_a_bad_taxonomy_dir_is_one_line_and_exit_2(
    events_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text("actions: {x: nonsense}\nsource: github_audit\n")
    assert main(["normalize", str(events_file), "--taxonomy", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ciwatch: error: {tmp_path / 'bad.yaml'}: actions.x")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "normalize" in capsys.readouterr().out
