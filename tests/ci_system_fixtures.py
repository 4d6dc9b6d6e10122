"""The Azure DevOps and Jenkins fixtures of tests/data/ci_systems/, for their parser tests.

No published records of these log types were available: the fixture lines are written
from the vendors' documentation and say so in their ``case`` (see the README there).
Golden output sits beside them in ``golden/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from detector.events.model import Event, Skipped
from detector.sources.record import Position, RawRecord
from tests.normalizing import as_event, bundled_normalizer

__all__ = ["FIXTURES", "event_of", "fixture_docs", "normalized_lines"]

FIXTURES = Path(__file__).parent / "data" / "ci_systems"


def fixture_docs(source: str) -> list[dict[str, object]]:
    lines = (FIXTURES / f"{source}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def event_of(source: str, case: str) -> Event:
    """The event of the first fixture of ``source`` whose case contains ``case``."""
    return as_event(
        next(r["event"] for r in fixture_docs(source) if case in str(r["case"])), source
    )


def normalized_lines(source: str) -> list[str]:
    """Every fixture line normalized, as the golden file holds it."""
    normalizer = bundled_normalizer()
    out = []
    for number, row in enumerate(fixture_docs(source), start=1):
        record = RawRecord(json.dumps(row).encode(), Position(f"{source}.jsonl", number))
        results = [r.to_dict() for r in normalizer.normalize(record) if not isinstance(r, Skipped)]
        line = {"line": number, "case": row["case"], "results": results}
        out.append(json.dumps(line, sort_keys=True))
    return out
