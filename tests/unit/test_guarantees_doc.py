"""docs/guarantees.md names, for each guarantee, the test that proves it: those tests exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUARANTEES = ROOT / "docs" / "guarantees.md"


def cited_tests() -> list[tuple[str, str]]:
    """(test file, test name or "") for every test a table row of the page cites.

    ``::name`` right after a cited file belongs to that file.
    """
    cited: list[tuple[str, str]] = []
    for line in GUARANTEES.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| guarantee"):
            continue
        current = ""
        for ref in re.findall(r"`([^`]+)`", line.rstrip(" |").split(" | ")[-1]):
            if ref.startswith("tests/"):
                current, _, name = ref.partition("::")
                cited.append((current, name))
            elif ref.startswith("::") and current:
                cited.append((current, ref[2:]))
    return cited


def test_every_row_cites_a_test() -> None:
    rows = [
        line
        for line in GUARANTEES.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| guarantee")
    ]
    assert len(rows) > 50
    assert all("`tests/" in row for row in rows), [row for row in rows if "`tests/" not in row]


def test_every_cited_test_exists() -> None:
    missing = []
    for path, name in cited_tests():
        source = ROOT / path
        if not source.exists():
            missing.append(path)
        elif name and f"def {name.split('[')[0]}(" not in source.read_text(encoding="utf-8"):
            missing.append(f"{path}::{name}")
    assert missing == []
