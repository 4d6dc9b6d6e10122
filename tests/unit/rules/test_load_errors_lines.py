"""Rule pack load errors name the line of the offending rule or key: ``pack.yaml:9: rule x: ...``.

Each case writes a small pack whose lines are numbered in the comments, breaks
one thing and checks the exact ``file:line: rule id: field`` and the problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.errors import RuleError
from detector.rules import Rule, load_rules
from detector.rules.loader import check_unique_ids, rule_location
from detector.yamlfile import key_path, line_of

# Line numbers, for reading the cases below.
PACK = """\
rules:
  - id: first-rule
    title: A match rule
    kind: match
    severity: low
    description: Repositories created.
    where:
      source: github_audit
      action: repo.create
      raw.repo.visibility: {in: [public, internal]}
    unless:
      - actor: {glob: "svc-*"}
    tests:
      - name: one repository
        alerts: 1
        events:
          - {source: github_audit, action: repo.create, actor: bob}
          - source: github_audit
            action: repo.create
            actor: carol
            at: +1m
  - id: second-rule
    title: A threshold rule
    kind: threshold
    severity: high
    description: Many failures.
    where: {source: okta_system_log, outcome: failure}
    threshold:
      window: 10m
      count: 5
"""
#  1 rules:                      12       - actor: {glob: "svc-*"}     23     title
#  2   - id: first-rule          13     tests:                         24     kind
#  3     title                   14       - name: one repository       25     severity
#  4     kind                    15         alerts: 1                  26     description
#  5     severity                16         events:                    27     where: {...}
#  6     description             17           - {source: ..., bob}     28     threshold:
#  7     where:                  18           - source: github_audit   29       window: 10m
#  8       source                19             action                 30       count: 5
#  9       action                20             actor: carol
# 10       raw.repo.visibility   21             at: +1m
# 11     unless:                 22   - id: second-rule


def load_error(tmp_path: Path, text: str, name: str = "pack.yaml") -> tuple[Path, RuleError]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    assert "\n" not in str(caught.value)
    return path, caught.value


def test_the_pack_as_written_loads(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    assert [rule.id for rule in load_rules([path])] == ["first-rule", "second-rule"]


CASES = [
    # (what, change (old, new), line, rule, field, problem)
    (
        "unknown key",
        ("    unless:\n", "    unles:\n"),
        11,
        "first-rule",
        "unles",
        "unknown key",
    ),
    (
        "unknown key nested",
        ("      count: 5\n", "      count: 5\n      colour: red\n"),
        31,
        "second-rule",
        "threshold.colour",
        "unknown key",
    ),
    ("bad value", ("severity: high", "severity: urgent"), 25, "second-rule", "severity", "high"),
    (
        "bad duration",
        ("window: 10m", "window: 10x"),
        29,
        "second-rule",
        "threshold.window",
        "invalid duration '10x'",
    ),
    (
        "bad matcher",
        ("action: repo.create\n      raw", "action: {matches: repo.create}\n      raw"),
        9,
        "first-rule",
        "where.action",
        "unknown operator 'matches'",
    ),
    (
        "bad matcher on a dotted key",
        ("{in: [public, internal]}", "{in: []}"),
        10,
        "first-rule",
        "where.raw.repo.visibility.in",
        "non-empty list",
    ),
    (
        "bad regex",
        ('{glob: "svc-*"}', "{regex: '(svc'}"),
        12,
        "first-rule",
        "unless[0].actor.regex",
        "bad regex",
    ),
    (
        "bad regex in a flow mapping",
        ("outcome: failure}", "outcome: {regex: '['}}"),
        27,
        "second-rule",
        "where.outcome.regex",
        "bad regex",
    ),
    (
        "missing required field: the rule's start line",
        ("    title: A threshold rule\n", ""),
        22,
        "second-rule",
        "title",
        "required",
    ),
    (
        "missing block: the rule's start line",
        ("    threshold:\n      window: 10m\n      count: 5\n", ""),
        22,
        "second-rule",
        "threshold",
        "needs a threshold block",
    ),
    (
        "bad embedded test event, flow style",
        ("actor: bob}", "actor: bob, repeat: 0}"),
        17,
        "first-rule",
        "tests[0].events[0].repeat",
        "greater than or equal to 1",
    ),
    (
        "bad embedded test event, block style",
        ("at: +1m", "at: soon"),
        21,
        "first-rule",
        "tests[0].events[1].at",
        "invalid duration",
    ),
    (
        "embedded test event missing a key: the event's line",
        ("            actor: carol\n", ""),
        18,
        "first-rule",
        "tests[0].events[1]",
        "needs source, action and actor",
    ),
    (
        "embedded test without alerts: the test's line",
        ("        alerts: 1\n", ""),
        14,
        "first-rule",
        "tests[0].alerts",
        "required",
    ),
]


@pytest.mark.parametrize(
    ("change", "line", "rule", "field", "problem"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_load_error_names_the_line(
    tmp_path: Path, change: tuple[str, str], line: int, rule: str, field: str, problem: str
) -> None:
    assert change[0] in PACK
    path, error = load_error(tmp_path, PACK.replace(*change, 1))
    assert error.where == f"{path}:{line}: rule {rule}: {field}"
    assert problem in error.message


def test_a_rule_that_is_not_a_mapping_names_its_line(tmp_path: Path) -> None:
    path, error = load_error(tmp_path, PACK + "  - just words\n")
    assert error.where == f"{path}:31: rule #3"
    assert error.message == "each rule must be a mapping"


def test_top_level_errors_name_their_line(tmp_path: Path) -> None:
    path, error = load_error(tmp_path, "# a pack\nrules: []\nrule:\n  - id: x\n")
    assert error.where == f"{path}:3"
    assert "unknown top-level key 'rule'" in error.message
    path, error = load_error(tmp_path, "\n\nrules: {id: x}\n")
    assert error.where == f"{path}:3: rules"


def test_a_duplicate_id_in_one_file_names_both_lines(tmp_path: Path) -> None:
    text = PACK.replace("id: second-rule", "id: first-rule")
    path, error = load_error(tmp_path, text)
    assert error.where == f"{path}:22: rule first-rule: id"
    assert error.message == f"duplicate rule id (first in {path}:2)"


def test_a_duplicate_id_across_files_names_both_files_and_lines(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text(PACK, encoding="utf-8")
    second = tmp_path / "b.yaml"
    second.write_text("# another pack\n\n" + PACK.replace("first-rule", "third-rule"))
    with pytest.raises(RuleError) as caught:
        load_rules([first, second])
    assert caught.value.where == f"{second}:24: rule second-rule: id"
    assert caught.value.message == f"duplicate rule id (first in {first}:22)"


def test_an_untracked_new_value_field_names_its_line(tmp_path: Path) -> None:
    text = PACK.replace(
        "    kind: threshold", "    kind: new_value\n    new_value:\n      field: city"
    ).replace("    threshold:\n      window: 10m\n      count: 5\n", "")
    path, error = load_error(tmp_path, text)
    assert error.where == f"{path}:26: rule second-rule: new_value.field"
    assert "'city' is not a tracked field" in error.message


def test_rules_built_in_code_have_no_file_to_name(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    rule = load_rules([path])[0]
    built = Rule.model_validate(rule.model_dump())  # a rule from code: no file
    assert rule_location(built) == "<rules>"
    with pytest.raises(RuleError) as caught:
        check_unique_ids([built, built])
    assert caught.value.where == "<rules>: rule first-rule: id"


def test_a_rule_file_changed_since_loading_falls_back_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    rule = load_rules([path])[0]
    path.write_text("rules: [\n", encoding="utf-8")
    assert rule_location(rule, ["where"]) == str(path)


@pytest.mark.parametrize(
    ("keys", "line"),
    [
        ("rules[0]", 2),
        ("rules[0].where.raw.repo.visibility", 10),
        ("rules[0].where.raw.repo.visibility.in", 10),
        ("rules[0].tests[0].events[1].actor", 20),
        ("rules[1].threshold.count", 30),
        ("rules[1].threshold.distinct", 28),  # missing: the key that should hold it
        ("rules[5]", 1),
    ],
)
def test_line_of_follows_keys_and_indexes(tmp_path: Path, keys: str, line: int) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(PACK, encoding="utf-8")
    assert line_of(path, key_path(keys)) == line
    assert line_of(tmp_path / "missing.yaml", ["rules"]) is None
