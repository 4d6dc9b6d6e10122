"""What counts as evidence: clearly beyond the population; context only beside something else."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from detector.config import EvidenceSettings
from detector.events.model import Category
from detector.features.families import FAMILIES
from detector.features.observation import Observation
from detector.scoring.calibration import Calibration
from detector.scoring.evidence import (
    EvidenceRule,
    beyond,
    could_be_evidence,
    is_context,
    is_evidence_capable,
    population_bounds,
)
from detector.scoring.scorer import AnomalyScorer
from detector.scoring.training import ModelSet, TrainedModel
from tests.unit.features.helpers import event
from tests.unit.scoring.synthetic import ordinary_row

FEATURES = ("actor.distinct_namespaces.1h", "actor.hour_of_week_rarity", "actor.new.namespace")
CAPABLE = [True, True, True]
CONTEXT = [is_context(name) for name in FEATURES]
POPULATION_HIGH = [1.0, 4.0, 0.0]
MARGIN = EvidenceRule().population_margin


def _evidence(namespaces: float, rarity: float, new: float) -> list[str]:
    """The evidencing features of one row, for an actor with no usual of their own yet."""
    logged = np.log1p(np.array([namespaces, rarity, new], dtype=np.float64))
    found = beyond(
        logged, None, POPULATION_HIGH, CAPABLE, context=CONTEXT, population_margin=MARGIN
    )
    return [FEATURES[index] for index in found]


def test_the_hours_rarity_and_first_seen_flags_are_context_and_counts_are_not() -> None:
    assert CONTEXT == [False, True, True]
    assert is_context("actor.new.user_agent")
    assert not is_context("actor.novel.1h")
    assert not is_context("actor.secret_access.5m")


def test_a_count_one_above_the_organisations_high_is_not_evidence() -> None:
    # The organisation's 95th percentile is 1 namespace in an hour: its busiest people
    # reach 2 every day; 3 is clearly beyond it.
    assert _evidence(2, 0, 0) == []
    assert _evidence(3, 0, 0) == ["actor.distinct_namespaces.1h"]


def test_the_margin_is_on_the_log_scale_and_zero_gives_the_bare_quantile() -> None:
    logged = np.log1p(np.array([2.0, 0.0, 0.0]))
    assert beyond(logged, None, POPULATION_HIGH, CAPABLE, context=CONTEXT) == [0]
    high = math.expm1(math.log1p(1.0) + MARGIN)
    assert _evidence(high, 0, 0) == []
    assert _evidence(high + 0.01, 0, 0) == ["actor.distinct_namespaces.1h"]


def test_a_rare_hour_alone_is_no_evidence() -> None:
    """A dependency bot whose schedule drifts through the week meets a new hour every few hours."""
    assert _evidence(0, 9.0, 0) == []


def test_a_first_sighting_alone_is_no_evidence() -> None:
    """A person's first change in a namespace new to them is ordinary work."""
    assert _evidence(0, 0, 1) == []


def test_context_beside_other_evidence_counts_and_needs_no_margin() -> None:
    # A new namespace at an hour rare for the actor: two things at once.
    assert _evidence(0, 9.0, 1) == ["actor.hour_of_week_rarity", "actor.new.namespace"]
    # Beside a count clearly beyond the organisation's usual, it is named too.
    assert _evidence(5, 0, 1) == ["actor.distinct_namespaces.1h", "actor.new.namespace"]


def test_without_context_marks_one_flag_still_counts_as_before() -> None:
    logged = np.log1p(np.array([0.0, 0.0, 1.0]))
    assert beyond(logged, None, POPULATION_HIGH, CAPABLE) == [2]


def test_the_actors_own_usual_still_applies_to_context() -> None:
    logged = np.log1p(np.array([0.0, 9.0, 1.0]))
    usual = np.log1p(np.array([0.0, 9.0, 0.0]))  # rare hours are this actor's habit
    found = beyond(logged, usual, POPULATION_HIGH, CAPABLE, context=CONTEXT)
    assert found == []  # the first sighting is left alone: no evidence


