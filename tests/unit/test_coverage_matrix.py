"""The coverage matrix (docs/coverage.yaml → docs/coverage.md) stays true to the rule pack."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import Rule

ROOT = Path(__file__).resolve().parents[2]


def _load_renderer() -> ModuleType:
    # docs/ is not a package (documentation tooling is not shipped), so load the file itself.
    spec = importlib.util.spec_from_file_location(
        "coverage_renderer", ROOT / "docs" / "coverage.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


coverage = _load_renderer()


@pytest.fixture(scope="module")
def matrix() -> Any:
    return coverage.load_matrix()


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    return {rule.id: rule for rule in load_rules([bundled_rules_dir()])}


def test_every_ciwatch_rule_named_in_the_matrix_exists(matrix: Any, rules: dict[str, Rule]) -> None:
    named = {rule for row in matrix.rows for rule in row.rules}
    assert sorted(named - set(rules)) == []


def test_every_model_family_named_in_the_matrix_is_described(matrix: Any) -> None:
    named = {model for row in matrix.rows for model in row.models}
    assert sorted(named - set(matrix.models)) == []


def test_every_covering_rule_has_an_embedded_test_that_alerts(
    matrix: Any, rules: dict[str, Rule]
) -> None:
    named = {rule for row in matrix.rows for rule in row.rules}
    untested = [
        rule
        for rule in sorted(named & set(rules))
        if not any(case.alerts for case in rules[rule].tests)
    ]
    assert untested == []


def test_every_test_the_matrix_names_exists(matrix: Any) -> None:
    named = [test for row in matrix.rows for test in row.test]
    named += [about["test"] for about in matrix.models.values()]
    missing = []
    for test in named:
        path, _, function = test.strip("`").split("`")[0].partition("::")
        file = ROOT / path
        if not file.is_file() or (
            function and f"def {function}(" not in file.read_text(encoding="utf-8")
        ):
            missing.append(test)
    assert missing == []


def test_every_bundled_rule_appears_in_at_least_one_row(
    matrix: Any, rules: dict[str, Rule]
) -> None:
    named = {rule for row in matrix.rows for rule in row.rules}
    assert sorted(set(rules) - named) == []


def test_coverage_md_is_exactly_what_the_renderer_produces(matrix: Any) -> None:
    expected = coverage.render(matrix, coverage.rule_files_by_id())
    assert (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8") == expected, (
        "docs/coverage.md is stale: run python3 docs/coverage.py"
    )


def test_a_row_with_both_covered_by_and_gap_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "coverage.yaml"
    bad.write_text(
        "libraries: {sigma: {title: S, short: S, link: 'x/{path}', scope: s}}\n"
        "models: {}\nlog_types: {cloudtrail: {title: C}}\n"
        "rows:\n- {log_type: cloudtrail, tactic: impact,"
        " references: [{library: sigma, name: n, path: p}],"
        " covered_by: [aws-root-sign-in], gap: why}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"rows\[0\]: give exactly one of covered_by and gap"):
        coverage.load_matrix(bad)
