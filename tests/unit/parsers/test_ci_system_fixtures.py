"""Every Azure DevOps and Jenkins fixture: an event of its type, golden output, classified."""

from __future__ import annotations

import json

import pytest

from detector.events.model import Event
from detector.sources.record import Position, RawRecord
from tests.ci_system_fixtures import FIXTURES, fixture_docs, normalized_lines
from tests.normalizing import as_event, bundled_normalizer

SOURCES = ("azure_devops_audit", "jenkins_audit")


@pytest.mark.parametrize("source", SOURCES)
def test_every_fixture_is_an_event_of_its_log_type(source: str) -> None:
    normalizer = bundled_normalizer()
    for number, row in enumerate(fixture_docs(source), start=1):
        results = normalizer.normalize(RawRecord(json.dumps(row).encode(), Position("t", number)))
        assert [type(r) for r in results] == [Event], (number, results)
        assert isinstance(results[0], Event) and results[0].source == source
        assert "constructed from" in str(row["case"])


@pytest.mark.parametrize("source", SOURCES)
def test_fixtures_match_the_golden_output(source: str, request: pytest.FixtureRequest) -> None:
    golden = FIXTURES / "golden" / f"{source}.jsonl"
    actual = normalized_lines(source)
    if request.config.getoption("--update-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text("\n".join(actual) + "\n", encoding="utf-8")
    expected = golden.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in actual] == [json.loads(line) for line in expected]


@pytest.mark.parametrize("source", SOURCES)
def test_every_fixture_action_is_classified_explicitly(source: str) -> None:
    taxonomy = bundled_normalizer().taxonomy
    for row in fixture_docs(source):
        event = as_event(row["event"], source)
        assert taxonomy.covers(source, event.action), event.action