def _rare_hour_observation(hour_rarity: float, *, new_repo: float, number: int) -> Observation:
    features = ordinary_row(
        FAMILIES["code"], {"actor.hour_of_week_rarity": hour_rarity, "actor.new.repo": new_repo}
    )
    return Observation(
        event(
            600.0 + number,
            actor="renovate",
            source="github_audit",
            category=Category.CODE_ACCESS,
            number=number,
        ),
        late=False,
        learning=False,
        features=features,
    )


def _flagging_everything(model: TrainedModel) -> TrainedModel:
    """The model with a threshold every row passes: what remains to decide is the evidence."""
    low = Calibration.fit(np.linspace(-2e6, -1e6, 1000), target_alert_rate=0.01)
    return dataclasses.replace(model, calibration=low)


def test_the_scorer_raises_nothing_for_context_alone_but_counts_it(
    code_model: TrainedModel,
) -> None:
    models = ModelSet({"code": _flagging_everything(code_model)})
    scorer = AnomalyScorer(models, evidence=EvidenceRule(score_every_row=True))
    assert scorer.score([_rare_hour_observation(12.0, new_repo=0.0, number=0)]) == []
    assert scorer.without_evidence == {"code": 1}  # the score was high; the evidence none
    unscored = AnomalyScorer(models)  # by default a row that can never alert is not scored
    assert unscored.score([_rare_hour_observation(12.0, new_repo=0.0, number=0)]) == []
    assert unscored.without_evidence == {"code": 0}
    together = _rare_hour_observation(12.0, new_repo=1.0, number=1)
    [detection] = AnomalyScorer(models).score([together])
    assert set(detection.explanation["evidence"]) == {
        "actor.hour_of_week_rarity",
        "actor.new.repo",
    }
    assert detection.suppress == timedelta(hours=1)


def test_the_scorer_reads_the_margin_from_its_rule(code_model: TrainedModel) -> None:
    counts = ("actor.distinct_repos", "actor.code_access", "actor.events", "actor.novel")
    sweep = ordinary_row(
        FAMILIES["code"],
        {f"{count}.{window}": 150.0 for count in counts for window in ("5m", "1h")},
    )
    observation = Observation(
        event(600.0, actor="ivan", source="github_audit", category=Category.CODE_ACCESS),
        late=False,
        learning=False,
        features=sweep,
    )
    strict = AnomalyScorer(
        ModelSet({"code": code_model}),
        evidence=EvidenceRule(population_margin=9, score_every_row=True),
    )
    assert strict.score([observation]) == []
    assert strict.without_evidence == {"code": 1}
    assert AnomalyScorer(ModelSet({"code": code_model})).score([observation]) != []


def test_the_margin_is_a_setting_with_a_default() -> None:
    assert EvidenceRule(**EvidenceSettings().model_dump()).population_margin == MARGIN == 0.5
    assert (
        EvidenceRule(**EvidenceSettings(population_margin=0.2).model_dump()).population_margin
        == 0.2
    )
    with pytest.raises(ValidationError):
        EvidenceSettings(population_margin=-1)


def test_a_row_could_be_evidence_exactly_when_it_has_some_for_an_actor_without_a_usual() -> None:
    """The scorer asks the model only about these rows: no other row is evidence for any actor."""
    names = (*FEATURES, "actor.events.1h", "event.failure", "actor.new.repo", "actor.novel.1h")
    high = [*POPULATION_HIGH, 3.0, 0.0, 0.0, math.inf]  # inf: a feature without statistics
    capable = [is_evidence_capable(name) for name in names]
    context = [is_context(name) for name in names]
    rng = np.random.default_rng(11)
    counts = rng.choice([0.0, 1.0, 2.0, 3.0, 5.0, 40.0, math.inf, math.nan], size=(400, len(names)))
    logged = np.log1p(counts)
    bounds = population_bounds(high, context, MARGIN)
    found = could_be_evidence(logged, bounds, capable, context)
    assert 0 < np.count_nonzero(found) < len(logged)
    for row, could in zip(logged, found, strict=True):
        alone = beyond(row, None, high, capable, context=context, population_margin=MARGIN)
        assert could == bool(alone)
        for estimate in rng.choice([0.0, 1.0, 3.0, 9.0], size=(5, len(names))):
            usual = beyond(row, estimate, high, capable, context=context, population_margin=MARGIN)
            assert could or not usual
