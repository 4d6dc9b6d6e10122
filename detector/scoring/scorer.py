"""Scoring a batch of observations with the trained family models, into explained Detections.

Per pipeline batch, :meth:`AnomalyScorer.score` groups the observations by
family (an event may belong to several, or none), builds one matrix per
family from the family's features, scores it in one vectorized call, and
turns each event at or above the threshold into a :class:`Detection`
(``kind=anomaly``, ``name=<family>-anomaly``, key ``actor``). Observations of
late events and of actors with less than a day of history are skipped: the models were not
trained on them and their windows say little. People and service identities are scored by
different families (see :mod:`detector.features.families`).

Every qualifying event becomes a detection, whatever the batch boundaries
(replay and daemon batch differently); the alert layer folds repeats for the
same actor within ``suppress``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from detector.detections import Detection, DetectorKind, Severity
from detector.errors import ConfigError
from detector.features.families import FAMILIES, Family
from detector.features.observation import Observation
from detector.scoring.calibration import HIGH_SCORE, THRESHOLD_SCORE
from detector.scoring.explain import describe, top_features
from detector.scoring.training import MIN_HISTORY_DAYS, ModelSet, TrainedModel

__all__ = ["TITLES", "AnomalyScorer", "BaselineLookup", "severity_for"]

BaselineLookup = Callable[[str], Mapping[str, float]]
"""Actor → its usual behaviour (``FeatureStore.baseline``), for explanations."""

_AGE = "actor.age_days"
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


def _no_baseline(actor: str) -> Mapping[str, float]:
    return {}


class AnomalyScorer:
    """The trained models of a :class:`ModelSet`, applied to observations in batches.

    ``baseline``: actor → its usual behaviour (pass ``FeatureStore.baseline``);
    ``families``: family definitions by name (the models' families must be
    among them); ``top``: how many features an explanation names.

    ``scored`` counts observations scored and ``skipped`` those left out
    (late or new actor), per family, for metrics.
    """

    def __init__(
        self,
        models: ModelSet,
        *,
        baseline: BaselineLookup | None = None,
        families: Mapping[str, Family] = FAMILIES,
        suppress: timedelta = timedelta(hours=1),
        top: int = 3,
    ) -> None:
        unknown = [model.family for model in models if model.family not in families]
        if unknown:
            raise ConfigError(f"no family definition for models {unknown}", where="models")
        self._models = [(families[model.family], model) for model in models]
        self._baseline = baseline or _no_baseline
        self._suppress = suppress
        self._top = top
        self.scored: dict[str, int] = {model.family: 0 for model in models}
        self.skipped = 0

    def describe(self) -> list[tuple[str, str, datetime | None]]:
        """(family, detector name, end of the training window) per model, for metrics."""
        return [
            (model.family, str(model.detector.spec.get("name", "")), model.window.last)
            for _, model in self._models
        ]

    def score(self, observations: Sequence[Observation]) -> list[Detection]:
        """Detections for the observations at or above their family's threshold, in input order."""
        usable = [
            o
            for o in observations
            if not o.late and o.features.get(_AGE, math.inf) >= MIN_HISTORY_DAYS
        ]
        self.skipped += len(observations) - len(usable)
        found: list[tuple[int, Detection]] = []
        if not usable:
            return []
        position = {id(observation): index for index, observation in enumerate(usable)}
        for family, model in self._models:
            members = [o for o in usable if family.applies(o.event)]
            if not members:
                continue
            self.scored[model.family] += len(members)
            matrix = np.array(
                [[o.features[name] for name in model.features] for o in members],
                dtype=np.float64,
            ).reshape(len(members), len(model.features))
            raw = model.raw_scores(matrix)
            scores = model.calibration.normalize(raw)
            for index in np.flatnonzero(scores >= THRESHOLD_SCORE):
                observation = members[index]
                detection = self._detection(
                    model, observation, matrix[index], float(scores[index]), float(raw[index])
                )
                found.append((position[id(observation)], detection))
        found.sort(key=lambda item: item[0])
        return [detection for _, detection in found]

    def _detection(
        self,
        model: TrainedModel,
        observation: Observation,
        row: npt.NDArray[np.float64],
        score: float,
        raw: float,
    ) -> Detection:
        event = observation.event
        values = dict(zip(model.features, (float(value) for value in row), strict=True))
        reasons = top_features(
            values, model.population, self._baseline(event.actor), limit=self._top
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
            suppress=self._suppress,
            score=round(score, 4),
            features=values,
            explanation={
                "model": model.family,
                "score": round(score, 4),
                "threshold": THRESHOLD_SCORE,
                "raw_score": raw,
                "raw_threshold": model.calibration.threshold,
                "top_features": [reason.to_dict() for reason in reasons],
            },
        )
