"""The daemon's side of learning: training in the background, swapping, metrics, logs.

:class:`BackgroundLearning` is called by the daemon's loop between batches.
When the pipeline's :class:`~detector.scoring.learner.Learner` is due, the
training's frames are read on the loop's thread (fast) and the training runs
on a daemon thread (slow: fit, check, publish), so consumption never waits for
it. The finished training is installed between two batches, never inside one.
A stop abandons a training in progress: it left only a temporary directory,
removed at the next start, and the next start trains again (its cut was never
recorded as done).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from detector.metrics import Metrics
from detector.pipeline import Pipeline
from detector.scoring.learner import Learner, TrainingJob, TrainingResult

__all__ = ["BackgroundLearning"]


_STOP_WAIT_S = 10.0
"""Most a stop waits for a training to end (well inside Kubernetes' 30 s grace)."""


class _Training(threading.Thread):
    """One training on a daemon thread: its result, or the exception it raised."""

    def __init__(self, job: TrainingJob) -> None:
        super().__init__(name="ciwatch-training", daemon=True)
        self.job = job
        self.result: TrainingResult | None = None
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.job.run()
        except Exception as exc:  # any failure is reported by the loop, never kills it
            self.error = exc


class BackgroundLearning:
    """Trains when due, installs finished trainings, follows rollbacks, publishes metrics."""

    def __init__(
        self, pipeline: Pipeline, learner: Learner, metrics: Metrics, log: Callable[..., None]
    ) -> None:
        self.pipeline = pipeline
        self.learner = learner
        self.metrics = metrics.models
        self._set_models = metrics.set_models
        self._log = log
        self._training: _Training | None = None
        self._published: int | None = None  # the generation the gauges describe

    @property
    def training(self) -> bool:
        return self._training is not None

    def step(self) -> None:
        """Install a finished training, or start one if due (between batches)."""
        training = self._training
        if training is not None:
            if training.is_alive():
                return
            self._training = None
            self.metrics.training.set(0)
            self._finish(training)
        else:
            cut = self.learner.due()
            if cut is not None:
                self._training = _Training(self.learner.prepare(cut))
                self.metrics.training.set(1)
                self._log(f"training models on the history up to {cut.isoformat()}")
        self.publish()

    def wait(self, timeout: float) -> bool:
        """Wait for a training in progress (tests, replay-like runs); whether it finished."""
        if self._training is not None:
            self._training.join(timeout)
        return self._training is None or not self._training.is_alive()

    def _finish(self, training: _Training) -> None:
        result = training.result
        if result is None:
            self.learner.give_up(training.job.cut)
            self.metrics.trainings.labels("error").inc()
            self._log(f"training failed: {training.error}", level=logging.ERROR)
            return
        self.pipeline.install(result)
        self.metrics.training_seconds.set(result.seconds)
        for family, check in result.check.families.items():
            self.metrics.check_passed.labels(family).set(1 if check.passed else 0)
        if result.overtaken:
            self.metrics.trainings.labels("overtaken").inc()
            self._log("new models not published: a rollback changed the generation meanwhile")
            return
        if result.generation is None:
            self.metrics.trainings.labels("rejected").inc()
            self._log(f"new models rejected: {result.check.summary()}", level=logging.WARNING)
            return
        self.metrics.trainings.labels("published").inc()
        generation = result.generation
        kept = ", ".join(generation.carried)
        carried = f"; kept from before: {kept}" if kept else ""
        self._log(
            f"model generation {generation.number} in use: {', '.join(generation.families)}"
            f"{carried} ({result.seconds:.1f} s; {result.check.summary()})"
        )

    def follow_rollback(self) -> None:
        """Use the store's current generation if ``ciwatch models rollback`` changed it."""
        if self._training is not None or not self.learner.rolled_back():
            return
        models = self.learner.current_models()
        if models is None:
            return
        self.pipeline.use_models(models)
        self.metrics.rollbacks.inc()
        number = self.learner.generation.number if self.learner.generation else 0
        self._log(f"model generation {number} in use (rolled back)")

    def flush(self) -> None:
        """Write the history's changed days (with each checkpoint); OSError to the caller."""
        self.learner.history.flush()

    def publish(self) -> None:
        """Set the learning gauges (the daemon counts what was held back, per batch)."""
        learner, metrics = self.learner, self.metrics
        metrics.learning.set(1 if learner.learning() else 0)
        for family, rows in learner.history.rows().items():
            metrics.history_rows.labels(family).set(rows)
        generation = learner.generation
        if generation is not None and generation.number != self._published:
            self._published = generation.number
            scorer = self.pipeline.scorer
            self._set_models(scorer.describe() if scorer is not None else [])
            metrics.set_generation(
                generation.number,
                generation.created_at.timestamp(),
                generation.rows,
                {name: True for name in generation.families if name not in generation.carried},
            )

    def abandon(self, wait_s: float = _STOP_WAIT_S) -> None:
        """At a stop: a training in progress is given ``wait_s`` to end, then left to die.

        Its result is not installed either way. The wait is there because a thread
        still inside native code (scikit-learn, numba) when the interpreter exits can
        abort the process instead of letting it exit 0.
        """
        if self._training is not None and self._training.is_alive():
            cut = self._training.job.cut.isoformat()
            self._log(f"training up to {cut} abandoned at stop: it runs again after a restart")
            self._training.join(wait_s)
