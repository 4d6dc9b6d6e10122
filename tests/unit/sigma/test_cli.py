"""``ciwatch sigma convert`` and ``--rules DIR`` on replay, validate and test-rules.

The Sigma rules here were written for these tests (not copied from SigmaHQ).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detector.cli import main
from tests.samples import load_samples

STOP_LOGGING = """
title: Trail stopped by hand
id: 5d0c7a3e-9f1b-4c2a-8e6d-7b3a1c2d4e5f
author: ciwatch tests
logsource: {product: aws, service: cloudtrail}
detection:
  selection: {eventName: StopLogging}
  condition: selection
level: high
"""
KEYWORDS = """
title: Any mention of evil
logsource: {product: okta, service: okta}
detection:
  keywords: [evil]
  condition: keywords
level: low
"""
RULE_ID = "sigma-trail-stopped-by-hand-5d0c7a3e"


@pytest.fixture
def sigma_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sigma" / "aws"
    folder.mkdir(parents=True)
    (folder / "stop.yml").write_text(STOP_LOGGING)
    (tmp_path / "sigma" / "keywords.yaml").write_text(KEYWORDS)
    return tmp_path / "sigma"


def test_convert_writes_a_pack_and_lists_what_it_left_out(
    sigma_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pack"
    assert main(["sigma", "convert", str(sigma_dir), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "converted 1 of 2"
    assert any(
        line.startswith("not converted: ")
        and "keywords.yaml: Any mention of evil: keyword search" in line
        for line in lines
    )
    assert [path.name for path in out.iterdir()] == ["sigma-aws-cloudtrail.yaml"]
    assert main(["sigma", "convert", str(sigma_dir), "--out", str(out), "--strict"]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file or directory"),
        ("a: [unclosed", "not YAML"),
        ("- 1\n- 2", "not a Sigma rule"),
    ],
)
def test_convert_bad_input_is_one_line_and_exit_2(
    content: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.yml"
    if content is not None:
        source.write_text(content)
    out = tmp_path / "pack"
    assert main(["sigma", "convert", str(source), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ciwatch: error: ") and message in err and "\n" not in err
    assert not list(out.glob("*.yaml"))  # nothing half-written


def _convert(sigma_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "pack"
    assert main(["sigma", "convert", str(sigma_dir / "aws"), "--out", str(out)]) == 0
    return out


def test_validate_and_test_rules_load_the_extra_pack(
    sigma_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _convert(sigma_dir, tmp_path)
    capsys.readouterr()
    assert main(["validate"]) == 0
    bundled = int(capsys.readouterr().out.split()[1])
    assert main(["validate", "--rules", str(pack)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {bundled + 1} rules enabled")
    assert main(["test-rules", "--rules", str(pack), "--rule", RULE_ID]) == 0
    assert "(1 rules)" in capsys.readouterr().out
    assert main(["validate", "--rules", str(tmp_path / "missing")]) == 1


def test_replay_with_rules_alerts_on_a_published_record(
    sigma_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = _convert(sigma_dir, tmp_path)
    stopped = next(
        s.event
        for s in load_samples("cloudtrail")
        if isinstance(s.event, dict)
        and s.event.get("eventName") == "StopLogging"
        and "errorCode" not in s.event
        and s.event.get("eventTime")
    )
    records = tmp_path / "records.jsonl"
    records.write_text(json.dumps(stopped) + "\n")
    alerts = tmp_path / "alerts.jsonl"
    argv = [
        "replay",
        str(records),
        "--no-models",
        "--alerts-out",
        str(alerts),
        "--progress",
        "never",
    ]
    assert main([*argv, "--rules", str(pack)]) == 0
    rules = {json.loads(line)["rule"] for line in alerts.read_text().splitlines()}
    assert RULE_ID in rules
    assert main(argv) == 0
    assert RULE_ID not in {json.loads(line)["rule"] for line in alerts.read_text().splitlines()}
