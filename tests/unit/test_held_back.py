"""``Pipeline.held_back()``: the high anomaly scores not raised, by family and reason.

The daemon turns these totals into the ``held_back`` counters: scores in the
learning period (``in_learning``), without evidence (``without_evidence``),
and anomalies folded into a rule alert on the same actor (``linked``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import scenarios

from detector.config import PipelineConfig, load_config
from detector.events.model import Event
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.pipeline import Pipeline
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer

NEVER = datetime(2100, 1, 1, tzinfo=UTC)  # a learning period past every event


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    directory = tmp_path_factory.mktemp("world")
    scenarios.write(scenarios.generate(seed=7, days=6), directory)
    with FileSource([Path(directory) / scenarios.MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    return bundled_normalizer().normalize_batch(records).events


def _run(
    events: list[Event], alert_from: datetime | None, config: PipelineConfig | None = None
) -> tuple[Pipeline, Counter[str]]:
    """The bundled models over the world; the anomaly detections the scorer let through."""
    pipeline = Pipeline.from_config(config or load_config(None))
    scorer = pipeline.scorer
    assert scorer is not None
    scorer.alert_from = alert_from
    passed: Counter[str] = Counter()
    score = scorer.score

    def counting(observations: list[Observation]) -> list[object]:
        found = score(observations)
        passed.update(d.name.removesuffix("-anomaly") for d in found)
        return list(found)

    scorer.score = counting  # type: ignore[assignment,method-assign]
    for start in range(0, len(events), 500):
        pipeline.detect(events[start : start + 500])
    pipeline.finish()
    return pipeline, passed


@pytest.fixture(scope="module")
def baseline(events: list[Event]) -> tuple[Pipeline, Counter[str]]:
    return _run(events, None)


def test_held_back_reports_evidence_and_linked_totals(
    baseline: tuple[Pipeline, Counter[str]],
) -> None:
    pipeline, _ = baseline
    held = pipeline.held_back()
    scorer = pipeline.scorer
    assert scorer is not None
    for family in FAMILIES:
        assert held[(family, "in_learning")] == 0
        assert held[(family, "without_evidence")] == scorer.without_evidence[family]
    assert sum(n for (_, reason), n in held.items() if reason == "without_evidence") > 0
    linked = {family: n for (family, reason), n in held.items() if reason == "linked"}
    assert linked and all(n > 0 for n in linked.values())
    assert linked == {
        name.removesuffix("-anomaly"): n for name, n in pipeline.suppressor.linked_anomalies.items()
    }
    raised = [a for a in pipeline.stats.alerts if a[0].endswith("-anomaly")]
    assert raised, "the world must raise anomaly alerts for the comparison below"


def test_scores_in_the_learning_period_are_held_back_not_raised(
    events: list[Event], baseline: tuple[Pipeline, Counter[str]]
) -> None:
    _, would_raise = baseline
    learning, passed = _run(events, NEVER)
    held = learning.held_back()
    assert not passed, "no anomaly may reach the alerts inside the learning period"
    assert not any(name.endswith("-anomaly") for name, _ in learning.stats.alerts)
    in_learning = {family: n for (family, reason), n in held.items() if reason == "in_learning"}
    assert {f: n for f, n in in_learning.items() if n} == dict(would_raise)
    assert not any(reason == "linked" for _, reason in held)
    scorer = learning.scorer
    assert scorer is not None
    assert all(
        held[(family, "without_evidence")] == scorer.without_evidence[family] for family in FAMILIES
    )


def test_scoring_every_row_changes_only_what_is_counted_without_evidence(
    events: list[Event], baseline: tuple[Pipeline, Counter[str]], tmp_path: Path
) -> None:
    """Rows with nothing beyond the population's usual are not scored by default: they never
    alert, so scored or not the alerts are the same; scored, their high scores are counted."""
    default, would_raise = baseline
    path = tmp_path / "every-row.yaml"
    path.write_text("models:\n  evidence:\n    score_every_row: true\n")
    every, raised = _run(events, None, load_config(path))
    assert every.evidence.score_every_row
    assert raised == would_raise
    assert every.stats.alerts == default.stats.alerts
    assert every.scorer is not None and default.scorer is not None
    assert every.scorer.scored == default.scorer.scored
    more = every.scorer.without_evidence
    assert all(more[family] >= n for family, n in default.scorer.without_evidence.items())
    assert sum(more.values()) > sum(default.scorer.without_evidence.values())
