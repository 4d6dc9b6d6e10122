"""Scoring a batch of observations with the trained family models, into explained Detections.

Per pipeline batch, :meth:`AnomalyScorer.score` groups the observations by
family (an event may belong to several, or none), builds one matrix per
family from the family's features, scores it in one vectorized call, and
turns each event at or above the threshold *that has evidence* into a
:class:`Detection` (``kind=anomaly``, ``name=<family>-anomaly``, key ``actor``).
Evidence is at least one feature beyond both the actor's own and the
population's high quantile (:mod:`detector.scoring.evidence`); a score at or
above the threshold without it is counted in ``without_evidence``, not raised.

Observations of late events are neither scored nor learnt from; those of
actors with less than a day of history are learnt from (the actor's own
quantiles) but not scored: the models were not trained on them. People and
service identities are scored by different families (see
:mod:`detector.features.families`).

Everything here depends on the order of the observations only, never on the
batch boundaries (replay and daemon batch differently): the actor's quantiles
are updated row by row, each row judged against the actor's past before it.
A detection's ``suppress`` is its **evidence window**, the longest window of
its evidencing features (at least an hour): while the burst stays in that
window, the alert layer folds further detections into one alert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import compress
from operator import attrgetter, not_

import numpy as np
import numpy.typing as npt

from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.features.families import FAMILIES, Family, members
from detector.features.observation import Observation
from detector.features.vector_table import feature_table
from detector.scoring.calibration import HIGH_SCORE, THRESHOLD_SCORE
from detector.scoring.evidence import (
    ActorQuantiles,
    EvidenceRule,
    beyond,
    could_be_evidence,
    is_context,
    is_evidence_capable,
    population_bounds,
)
from detector.scoring.explain import Evidence, describe, evidence_reasons
from detector.scoring.training import MIN_HISTORY_DAYS, ModelSet, TrainedModel, transform
from detector.scoring.triage import RUNBOOKS, TAGS

__all__ = [
    "TITLES",
    "AnomalyScorer",
    "evidence_window",
    "feature_matrix",
    "feature_rows",
    "severity_for",
]

_AGE = "actor.age_days"
_EVENT = attrgetter("event")
_LATE = attrgetter("late")
_ACTOR = attrgetter("actor")
_FEATURES = attrgetter("features")
_WINDOW = re.compile(r"\.(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TITLES = {
    "auth": "Unusual sign-in activity",
    "code": "Unusual source-code activity",
    "infra": "Unusual infrastructure activity",
    "service": "Unusual activity of a service identity",
}
"""Family → alert title (others: "Unusual <family> activity")."""


def severity_for(score: float) -> Severity | None:
    """Medium from the threshold (0.5), high from :data:`HIGH_SCORE`; ``None`` below it."""
    if score >= HIGH_SCORE:
        return Severity.HIGH
    if score >= THRESHOLD_SCORE:
        return Severity.MEDIUM
    return None


def evidence_window(features: Sequence[str], *, least: timedelta) -> timedelta:
    """The longest window among ``features`` (``actor.failures.24h`` → 24 h), at least ``least``."""
    longest = least
    for name in features:
        found = _WINDOW.search(name)
        if found is not None:
            seconds = int(found.group(1)) * _UNITS[found.group(2)]
            longest = max(longest, timedelta(seconds=seconds))
    return longest


class _Prepared:
    """What one model needs per row, computed once: population quantiles, capable features."""

    def __init__(self, model: TrainedModel, rule: EvidenceRule) -> None:
        self.model = model
        quantile = rule.population_quantile
        stats = [model.population.get(name) for name in model.features]
        self.population_high = [math.inf if s is None else s.quantile(quantile) for s in stats]
        self.capable = [is_evidence_capable(name) for name in model.features]
        self.context = [is_context(name) for name in model.features]
        self.margin = rule.population_margin
        self._bounds = population_bounds(self.population_high, self.context, self.margin)

    def could_be_evidence(self, logged: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which rows (``log1p`` scale) could be alerts: :func:`could_be_evidence`."""
        return could_be_evidence(logged, self._bounds, self.capable, self.context)


