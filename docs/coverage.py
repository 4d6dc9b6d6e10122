"""Render the detection coverage matrix: ``docs/coverage.yaml`` in, ``docs/coverage.md`` out.

The matrix is data so that it stays true: each row names a published reference
rule (SigmaHQ, Elastic, Panther, Splunk ESCU, Falco), the log type it reads, its
ATT&CK tactic, and either the ciwatch rules or anomaly-model families that cover
it or, as a ``gap``, why not. ``tests/unit/test_coverage_matrix.py`` checks that
every rule named exists and is tested, that every bundled rule appears, and that
``docs/coverage.md`` is exactly what this module renders.

It lives beside the files it owns rather than in ``detector/`` because it is
documentation tooling: the daemon never imports it and the wheel does not ship it.

Usage (from the repository root)::

    python3 docs/coverage.py          # rewrite docs/coverage.md
    python3 docs/coverage.py --check  # exit 1 if docs/coverage.md is stale
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Matrix", "Row", "load_matrix", "main", "render", "rule_files_by_id"]

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
MATRIX_YAML = DOCS / "coverage.yaml"
MATRIX_MD = DOCS / "coverage.md"
RULES_DIR = ROOT / "pipelines" / "rules"
MODEL_PREFIX = "model:"

# ATT&CK enterprise order, so that every log type's sections read the same way.
TACTICS = (
    "reconnaissance", "resource_development", "initial_access", "execution", "persistence",
    "privilege_escalation", "defense_evasion", "credential_access", "discovery",
    "lateral_movement", "collection", "command_and_control", "exfiltration", "impact", "unmapped",
)  # fmt: skip
_ROW_KEYS = frozenset(
    {"log_type", "tactic", "references", "covered_by", "partial", "gap", "applicable", "test"}
)


@dataclass(frozen=True)
class Row:
    """One reference detection (or several near-identical ones) and ciwatch's answer to it."""

    log_type: str
    tactic: str
    references: tuple[Mapping[str, str], ...]
    covered_by: tuple[str, ...] = ()
    partial: str = ""
    gap: str = ""
    applicable: bool = True
    test: tuple[str, ...] = ()

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(item for item in self.covered_by if not item.startswith(MODEL_PREFIX))

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(
            item[len(MODEL_PREFIX) :] for item in self.covered_by if item.startswith(MODEL_PREFIX)
        )


@dataclass(frozen=True)
class Matrix:
    """The whole matrix: libraries (with pinned commits), log types, model families, rows."""

    libraries: Mapping[str, Mapping[str, str]]
    log_types: Mapping[str, Mapping[str, str]]
    models: Mapping[str, Mapping[str, str]]
    rows: tuple[Row, ...] = field(default=())


def load_matrix(path: Path = MATRIX_YAML) -> Matrix:
    """Read and check ``coverage.yaml``; a malformed row raises ``ValueError`` naming it."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    libraries, log_types = doc["libraries"], doc["log_types"]
    rows = tuple(
        _row(entry, index, libraries, log_types) for index, entry in enumerate(doc["rows"])
    )
    return Matrix(libraries=libraries, log_types=log_types, models=doc["models"], rows=rows)


def _row(
    entry: Mapping[str, Any], index: int, libraries: Mapping[str, Any], log_types: Mapping[str, Any]
) -> Row:
    where = f"{MATRIX_YAML.name}: rows[{index}]"
    unknown = set(entry) - _ROW_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    row = Row(
        log_type=entry["log_type"],
        tactic=entry["tactic"],
        references=tuple(entry["references"]),
        covered_by=tuple(entry.get("covered_by") or ()),
        partial=entry.get("partial", ""),
        gap=entry.get("gap", ""),
        applicable=entry.get("applicable", True),
        test=tuple(entry.get("test") or ()),
    )
    if row.log_type not in log_types or row.tactic not in TACTICS:
        raise ValueError(f"{where}: unknown log_type {row.log_type!r} or tactic {row.tactic!r}")
    if bool(row.covered_by) == bool(row.gap):
        raise ValueError(f"{where}: give exactly one of covered_by and gap")
    if any(ref.get("library") not in libraries for ref in row.references) or not row.references:
        raise ValueError(f"{where}: every reference needs a known library")
    return row


def rule_files_by_id(rules_dir: Path = RULES_DIR) -> dict[str, str]:
    """Bundled rule id → the file that holds it (relative to the repository root)."""
    found: dict[str, str] = {}
    for path in sorted(rules_dir.glob("*.yaml")):
        for rule in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("rules") or ():
            found[rule["id"]] = path.relative_to(ROOT).as_posix()
    return found


def render(matrix: Matrix, rule_files: Mapping[str, str]) -> str:
    """The Markdown page for ``matrix``; ``rule_files`` names where each rule's tests live."""
    lines = [*_intro(matrix), *_summary(matrix), ""]
    by_type: dict[str, list[Row]] = defaultdict(list)
    for row in matrix.rows:
        by_type[row.log_type].append(row)
    for log_type, about in matrix.log_types.items():
        lines += _log_type_section(log_type, about, by_type.get(log_type, []), matrix, rule_files)
    return "\n".join(lines).rstrip() + "\n"


