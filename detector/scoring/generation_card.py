"""The Markdown card of one model generation: where it came from and why it was let in.

Written as ``card.md`` beside a generation's ``generation.json``
(:mod:`detector.scoring.generations`), from the same record, in the spirit of
the per-family model cards (:mod:`detector.scoring.card`) it links to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["generation_card"]


def generation_card(record: Mapping[str, Any]) -> str:
    """The card for a generation, from its ``generation.json`` record."""
    number = record["number"]
    parent = record.get("parent")
    carried = set(record.get("carried", ()))
    lines = [
        f"# Model generation {number}",
        "",
        f"- Created: {record['created_at']}",
        f"- Training window (event time): {record.get('trained_from') or 'unknown'} to "
        f"{record.get('trained_until') or 'unknown'}",
        f"- Parent: {f'generation {parent}' if parent is not None else 'none (the first)'}",
        f"- Carried over from the parent: {', '.join(sorted(carried)) or 'none'}",
        "",
        "## Families",
        "",
        "| family | training rows | check | model card |",
        "|---|---|---|---|",
        *(_family_row(family, record, carried) for family in record.get("families", ())),
        "",
        "## Checks",
        "",
        "Each new model was scored on recent rows held out of its training before this "
        "generation was published: finite scores, a score distribution that is not "
        "collapsed, and an alert rate within the bound (docs/models.md). A family whose "
        "new model failed keeps its parent's model (carried over).",
        "",
    ]
    return "\n".join(lines)


def _family_row(family: str, record: Mapping[str, Any], carried: set[str]) -> str:
    rows = record.get("rows", {}).get(family)
    checked = record.get("check", {}).get("families", {}).get(family)
    verdict = "not checked"
    if checked is not None:
        verdict = f"{'passed' if checked.get('passed') else 'FAILED'}: {checked.get('reason', '?')}"
    outcome = f"carried over (new model {verdict})" if family in carried else verdict
    shown_rows = f"{rows:,}" if isinstance(rows, int) else "?"
    return f"| `{family}` | {shown_rows} | {outcome} | [{family}.md](models/{family}.md) |"
