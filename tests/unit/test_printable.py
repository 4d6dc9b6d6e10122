"""Control characters from input never reach a summary or the demo's terminal raw."""

from __future__ import annotations

import argparse

import pytest

from detector.cli import main
from detector.cli.generate import MAX_DAYS, MAX_SEED, check_world_options, world_ranges
from detector.demo.play import alert_line
from detector.demo.results import false_alert_lines
from detector.events.printable import MAX_TEXT, printable
from detector.generator import MAX_PEOPLE, MIN_DAYS, MIN_PEOPLE
from detector.rules import RuleEngine
from detector.scoring.explain import FeatureReason, describe
from tests.unit.rules.factories import event, obs, rule

HOSTILE = "eve\x00\x1b[31mroot\rmallory"
RAW = ("\x00", "\x1b", "\r")


def assert_clean(text: str) -> None:
    assert not any(char in text for char in RAW), repr(text)
    assert all(char.isprintable() for char in text), repr(text)


def test_printable_escapes_c0_c1_del_and_layout_controls_and_keeps_the_rest() -> None:
    assert printable(HOSTILE) == "eve\\x00\\x1b[31mroot\\rmallory".replace("\\r", "\\x0d")
    assert printable("a\tb\nc\x7fd\x85e\x9bf") == "a\\x09b\\x0ac\\x7fd\\x85e\\x9bf"
    assert printable("left\u202eright\u2028") == "left\\u202eright\\u2028"
    kept = "CORP\\alice  Zoë 山田 \u00a0ok"
    assert printable(kept) == kept


def test_printable_bounds_the_length_without_cutting_an_escape() -> None:
    assert len(printable("x" * 1000)) == MAX_TEXT
    assert printable("abcdef", limit=4) == "abc…"
    cut = printable("ab\x00\x00\x00", limit=8)
    assert cut == "ab\\x00…"  # the next escape would not fit whole
    assert len(printable("\x1b" * 500, limit=50)) <= 50


def test_a_rule_summary_escapes_an_actor_with_nul_escape_and_carriage_return() -> None:
    template = "{actor} did {action} on {attributes[repo]} with {user_agent}"
    engine = RuleEngine([rule("kind: match\nwhere: {source: okta_system_log}", summary=template)])
    observation = obs(actor=HOSTILE, attributes={"repo": "r\x1b[2Jx"})
    (detection,) = engine.evaluate(observation)
    assert_clean(detection.summary)
    assert detection.summary.startswith("eve\\x00\\x1b[31mroot\\x0dmallory did")
    assert "r\\x1b[2Jx" in detection.summary


def test_an_anomaly_explanation_escapes_the_actor_and_first_seen_values() -> None:
    reasons = [FeatureReason("actor.new.user_agent", 1.0, None, 0.0, 0.0, 3.0, 1.0)]
    sentence = describe(event(actor=HOSTILE), reasons, {"user_agent": "curl\x1b]0;pwned\x07"})
    assert_clean(sentence)
    assert sentence == (
        "eve\\x00\\x1b[31mroot\\x0dmallory: first time with this user_agent "
        "(curl\\x1b]0;pwned\\x07)"
    )


def test_the_demos_alert_line_escapes_every_field() -> None:
    alert = {
        "severity": "high\r",
        "kind": "rule",
        "rule": "x\x1b[Kr",
        "time": "2026-01-08T03:16:00Z",
        "summary": f"{HOSTILE} signed in",
    }
    line = alert_line(alert)
    assert_clean(line)
    assert "eve\\x00\\x1b[31mroot" in line and line.startswith("  ALERT high\\x0d")


def test_the_demo_names_its_false_alerts_escaped_and_bounded() -> None:
    alerts = [
        {"time": f"2026-01-08T03:{minute:02d}:00Z", "kind": "rule", "rule": "r", "actor": HOSTILE}
        for minute in range(25)
    ]
    lines = false_alert_lines(list(reversed(alerts)), shown=20)
    assert lines[0] == "false alerts (matching no attack):"
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"
    assert lines[1] == "  2026-01-08 03:00  rule r  eve\\x00\\x1b[31mroot\\x0dmallory"
    for line in lines:
        assert_clean(line)
    assert false_alert_lines([]) == []
    model = [{"time": "2026-01-08T03:00:00Z", "kind": "anomaly", "model": "m", "actor": "bob"}]
    assert false_alert_lines(model) == [lines[0], "  2026-01-08 03:00  anomaly m  bob"]


def test_generate_help_shows_the_valid_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"0 to {MAX_SEED}" in text
    assert f"{MIN_DAYS} to {MAX_DAYS}" in text
    assert f"{MIN_PEOPLE} to {MAX_PEOPLE}" in text


@pytest.mark.parametrize("command", ["generate", "demo"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--seed", "-1", f"seed: must be from 0 to {MAX_SEED}"),
        ("--seed", str(MAX_SEED + 1), f"seed: must be from 0 to {MAX_SEED}"),
        ("--days", str(MAX_DAYS + 1), f"days: must be from {MIN_DAYS} to {MAX_DAYS}"),
        ("--days", "2", f"days: must be from {MIN_DAYS} to {MAX_DAYS}"),
        ("--people", str(MAX_PEOPLE + 1), f"people: must be from {MIN_PEOPLE} to {MAX_PEOPLE}"),
    ],
)
def test_out_of_range_world_options_are_one_line(
    tmp_path: object, command: str, option: str, value: str, message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    extra = ["--out", str(tmp_path)] if command == "generate" else []
    assert main([command, *extra, option, value]) == 2
    assert capsys.readouterr().err == f"ciwatch: error: {message}\n"


def test_the_range_limits_themselves_are_accepted() -> None:
    for name, (low, high) in world_ranges().items():
        for value in (low, high):
            defaults = {"seed": 7, "days": MIN_DAYS, "people": MIN_PEOPLE}
            check_world_options(argparse.Namespace(**{**defaults, name: value}))
