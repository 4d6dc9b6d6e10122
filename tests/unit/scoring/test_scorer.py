"""The scorer: explained detections for unusual events of a family, nothing for the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import pytest

from detector.detections import DetectorKind, Severity
from detector.events.model import ActorType, Category
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.scoring.base import Detector
from detector.scoring.calibration import THRESHOLD_SCORE, FeatureStats
from detector.scoring.evidence import EvidenceRule
from detector.scoring.scorer import AnomalyScorer
from detector.scoring.training import ModelSet, TrainedModel
from detector.scoring.triage import RUNBOOKS, TAGS
from tests.unit.features.helpers import event
from tests.unit.scoring.synthetic import ordinary_row


def _sweep(repos: int) -> dict[str, float]:
    """A repository sweep as the features show it: every related count rises together.

    A few of the repositories are new to the actor, so the novel-event counts rise too.
    """
    return {
        "actor.novel.5m": 2,
        "actor.novel.1h": 5,
        "actor.novel.24h": 6,
        "actor.distinct_repos.5m": repos // 4,
        "actor.code_access.5m": repos // 4,
        "actor.events.5m": repos // 4,
        "actor.distinct_repos.1h": repos,
        "actor.code_access.1h": repos,
        "actor.events.1h": repos + 3,
        "actor.distinct_repos.24h": repos + 2,
        "actor.code_access.24h": repos + 5,
        "actor.events.24h": repos + 15,
        "actor.events_vs_baseline.1h": 15.0,
    }


SWEEP = _sweep(150)


def _observation(
    overrides: Mapping[str, float] | None = None,
    *,
    source: str = "github_audit",
    late: bool = False,
    learning: bool = False,
    number: int = 0,
) -> Observation:
    category = Category.AUTHENTICATION if source == "okta" else Category.CODE_ACCESS
    return Observation(
        event(600.0 + number, actor="ivan", source=source, category=category, number=number),
        late=late,
        learning=learning,
        features=ordinary_row(FAMILIES["code"], overrides),
    )


@pytest.fixture
def scorer(code_model: TrainedModel) -> AnomalyScorer:
    return AnomalyScorer(ModelSet({"code": code_model}))


def test_ordinary_event_gives_no_detection(scorer: AnomalyScorer) -> None:
    assert scorer.score([_observation()]) == []
    assert scorer.scored == {"code": 1}


def test_outlier_detection_names_the_feature_that_made_it_unusual(
    scorer: AnomalyScorer, code_model: TrainedModel
) -> None:
    sweep = _observation(SWEEP, number=1)
    [detection] = scorer.score([_observation(), sweep])
    assert detection.kind is DetectorKind.ANOMALY
    assert detection.name == "code-anomaly"
    assert detection.key == (("actor", "ivan"),)
    assert detection.actor == "ivan"
    assert detection.time == sweep.event.time
    assert detection.evidence == (sweep.event.id,)
    # Its evidence includes 24-hour counts: the alert stays open while they stay high.
    assert detection.suppress == timedelta(hours=24)
    assert detection.tags == TAGS["code"] and "attack.t1213.003" in detection.tags
    assert detection.runbook == RUNBOOKS["code"]
    assert detection.score is not None
    assert THRESHOLD_SCORE <= detection.score <= 1.0
    assert detection.severity in (Severity.MEDIUM, Severity.HIGH)
    assert detection.features["actor.distinct_repos.1h"] == 150.0
    top = detection.explanation["top_features"][0]
    population = code_model.population["actor.distinct_repos.1h"]
    assert top["feature"] == "actor.distinct_repos.1h"
    assert top["value"] == 150.0
    assert top["population_median"] == population.median
    # No history of ivan yet: the organisation's quantile is the only usual named.
    high = population.quantile(0.95)
    expected = f"ivan: 150 distinct repositories in 1 h (organisation's 95th percentile {high:.0f})"
    assert detection.summary.startswith(expected)


def test_the_actors_own_usual_reaches_the_explanation(scorer: AnomalyScorer) -> None:
    habit = [_observation(number=number) for number in range(30)]
    assert scorer.score(habit) == []
    [detection] = scorer.score([_observation(SWEEP, number=31)])
    top = detection.explanation["top_features"][0]
    assert top["feature"] == "actor.distinct_repos.1h"
    usual = top["actor_baseline"]
    assert usual is not None and 0 <= usual < 150
    assert f"150 distinct repositories in 1 h (their usual at most {usual:.0f}; " in (
        detection.summary
    )


def test_late_and_new_actor_observations_are_skipped(scorer: AnomalyScorer) -> None:
    new_actor = _observation(SWEEP)
    new_actor = dataclasses.replace(
        new_actor, features={**new_actor.features, "actor.age_days": 0.5}
    )
    skipped = [_observation(SWEEP, late=True), new_actor]
    assert scorer.score(skipped) == []
    assert scorer.skipped == 2
    assert scorer.scored == {"code": 0}


def test_service_identities_are_left_to_the_service_model(scorer: AnomalyScorer) -> None:
    service = _observation(SWEEP)
    service = dataclasses.replace(
        service, event=dataclasses.replace(service.event, actor_type=ActorType.SERVICE)
    )
    assert scorer.score([service]) == []
    assert scorer.scored == {"code": 0}


def test_events_of_families_without_a_model_are_not_scored(scorer: AnomalyScorer) -> None:
    assert scorer.score([_observation(SWEEP, source="okta")]) == []
    assert scorer.scored == {"code": 0}


def test_detections_come_back_in_input_order_regardless_of_batching(
    scorer: AnomalyScorer, code_model: TrainedModel
) -> None:
    observations = [
        _observation(_sweep(100 + number * 50) if number % 2 else None, number=number)
        for number in range(6)
    ]
    together = scorer.score(observations)
    fresh = AnomalyScorer(ModelSet({"code": code_model}))
    one_by_one = [found for item in observations for found in fresh.score([item])]
    assert [d.evidence for d in together] == [(o.event.id,) for o in observations[1::2]]
    assert together == one_by_one


@pytest.fixture
def strict(code_model: TrainedModel) -> TrainedModel:
    """The code model with a population quantile no value can pass: no row has evidence."""
    return dataclasses.replace(
        code_model,
        population={name: FeatureStats(1e9, 1e9) for name in code_model.population},
    )


def test_a_high_score_without_a_feature_beyond_both_quantiles_is_counted_not_raised(
    strict: TrainedModel,
) -> None:
    # Scored all the same, the score stays high; the evidence is none.
    scorer = AnomalyScorer(ModelSet({"code": strict}), evidence=EvidenceRule(score_every_row=True))
    assert scorer.score([_observation(SWEEP)]) == []
    assert scorer.without_evidence == {"code": 1}


def test_a_row_with_nothing_beyond_the_population_is_judged_without_its_score(
    code_model: TrainedModel, strict: TrainedModel
) -> None:
    """It can never be an alert: by default the model is not asked, and nothing is counted."""
    asked: list[int] = []
    scorer = AnomalyScorer(ModelSet({"code": _counting_rows(strict, asked)}))
    assert scorer.score([_observation(SWEEP)]) == []
    assert (asked, scorer.scored, scorer.without_evidence) == ([], {"code": 1}, {"code": 0})
    ordinary = AnomalyScorer(ModelSet({"code": _counting_rows(code_model, asked)}))
    assert len(ordinary.score([_observation(SWEEP)])) == 1
    assert asked == [1]


class _CountingRows:
    """A detector that notes in ``asked`` how many rows each call scores."""

    def __init__(self, detector: Detector, asked: list[int]) -> None:
        self.detector, self.asked = detector, asked
        self.spec, self.fit, self.to_arrays = detector.spec, detector.fit, detector.to_arrays

    def decision_function(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        self.asked.append(len(matrix))
        return self.detector.decision_function(matrix)


def _counting_rows(model: TrainedModel, asked: list[int]) -> TrainedModel:
    return dataclasses.replace(model, detector=_CountingRows(model.detector, asked))


def test_an_actor_whose_sweeps_are_routine_is_not_alerted_for_one_more(
    scorer: AnomalyScorer,
) -> None:
    """A bulk cloner (a backup job run by hand): 150 repositories is their usual, not evidence."""
    routine = [_observation(SWEEP, number=number) for number in range(40)]
    found = scorer.score(routine)
    # Sweeps alert until the actor's own usual counts (min_actor_rows); then they are habit.
    assert len(found) <= scorer.rule.min_actor_rows
    assert scorer.score([_observation(SWEEP, number=41)]) == []
    assert scorer.without_evidence["code"] > 0


def test_explanations_name_only_features_beyond_both_quantiles(scorer: AnomalyScorer) -> None:
    [detection] = scorer.score([_observation(SWEEP)])
    for reason in detection.explanation["top_features"]:
        assert reason["value"] > reason["population_high"]
        assert reason["feature"] in detection.explanation["evidence"]
    assert "event." not in " ".join(detection.explanation["evidence"])


@pytest.mark.parametrize("size", [1, 7, 500])
def test_scoring_in_batches_of_any_size_gives_the_same_detections(
    code_model: TrainedModel, size: int
) -> None:
    observations = [
        _observation(_sweep(60 + number) if number % 9 == 4 else None, number=number)
        for number in range(60)
    ]
    reference = AnomalyScorer(ModelSet({"code": code_model})).score(observations)
    scorer = AnomalyScorer(ModelSet({"code": code_model}))
    batched = [
        found
        for start in range(0, len(observations), size)
        for found in scorer.score(observations[start : start + size])
    ]
    assert reference and batched == reference
