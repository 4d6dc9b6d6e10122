"""Taxonomy files: precedence, overlays, automation globs, and one clear error per bad file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from detector.errors import TaxonomyError
from detector.events.model import Category
from detector.events.taxonomy import Classification, Taxonomy, bundled_taxonomy_dir

Writer = Callable[[str, str], Path]

BASE = """
source: vcs
default: config_change
actions:
  repo.create: code_access
  repo.destroy: {category: code_access, privileged: true}
patterns:
  - {match: "repo.*", category: code_access}
  - {match: "secret_?.*", category: secret_access}
  - {match: "*", category: other}
"""


@pytest.fixture
def write(tmp_path: Path) -> Writer:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def test_exact_entry_beats_pattern_and_pattern_beats_default(write: Writer) -> None:
    taxonomy = Taxonomy(
        [write("base.yaml", BASE.replace('  - {match: "*", category: other}\n', ""))]
    )
    assert taxonomy.classify("vcs", "repo.destroy") == Classification(Category.CODE_ACCESS, True)
    assert taxonomy.classify("vcs", "repo.rename") == Classification(Category.CODE_ACCESS)
    assert taxonomy.classify("vcs", "org.update") == Classification(Category.CONFIG_CHANGE)
    assert (taxonomy.covers("vcs", "repo.rename"), taxonomy.covers("vcs", "org.update")) == (
        True,
        False,
    )


def test_patterns_are_tried_in_file_order(write: Writer) -> None:
    taxonomy = Taxonomy([write("base.yaml", BASE)])
    assert taxonomy.classify("vcs", "repo.rename").category is Category.CODE_ACCESS
    assert taxonomy.classify("vcs", "org.update").category is Category.OTHER  # the "*" catch-all
    assert taxonomy.covers("vcs", "org.update")


def test_globs_are_anchored_and_only_star_and_question_mark_are_wild(write: Writer) -> None:
    taxonomy = Taxonomy([write("base.yaml", BASE)])
    assert taxonomy.classify("vcs", "secret_1.read").category is Category.SECRET_ACCESS
    # "?" is exactly one character; "." is literal, not a regex wildcard.
    assert taxonomy.classify("vcs", "secret_12.read").category is Category.OTHER
    assert taxonomy.classify("vcs", "secret_1xread").category is Category.OTHER
    assert taxonomy.classify("vcs", "myrepo.create").category is Category.OTHER


def test_unknown_source_and_unlisted_action_fall_back_to_other(write: Writer) -> None:
    taxonomy = Taxonomy([write("a.yaml", "source: vcs\nactions:\n  repo.create: code_access\n")])
    assert taxonomy.classify("vcs", "team.create") == Classification(Category.OTHER)
    assert taxonomy.classify("elsewhere", "repo.create") == Classification(Category.OTHER)
    assert not taxonomy.covers("elsewhere", "repo.create")
    assert taxonomy.sources == ["vcs"]


def test_later_file_pattern_overrides_earlier_pattern(write: Writer) -> None:
    overlay = """
source: vcs
patterns:
  - {match: "repo.*", category: pipeline, privileged: true}
"""
    taxonomy = Taxonomy([write("10-base.yaml", BASE), write("20-site.yaml", overlay)])
    assert taxonomy.classify("vcs", "repo.rename") == Classification(Category.PIPELINE, True)
    # Exact entries still come before every pattern, whichever file they are in.
    assert taxonomy.classify("vcs", "repo.create") == Classification(Category.CODE_ACCESS)


def test_later_file_exact_entry_and_default_override_earlier(write: Writer) -> None:
    overlay = """
source: vcs
default: other
actions:
  repo.destroy: code_access