class AnomalyScorer:
    """The trained models of a :class:`ModelSet`, applied to observations in batches.

    ``families``: family definitions by name (the models' families must be
    among them); ``evidence``: the quantiles a feature must exceed;
    ``history``: the actors' own quantiles (pass the previous scorer's when
    models are reloaded, so actors keep their usual); ``suppress``: the least
    evidence window; ``top``: how many features an explanation names at most.

    ``alert_from``: the event time alerts start at (the learner's learning
    period); detections before it are counted in ``in_learning``, not returned.

    ``scored`` counts observations judged and ``skipped`` those left out
    (late or new actor), per family; ``without_evidence`` the scores at or
    above the threshold that had no evidence, per family, for metrics (only
    rows that could have had some are scored, unless the evidence rule's
    ``score_every_row``).
    """

    def __init__(
        self,
        models: ModelSet,
        *,
        families: Mapping[str, Family] = FAMILIES,
        evidence: EvidenceRule | None = None,
        history: ActorQuantiles | None = None,
        suppress: timedelta = timedelta(hours=1),
        top: int = 3,
        alert_from: datetime | None = None,
    ) -> None:
        unknown = [model.family for model in models if model.family not in families]
        if unknown:
            raise ConfigError(f"no family definition for models {unknown}", where="models")
        self.rule = evidence or EvidenceRule()
        if history is None or history.quantile != self.rule.actor_quantile:
            history = ActorQuantiles(self.rule.actor_quantile)
        self.history = history
        self._models = [(families[model.family], _Prepared(model, self.rule)) for model in models]
        # Families without a model still learn their actors' usual, for the model to come.
        self._unscored = [family for name, family in families.items() if name not in models.models]
        self._suppress = suppress
        self._top = top
        self.alert_from = alert_from
        self.scored: dict[str, int] = {model.family: 0 for model in models}
        self.without_evidence: dict[str, int] = {model.family: 0 for model in models}
        self.in_learning: dict[str, int] = {model.family: 0 for model in models}
        self.skipped = 0

    def carry(self, previous: AnomalyScorer) -> None:
        """Take over a replaced scorer's counts, so counters only ever grow."""
        for mine, theirs in (
            (self.scored, previous.scored),
            (self.without_evidence, previous.without_evidence),
            (self.in_learning, previous.in_learning),
        ):
            for family, count in theirs.items():
                mine[family] = mine.get(family, 0) + count
        self.skipped += previous.skipped

    def training_rows(self) -> dict[str, int]:
        """Rows each model was trained on, per family (for metrics)."""
        return {item.model.family: item.model.window.rows for _, item in self._models}

    def describe(self) -> list[tuple[str, str, datetime | None]]:
        """(family, detector name, end of the training window) per model, for metrics."""
        return [
            (
                item.model.family,
                str(item.model.detector.spec.get("name", "")),
                item.model.window.last,
            )
            for _, item in self._models
        ]

    def score(self, observations: Sequence[Observation]) -> list[Detection]:
        """Detections for the observations at or above their family's threshold, in input order."""
        timely = list(compress(observations, map(not_, map(_LATE, observations))))
        events = list(map(_EVENT, timely))
        # Whether each timely observation's actor is mature, read from the family matrices
        # (``known``) or, for an observation no model scores, from its features.
        mature = np.zeros(len(timely), dtype=bool)
        known = np.zeros(len(timely), dtype=bool)
        found: list[tuple[int, Detection]] = []
        scored = [family for family, _ in self._models]
        chosen = members([*scored, *self._unscored], events)
        for (_, prepared), indices in zip(self._models, chosen[: len(scored)], strict=True):
            if indices:
                found.extend(self._score_family(prepared, timely, indices, (mature, known)))
        for family, indices in zip(self._unscored, chosen[len(scored) :], strict=True):
            self._learn_family(family, [timely[index] for index in indices])
        unknown = [timely[index].features for index in np.flatnonzero(~known).tolist()]
        grown = sum(features.get(_AGE, math.inf) >= MIN_HISTORY_DAYS for features in unknown)
        self.skipped += len(observations) - int(np.count_nonzero(mature)) - grown
        found.sort(key=lambda item: item[0])
        return [detection for _, detection in found if self._alerting(detection)]

    def _alerting(self, detection: Detection) -> bool:
        """Whether a detection may alert: not inside the learning period (counted there)."""
        if self.alert_from is None or detection.time >= self.alert_from:
            return True
        family = detection.name.removesuffix("-anomaly")
        self.in_learning[family] = self.in_learning.get(family, 0) + 1
        return False

    def _learn_family(self, family: Family, members: list[Observation]) -> None:
        """Update the actors' own quantiles of a family no model scores yet."""
        members = [o for o in members if all(name in o.features for name in family.features)]
        if not members:
            return
        logged = transform(feature_matrix(members, family.features))
        self.history.update_rows(family.name, [o.event.actor for o in members], logged)

    def _score_family(
        self,
        prepared: _Prepared,
        timely: list[Observation],
        indices: list[int],
        maturity: tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]],
    ) -> list[tuple[int, Detection]]:
        """Score the mature members (``timely[i]`` for ``i`` in ``indices``) in one call; judge
        and learn from every member in order. Records each member's maturity in ``maturity``
        (mature, known); returns (index into ``timely``, detection) pairs."""
        model = prepared.model
        members = list(map(timely.__getitem__, indices))
        matrix, ages = feature_rows(members, model.features)
        is_mature = ages >= MIN_HISTORY_DAYS
        maturity[0][indices] = is_mature
        maturity[1][indices] = True
        # The model's input and the actors' quantiles share one scale (transform), computed once.
        logged = transform(matrix)
        self.scored[model.family] += int(np.count_nonzero(is_mature))
        # A row in which nothing lies beyond the population's usual can never be an alert: the
        # model is not asked about it (about 94 % of the rows of the generated worlds).
        asked = is_mature
        if not self.rule.score_every_row:
            asked = is_mature & prepared.could_be_evidence(logged)
        scored = np.flatnonzero(asked)
        scores = np.zeros(len(members))
        raw = np.zeros(len(members))
        if len(scored) == len(members):  # every row: no copy (scores are computed row by row)
            raw = model.raw_scores_of_inputs(logged)
            scores = model.calibration.normalize(raw)
        elif len(scored):
            raw[scored] = model.raw_scores_of_inputs(logged[scored])
            scores[scored] = model.calibration.normalize(raw[scored])
        flagged = np.flatnonzero(scores >= THRESHOLD_SCORE).tolist()
        actors = list(map(_ACTOR, map(_EVENT, members)))
        out = []
        start = 0
        # Each flagged row is judged against its actor's estimate from the rows before it:
        # the rows between flagged ones update the estimates together, in order.
        for index in flagged:
            self.history.update_rows(model.family, actors[start:index], logged[start:index])
            detection = self._judge(
                prepared, members[index], matrix[index], logged[index], (scores[index], raw[index])
            )
            if detection is not None:
                out.append((indices[index], detection))
            self.history.update(model.family, actors[index], logged[index])
            start = index + 1
        self.history.update_rows(model.family, actors[start:], logged[start:])
        return out

    def _judge(
        self,
        prepared: _Prepared,
        observation: Observation,
        row: npt.NDArray[np.float64],
        logged: npt.NDArray[np.float64],
        scores: tuple[float, float],
    ) -> Detection | None:
        """The detection of a row at or above the threshold, or None without evidence."""
        model = prepared.model
        estimate, rows = self.history.current(
            model.family, observation.event.actor, len(model.features)
        )
        trusted = estimate if rows >= self.rule.min_actor_rows else None
        evidence = beyond(
            logged,
            trusted,
            prepared.population_high,
            prepared.capable,
            context=prepared.context,
            population_margin=prepared.margin,
        )
        if not evidence:
            self.without_evidence[model.family] += 1
            return None
        found = [
            Evidence(
                model.features[i],
                float(row[i]),
                None if trusted is None else float(np.expm1(trusted[i])),
                prepared.population_high[i],
            )
            for i in evidence
        ]
        return self._detection(model, observation, row, found, scores)

    def _detection(
        self,
        model: TrainedModel,
        observation: Observation,
        row: npt.NDArray[np.float64],
        found: list[Evidence],
        scores: tuple[float, float],
    ) -> Detection:
        event = observation.event
        score, raw = float(scores[0]), float(scores[1])
        values = dict(zip(model.features, (float(value) for value in row), strict=True))
        reasons = evidence_reasons(
            found,
            model.population,
            population_quantile=self.rule.population_quantile,
            limit=self._top,
        )
        severity = severity_for(score) or Severity.MEDIUM
        return Detection(
            kind=DetectorKind.ANOMALY,
            name=f"{model.family}-anomaly",
            title=TITLES.get(model.family, f"Unusual {model.family} activity"),
            severity=severity,
            time=event.time,
            key=(("actor", event.actor),),
            actor=event.actor,
            source=event.source,
            summary=describe(event, reasons, observation.new_values),
            evidence=(event.id,),
            suppress=evidence_window([item.feature for item in found], least=self._suppress),
            tags=TAGS.get(model.family, ()),
            score=round(score, 4),
            runbook=RUNBOOKS.get(model.family),
            features=values,
            explanation={
                "model": model.family,
                "score": round(score, 4),
                "threshold": THRESHOLD_SCORE,
                "raw_score": raw,
                "raw_threshold": model.calibration.threshold,
                "evidence": [item.feature for item in found],
                "actor_quantile": self.rule.actor_quantile,
                "population_quantile": self.rule.population_quantile,
                "top_features": [reason.to_dict() for reason in reasons],
            },
        )


def feature_matrix(
    observations: Sequence[Observation], names: tuple[str, ...]
) -> npt.NDArray[np.float64]:
    """The observations' values of ``names`` as rows (one per observation), in float64."""
    return feature_table(list(map(_FEATURES, observations)), names)


def feature_rows(
    observations: Sequence[Observation], names: tuple[str, ...]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`feature_matrix`, and each observation's ``actor.age_days`` (infinite where the
    features have none), read in the same pass."""
    features = list(map(_FEATURES, observations))
    try:
        table = feature_table(features, (*names, _AGE))
    except KeyError:  # features without an age (hand-made ones): those actors count as mature
        ages = [vector.get(_AGE, math.inf) for vector in features]
        return feature_table(features, names), np.array(ages, dtype=np.float64)
    return np.ascontiguousarray(table[:, :-1]), table[:, -1]
