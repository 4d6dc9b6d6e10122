"""Loading rule packs: what loads, and load errors naming file, rule and field in one line."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from detector.detections import Severity
from detector.errors import RuleError
from detector.rules import RuleKind, bundled_rules_dir, load_rules
from detector.rules import loader as loader_module
from detector.rules.loader import rule_files

GOOD = """\
- id: okta-brute-force
  title: Brute force against one Okta user
  kind: threshold
  severity: high
  description: Many failed sign-ins for one user.
  tags: [attack.credential_access, attack.t1110.001]
  runbook: |
    Check the source addresses.
  where:
    source: okta_system_log
    category: authentication
    outcome: failure
  unless:
    - actor_type: service
  threshold:
    window: 10m
    count: 10
  summary: "{actor} failed to sign in {count} times in {window} from {distinct_ips} addresses"
  tests:
    - name: ten failures in two minutes
      alerts: 1
      events:
        - {source: okta_system_log, action: user.session.start, actor: alice,
           outcome: failure, repeat: 10, every: 12s}
"""


def write(directory: Path, name: str, rules_yaml: str) -> Path:
    path = directory / name
    body = "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  ")
    path.write_text(body, encoding="utf-8")
    return path


def load_error(directory: Path, rules_yaml: str, name: str = "pack.yaml") -> RuleError:
    path = write(directory, name, rules_yaml)
    with pytest.raises(RuleError) as caught:
        load_rules([path])
    error = caught.value
    assert "\n" not in str(error), "load errors render as one line"
    return error


def assert_where(error: RuleError, path: Path, rest: str) -> None:
    """``where`` is ``path:line: rest`` (exact lines: test_load_errors_lines.py)."""
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: {re.escape(rest)}", str(error.where)), (
        error.where
    )


def test_a_complete_rule_loads_with_its_fields(tmp_path: Path) -> None:
    (rule,) = load_rules([write(tmp_path, "identity.yaml", GOOD)])
    assert rule.id == "okta-brute-force"
    assert rule.kind is RuleKind.THRESHOLD
    assert rule.severity is Severity.HIGH
    assert rule.threshold is not None
    assert rule.threshold.window == timedelta(minutes=10)
    assert rule.threshold.count == 10
    assert rule.group_by == ("actor",)
    assert rule.suppress == timedelta(hours=1)
    assert rule.enabled
    assert rule.tags == ("attack.credential_access", "attack.t1110.001")
    assert rule.origin == str(tmp_path / "identity.yaml")
    (test,) = rule.tests
    assert test.alerts == 1
    assert test.events[0].repeat == 10
    assert test.events[0].every == timedelta(seconds=12)


def test_directories_load_yaml_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", GOOD.replace("okta-brute-force", "second"))
    write(tmp_path, "a.yml", GOOD.replace("okta-brute-force", "first"))
    (tmp_path / "notes.txt").write_text("not a rule pack")
    assert [rule.id for rule in load_rules([tmp_path])] == ["first", "second"]


def test_empty_files_and_directories_hold_no_rules(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "none.yaml").write_text("rules: []\n")
    assert load_rules([tmp_path]) == []
    assert load_rules([]) == []


def test_a_missing_bundled_pack_directory_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "pipelines" / "rules"
    monkeypatch.setattr(loader_module, "bundled_rules_dir", lambda: missing)
    assert load_rules([missing]) == []


def test_the_bundled_pack_loads() -> None:
    for rule in load_rules([bundled_rules_dir()]):
        assert rule.origin.startswith(str(bundled_rules_dir()))


def test_any_other_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such file") as caught:
        load_rules([tmp_path / "nope.yaml"])
    assert caught.value.where == str(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("severity: high", "severity: urgent"), "severity", "Input should be"),
        (("kind: threshold", "kind: count"), "kind", "Input should be"),
        (("  count: 10", "  count: ten"), "threshold.count", "integer"),
        (("  count: 10", "  count: 0"), "threshold.count", "greater than or equal to 1"),
        (("  window: 10m", "  window: 10x"), "threshold.window", "invalid duration '10x'"),
        (("  window: 10m", "  window: soon"), "threshold.window", "invalid duration"),
        (("  count: 10", "  count: 10\n    colour: red"), "threshold.colour", "unknown key"),
    ],
)
def test_field_errors_name_file_rule_and_field(
    tmp_path: Path, change: tuple[str, str], field: str, message: str
) -> None:
    text = GOOD.replace(*change)
    error = load_error(tmp_path, text)
    assert_where(error, tmp_path / "pack.yaml", f"rule okta-brute-force: {field}")
    assert message in error.message


def _with(extra: str, *, drop: str = "") -> str:
    text = GOOD if not drop else GOOD.replace(drop, "")
    return text + textwrap.indent(textwrap.dedent(extra), "  ")


RULE_ERRORS = [
    (_with("colour: red\n"), "colour", "unknown key"),
    (_with("group_by: [actr]\n"), "group_by[0]", "unknown field 'actr'"),
    (_with("suppress: 1 hour\n"), "suppress", "invalid duration"),
    (_with("unless_change_window: maybe\n"), "unless_change_window", "boolean"),
    (_with("tags: attack.t1110\n"), "tags", "tuple"),
    (_with("summary: '{actor} did {nonsense}'\n"), "summary", "{nonsense}"),
    (_with("summary: '{0} failed'\n"), "summary", "need a name"),
    (_with("new_value: {field: country}\n"), "new_value", "only allowed with kind"),
    (
        GOOD.replace("    source: okta_system_log", "    actr: alice"),
        "where.actr",
        "unknown field",
    ),
    (
        GOOD.replace("    outcome: failure", "    outcome: {regex: '(failure'}"),
        "where.outcome.regex",
        "bad regex",
    ),
    (
        GOOD.replace("    outcome: failure", "    outcome: {regex: {pattern: '(?<f'}}"),
        "where.outcome.regex.pattern",
        "bad regex",
    ),
    (
        GOOD.replace("    outcome: failure", "    outcome: {regex: {pattern: f, max_length: 0}}"),
        "where.outcome.regex.max_length",
        "at least 1",
    ),
    (
        GOOD.replace("    outcome: failure", "    outcome: {matches: failure}"),
        "where.outcome",
        "unknown operator 'matches'",
    ),
    (
        GOOD.replace("    - actor_type: service", "    - actor_type: {glob: 5}"),
        "unless[0].actor_type.glob",
        "non-empty string",
    ),
    (
        GOOD.replace("    count: 10", "    distinct: {field: raw., count: 3}"),
        "threshold.distinct.field",
        "empty part",
    ),
    (
        GOOD.replace("    count: 10", "    count: 10\n    distinct: {field: ip, count: 3}"),
        "threshold",
        "exactly one of count or distinct",
    ),
    (GOOD.replace("  title: Brute force against one Okta user\n", ""), "title", "required"),
    (GOOD.replace("kind: threshold", "kind: match"), "threshold", "only allowed with kind"),
    (
        GOOD.replace("action: user.session.start, ", ""),
        "tests[0].events[0]",
        "needs source, action and actor",
    ),
    (
        GOOD.replace("repeat: 10, every: 12s", "repeat: 10, every: 12s, at: soon"),
        "tests[0].events[0].at",
        "invalid duration",
    ),
]


@pytest.mark.parametrize(
    ("rules_yaml", "field", "message"), RULE_ERRORS, ids=[case[1] for case in RULE_ERRORS]
)
def test_rule_errors_name_the_field(
    tmp_path: Path, rules_yaml: str, field: str, message: str
) -> None:
    error = load_error(tmp_path, rules_yaml)
    assert_where(error, tmp_path / "pack.yaml", f"rule okta-brute-force: {field}")
    assert message in error.message


def test_a_rule_without_a_valid_id_is_named_by_position(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD + GOOD.replace("id: okta-brute-force", "id: Bad_Id"))
    assert_where(error, tmp_path / "pack.yaml", "rule Bad_Id: id")
    error = load_error(tmp_path, GOOD.replace("- id: okta-brute-force\n  title", "- title"))
    assert_where(error, tmp_path / "pack.yaml", "rule #1: id")


def test_a_kind_without_its_block_names_the_block(tmp_path: Path) -> None:
    text = GOOD.replace("kind: threshold", "kind: sequence")
    error = load_error(tmp_path, text)
    assert str(error.where).endswith("rule okta-brute-force: sequence")
    assert "needs a sequence block" in error.message


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(RuleError) as caught:
        load_rules([first, second])
    assert_where(caught.value, second, "rule okta-brute-force: id")
    assert str(first) in caught.value.message


def test_a_directory_gives_its_yaml_and_yml_files_by_name_without_hidden_ones(
    tmp_path: Path,
) -> None:
    second = write(tmp_path, "b.yml", GOOD.replace("okta-brute-force", "second"))
    first = write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, ".#a.yaml", GOOD)  # an editor's lock file: same id, but skipped
    (tmp_path / "README.md").write_text("not a pack\n")
    assert rule_files([tmp_path]) == [first, second]
    assert [rule.id for rule in load_rules([tmp_path])] == ["okta-brute-force", "second"]


def test_new_value_fields_must_be_tracked(tmp_path: Path) -> None:
    text = """\
    - id: new-country
      title: New country
      kind: new_value
      severity: medium
      description: First sign-in from a country.
      new_value: {field: city}
    """
    path = write(tmp_path, "pack.yaml", text)
    with pytest.raises(RuleError, match="'city' is not a tracked field") as caught:
        load_rules([path])
    assert_where(caught.value, path, "rule new-country: new_value.field")
    (rule,) = load_rules([path], tracked=("city",))
    assert rule.new_value is not None and rule.new_value.field == "city"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rule:\n  - id: x\n", "unknown top-level key 'rule'"),
        ("- id: x\n", "expected a mapping with a 'rules' list"),
        ("rules: {id: x}\n", "'rules' must be a list"),
        ("rules: [\n", "not valid YAML"),
        ("rules:\n  - just a string\n", "each rule must be a mapping"),
    ],
)
def test_file_level_errors(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RuleError, match=message) as caught:
        load_rules([path])
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
