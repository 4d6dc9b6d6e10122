"""The anomaly models' metrics: learning, generations, checks, and what the scorer held back.

Part of :class:`detector.metrics.Metrics` (same registry, ``metrics.models``);
apart only to keep each module small. Labels are model families, outcomes
and reasons: bounded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["OUTCOMES", "ModelMetrics"]

OUTCOMES = ("published", "rejected", "overtaken", "error")


class ModelMetrics:
    """Gauges of the current generation and learning state; counters of what was held back."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.generation = Gauge(
            "ciwatch_model_generation", "Model generation in use (0: none yet)", registry=r
        )
        self._created = 0.0
        self.age = Gauge(
            "ciwatch_model_generation_age_seconds",
            "Wall time since the generation in use was published",
            registry=r,
        )
        self.age.set_function(lambda: time.time() - self._created if self._created else 0.0)
        self.learning = Gauge(
            "ciwatch_model_learning",
            "1 while in the learning period: anomalies are scored and counted, not alerted",
            registry=r,
        )
        self.training = Gauge(
            "ciwatch_model_training", "1 while a model generation is being trained", registry=r
        )
        self.trainings = Counter(
            "ciwatch_model_trainings",
            "Trainings by outcome (published, rejected by the checks, error)",
            ["outcome"],
            registry=r,
        )
        for outcome in OUTCOMES:  # exported from 0, so a rate over them has data
            self.trainings.labels(outcome)
        self.training_seconds = Gauge(
            "ciwatch_model_training_seconds", "Wall time of the last training", registry=r
        )
        self.training_rows = Gauge(
            "ciwatch_model_training_rows",
            "Rows the generation in use was trained on, per family",
            ["model"],
            registry=r,
        )
        self.check_passed = Gauge(
            "ciwatch_model_check_passed",
            "Outcome of the last check per family (1 passed, 0 failed)",
            ["model"],
            registry=r,
        )
        self.history_rows = Gauge(
            "ciwatch_model_history_rows",
            "Sampled feature rows kept for training, per family",
            ["model"],
            registry=r,
        )
        self.rollbacks = Counter(
            "ciwatch_model_rollbacks",
            "Generations changed by `ciwatch models rollback`",
            registry=r,
        )
        self.held_back = Counter(
            "ciwatch_anomalies_held_back",
            "High anomaly scores not raised: in_learning (learning period), without_evidence "
            "(no feature beyond the actor's and the population's usual), linked (a victim of "
            "another alert)",
            ["model", "reason"],
            registry=r,
        )
        self._seen: dict[tuple[str, str], int] = {}

    def set_generation(
        self, number: int, created: float, rows: Mapping[str, int], checks: Mapping[str, bool]
    ) -> None:
        """The generation in use: its number, creation (Unix time), rows and check per family."""
        self.generation.set(number)
        self._created = created
        self.set_training_rows(rows)
        for family, passed in checks.items():
            self.check_passed.labels(family).set(1 if passed else 0)

    def set_training_rows(self, rows: Mapping[str, int]) -> None:
        """Rows each model in use was trained on (learnt or loaded from a directory)."""
        self.training_rows.clear()
        for family, count in rows.items():
            self.training_rows.labels(family).set(count)

    def count_held_back(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Advance the held-back counters to running totals per (model, reason)."""
        for key, total in totals.items():
            seen = self._seen.get(key, 0)
            self.held_back.labels(*key).inc(total - seen if total >= seen else total)
            self._seen[key] = total
