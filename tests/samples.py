"""Access to the published vendor events copied into tests/data/samples.

Each line is ``{"source", "case", "expected_alert", "event"}`` as published
(see tests/data/ATTRIBUTION.md); tests pick events by their ``case`` text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SAMPLES_DIR", "Sample", "load_samples", "sample", "sample_bytes", "sample_names"]

SAMPLES_DIR = Path(__file__).parent / "data" / "samples"


@dataclass(frozen=True)
class Sample:
    source: str
    case: str
    expected_alert: bool | None
    event: Any
    line: int


def sample_names() -> list[str]:
    """Every sample file's name (``"okta_system_log"``), sorted."""
    return sorted(path.stem for path in SAMPLES_DIR.glob("*.jsonl"))


@cache
def load_samples(name: str) -> tuple[Sample, ...]:
    """Every sample of one file (``"okta_system_log"``), in file order."""
    out = []
    with (SAMPLES_DIR / f"{name}.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            # strict=False: one AWS docs example holds a raw control character, as published.
            row = json.loads(line, strict=False)
            out.append(
                Sample(row["source"], row["case"], row["expected_alert"], row["event"], number)
            )
    return tuple(out)


def sample(name: str, case: str) -> Any:
    """The event of the first sample whose ``case`` contains ``case``."""
    for item in load_samples(name):
        if case in item.case:
            return item.event
    raise LookupError(f"no sample in {name} with case containing {case!r}")


def sample_bytes(name: str, case: str) -> bytes:
    """The same event as raw JSON bytes, the way a source would deliver it."""
    return json.dumps(sample(name, case)).encode()