def _intro(matrix: Matrix) -> list[str]:
    libraries = [
        f"- **{lib['title']}** ({lib['short']}): {lib['scope']}"
        for lib in matrix.libraries.values()
    ]
    models = [
        f"- `model:{name}` — {about['about']} Measured by {about['test']}."
        for name, about in matrix.models.items()
    ]
    return [
        "# Detection coverage",
        "",
        "<!-- Generated by `python3 docs/coverage.py` from docs/coverage.yaml;"
        " edit the YAML, not this page. -->",
        "",
        "For every log type ciwatch reads, the published detections of the field's rule",
        "libraries that apply to it, one row each: the reference rule, the ciwatch rule or",
        "anomaly model that covers it and where its test is, or why not. Rows are grouped by",
        "log type and ATT&CK tactic (Sigma's `stealth` is filed under defense evasion; rules",
        "without a tactic under *unmapped*).",
        "",
        "**Covered** means a bundled rule alerts on the situation (its embedded tests, run by",
        "`ciwatch test-rules` and `tests/unit/test_rule_pack.py`, include an alerting case);",
        "**partial** means it does so under narrower conditions, stated in the row;",
        "**model** means only an anomaly model scores it (no deterministic alert); **gap**",
        "says what is missing.",
        "Rows whose reference reads a log ciwatch does not parse are listed but not counted.",
        "",
        "Libraries (links are pinned to the commit read):",
        "",
        *libraries,
        "",
        "Anomaly-model families ([models.md](models.md)):",
        "",
        *models,
        "",
    ]


def _counts(rows: Iterable[Row]) -> dict[str, int]:
    counts = dict.fromkeys(("applicable", "covered", "partial", "model", "gap", "not_read"), 0)
    for row in rows:
        if not row.applicable:
            counts["not_read"] += 1
            continue
        counts["applicable"] += 1
        if row.rules:
            counts["covered"] += 1
            counts["partial"] += bool(row.partial)
        elif row.models:
            counts["model"] += 1
        else:
            counts["gap"] += 1
    return counts


def figure(counts: Mapping[str, int]) -> str:
    """``covered / applicable (percent)``, the number the README quotes."""
    share = 100 * counts["covered"] / counts["applicable"] if counts["applicable"] else 0.0
    return f"{counts['covered']} / {counts['applicable']} ({share:.0f} %)"


def _summary(matrix: Matrix) -> list[str]:
    lines = [
        "## Coverage by log type",
        "",
        "*Full* and *partial* together are the rows covered by a rule; *coverage* is their share",
        "of the reference rows, *full only* the share a rule covers under essentially the",
        "reference's own conditions.",
        "",
        "| log type | reference rows | full | partial | model only | gap | coverage | full only"
        " | not read |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for log_type in matrix.log_types:
        c = _counts(row for row in matrix.rows if row.log_type == log_type)
        lines.append(
            f"| [{log_type}](#{log_type.replace('_', '-')}) | {c['applicable']} "
            f"| {c['covered'] - c['partial']} | {c['partial']} | {c['model']} | {c['gap']} "
            f"| {figure(c)} | {_share(c['covered'] - c['partial'], c['applicable'])} "
            f"| {c['not_read']} |"
        )
    t = _counts(matrix.rows)
    lines.append(
        f"| **all** | {t['applicable']} | {t['covered'] - t['partial']} | {t['partial']} "
        f"| {t['model']} | {t['gap']} | **{figure(t)}** "
        f"| **{_share(t['covered'] - t['partial'], t['applicable'])}** | {t['not_read']} |"
    )
    return lines


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "0 %"


def _log_type_section(
    log_type: str,
    about: Mapping[str, str],
    rows: Sequence[Row],
    matrix: Matrix,
    rule_files: Mapping[str, str],
) -> list[str]:
    lines = [f"## {log_type}", "", about["title"] + ".", ""]
    if about.get("note"):
        lines += [about["note"], ""]
    if not rows:
        return lines
    lines += [f"Coverage: {figure(_counts(rows))}.", ""]
    for tactic in TACTICS:
        group = [row for row in rows if row.tactic == tactic]
        if not group:
            continue
        lines += [
            f"### {log_type}: {tactic.replace('_', ' ')}",
            "",
            "| reference | ciwatch | test or why not |",
            "|---|---|---|",
        ]
        lines += [_row_line(row, matrix, rule_files) for row in group]
        lines.append("")
    return lines


def _row_line(row: Row, matrix: Matrix, rule_files: Mapping[str, str]) -> str:
    refs = "<br>".join(_reference(ref, matrix.libraries[ref["library"]]) for ref in row.references)
    if not row.covered_by:
        verdict = "not read" if not row.applicable else "**gap**"
        return f"| {refs} | {verdict} | {_cell(row.gap)} |"
    covered = ", ".join(f"`{item}`" for item in row.covered_by)
    state = "partial: " if row.partial else ("model: " if not row.rules else "")
    tests = list(row.test) or [
        f"`{rule_files.get(rule, '?')}` `{rule}` tests" for rule in row.rules
    ]
    tests += [matrix.models[name]["test"] for name in row.models if not row.test]
    why = f" — {row.partial}" if row.partial else ""
    return f"| {refs} | {state}{covered} | {_cell('; '.join(tests) + why)} |"


def _reference(ref: Mapping[str, str], library: Mapping[str, str]) -> str:
    link = library["link"].format(path=ref["path"])
    ident = f" `{ref['id']}`" if ref.get("id") else ""
    return f"{library['short']}: [{_cell(ref['name'])}]({link}){ident}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render docs/coverage.md from docs/coverage.yaml.")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if docs/coverage.md is not up to date"
    )
    args = parser.parse_args(argv)
    page = render(load_matrix(), rule_files_by_id())
    if args.check:
        current = MATRIX_MD.read_text(encoding="utf-8") if MATRIX_MD.exists() else ""
        if current != page:
            print("docs/coverage.md is stale: run python3 docs/coverage.py", file=sys.stderr)
            return 1
        return 0
    MATRIX_MD.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
