"""Golden files: every published sample in tests/data/samples, normalized, equals the stored output.

After a deliberate parser or taxonomy change, regenerate with
``pytest tests/unit/test_golden.py --update-golden`` and review the diff line by line.
"""

from __future__ import annotations

import json

import pytest

from detector.events.model import DeadLetter, Event, Skipped
from detector.events.normalizer import Normalizer
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.samples import SAMPLES_DIR, load_samples, sample_names

GOLDEN_DIR = SAMPLES_DIR.parent / "golden"
_KINDS = {Event: "event", DeadLetter: "dead_letter", Skipped: "skipped"}
SAMPLE_FILES = sample_names()


def normalized_lines(name: str) -> list[str]:
    normalizer = Normalizer(Taxonomy.bundled())
    lines = []
    for item in load_samples(name):
        raw = json.dumps(item.event).encode()
        results = normalizer.normalize(RawRecord(raw, Position(f"{name}.jsonl", item.line)))
        rendered = [r.to_dict() for r in results]
        kinds = [_KINDS[type(r)] for r in results]
        row = {"line": item.line, "case": item.case, "kinds": kinds, "results": rendered}
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    return lines


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_samples_normalize_to_the_golden_output(name: str, request: pytest.FixtureRequest) -> None:
    golden = GOLDEN_DIR / f"{name}.jsonl"
    actual = normalized_lines(name)
    if request.config.getoption("--update-golden"):
        GOLDEN_DIR.mkdir(exist_ok=True)
        golden.write_text("\n".join(actual) + "\n", encoding="utf-8")
    expected = golden.read_text(encoding="utf-8").splitlines()
    for got, want in zip(actual, expected, strict=True):
        assert json.loads(got) == json.loads(want)


def test_every_sample_file_has_a_golden_file() -> None:
    assert {p.stem for p in GOLDEN_DIR.glob("*.jsonl")} == set(SAMPLE_FILES)