"""
    base = BASE.replace('  - {match: "*", category: other}\n', "")
    taxonomy = Taxonomy([write("10-base.yaml", base), write("20-site.yaml", overlay)])
    assert taxonomy.classify("vcs", "repo.destroy") == Classification(Category.CODE_ACCESS)
    assert taxonomy.classify("vcs", "org.update") == Classification(Category.OTHER)
    assert taxonomy.classify("vcs", "repo.create") == Classification(Category.CODE_ACCESS)


def test_from_dirs_reads_directories_in_order_and_files_by_name(tmp_path: Path) -> None:
    first, second = tmp_path / "bundled", tmp_path / "site"
    first.mkdir()
    second.mkdir()
    (first / "b.yaml").write_text("source: vcs\nactions:\n  x: code_access\n", encoding="utf-8")
    (first / "a.yaml").write_text("source: vcs\nactions:\n  x: pipeline\n", encoding="utf-8")
    (first / "notes.txt").write_text("not: yaml we read", encoding="utf-8")
    taxonomy = Taxonomy.from_dirs([first])
    assert taxonomy.classify("vcs", "x").category is Category.CODE_ACCESS  # b.yaml after a.yaml
    (second / "a.yaml").write_text("source: vcs\nactions:\n  x: other\n", encoding="utf-8")
    assert Taxonomy.from_dirs([first, second]).classify("vcs", "x").category is Category.OTHER


def test_from_dirs_rejects_a_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(TaxonomyError, match="not a directory") as info:
        Taxonomy.from_dirs([missing])
    assert info.value.where == str(missing)


def test_automation_globs_per_source_and_global(write: Writer) -> None:
    everywhere = write("00-automation.yaml", 'automation:\n  - "*[bot]"\n  - "svc-*"\n')
    github = write("10-github.yaml", 'source: github_audit\nautomation:\n  - "github"\n')
    taxonomy = Taxonomy([everywhere, github])
    assert taxonomy.is_automation("github_audit", "github")
    assert not taxonomy.is_automation("okta_system_log", "github")  # that source's glob only
    assert taxonomy.is_automation("okta_system_log", "renovate[bot]")
    assert taxonomy.is_automation("github_audit", "svc-deploy")
    assert not taxonomy.is_automation("github_audit", "github-user")  # anchored at both ends
    # [bot] is literal text, not a character class as in fnmatch.
    assert not taxonomy.is_automation("github_audit", "robot")
    assert not taxonomy.is_automation("github_audit", "deployb")


def test_no_automation_globs_means_no_machines() -> None:
    taxonomy = Taxonomy()
    assert not taxonomy.is_automation("github_audit", "dependabot[bot]")
    assert taxonomy.classify("github_audit", "repo.create") == Classification(Category.OTHER)


def error_for(path: Path) -> TaxonomyError:
    with pytest.raises(TaxonomyError) as info:
        Taxonomy([path])
    assert info.value.where == str(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)  # one line for the CLI
    return info.value


def test_unknown_category_names_the_file_and_action(write: Writer) -> None:
    error = error_for(write("bad.yaml", "source: vcs\nactions:\n  repo.create: codeaccess\n"))
    assert "actions.repo.create" in error.message
    assert "code_access" in error.message  # the valid choices are listed


def test_unknown_category_in_a_pattern_names_its_index(write: Writer) -> None:
    text = (
        "source: vcs\npatterns:\n"
        '  - {match: "a*", category: other}\n'
        '  - {match: "b*", category: nope}\n'
    )
    error = error_for(write("bad.yaml", text))
    assert error.message.startswith("patterns.1.category:")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("source: vcs\nactoins:\n  repo.create: code_access\n", "actoins"),
        ('source: vcs\npatterns:\n  - {match: "a*", category: other, colour: red}\n', "colour"),
        pytest.param(
            "source: vcs\nactions:\n  repo.create: {category: other, colour: red}\n",
            "colour",
        ),
    ],
    ids=["top-level", "pattern", "action-entry"],
)
def test_unknown_key_is_rejected_by_name(write: Writer, text: str, key: str) -> None:
    error = error_for(write("typo.yaml", text))
    assert key in error.message
    assert "not permitted" in error.message


def test_actions_without_source_are_rejected(write: Writer) -> None:
    error = error_for(write("nosource.yaml", "actions:\n  repo.create: code_access\n"))
    assert "'source'" in error.message


def test_automation_only_file_needs_no_source(write: Writer) -> None:
    taxonomy = Taxonomy([write("machines.yaml", 'automation:\n  - "ci-*"\n')])
    assert taxonomy.is_automation("anything", "ci-runner")
    assert taxonomy.sources == []


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_non_mapping_yaml_is_rejected(write: Writer, text: str) -> None:
    error = error_for(write("list.yaml", text))
    assert "mapping" in error.message


def test_invalid_yaml_names_the_file_and_line(write: Writer) -> None:
    path = write("broken.yaml", "source: [vcs\nactions: {\n")
    with pytest.raises(TaxonomyError) as info:
        Taxonomy([path])
    assert info.value.where == f"{path}:2"
    assert info.value.message.startswith("not valid YAML:")
    assert "\n" not in str(info.value)


def test_unreadable_file_is_rejected(tmp_path: Path) -> None:
    error = error_for(tmp_path / "missing.yaml")
    assert error.message == "cannot read taxonomy: No such file or directory"


def test_directories_list_yaml_and_yml_files_by_name_without_hidden_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.yml").write_text("source: vcs\nactions: {repo.create: code_access}\n")
    (tmp_path / "a.yaml").write_text("source: vcs\nactions: {repo.create: other}\n")
    (tmp_path / ".swap.yaml").write_text("not: [valid\n")
    (tmp_path / "notes.txt").write_text("ignored\n")
    taxonomy = Taxonomy.from_dirs([tmp_path])
    # b.yml is read after a.yaml, so it wins.
    assert taxonomy.classify("vcs", "repo.create") == Classification(Category.CODE_ACCESS)


def test_bundled_taxonomy_loads() -> None:
    taxonomy = Taxonomy.bundled()
    assert bundled_taxonomy_dir().is_dir()
    assert "github_audit" in taxonomy.sources
    assert taxonomy.classify("github_audit", "protected_branch.destroy") == Classification(
        Category.CONFIG_CHANGE, True
    )
    assert taxonomy.is_automation("github_audit", "dependabot[bot]")
    assert taxonomy.is_automation("k8s_audit", "renovate[bot]")  # global automation.yaml
