"""Learning where it runs: the daemon trains its anomaly models on its own history.

A :class:`Learner` owns two things in a state directory:

- ``history/``: a bounded, sampled history of feature rows per family
  (:class:`~detector.scoring.history.FeatureHistory`);
- ``models/``: the model generations (:class:`~detector.scoring.generations.GenerationStore`).

Its schedule runs on **event time**, so ``ciwatch replay --learn`` does over a
backlog what ``ciwatch run`` does live:

- Training is considered at whole hours of event time (the *cut*). The first
  training happens at the first cut where a family has
  :data:`~detector.scoring.training.MIN_TRAINING_ROWS` rows; then a family that
  was never trained is picked up at the next cut it has enough rows, and
  everything is retrained every ``retrain_every`` on the last ``window``.
- The rows of the last ``check_period`` before the cut are held out: the new
  models are checked on them (:func:`~detector.scoring.generations.check_models`),
  not trained on them. A family that fails keeps the previous generation's
  model; if none passes, no generation is published and the attempt is recorded.
- Anomaly alerts start ``learning_period`` after the first row: before that the
  models score and the would-be alerts are counted, so the operator sees the
  daemon learning without being paged by half-trained models.

A training is prepared on the caller's thread (:meth:`Learner.prepare` reads
the frames: fast) and run anywhere (:meth:`TrainingJob.run` fits, checks and
publishes: slow; the daemon runs it on a background thread). An interrupted
training leaves nothing behind but a temporary directory the store removes at
start; the next cut trains again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # no stubs for pandas 3 in dev deps

from detector.features.families import FAMILIES, Family
from detector.features.observation import Observation
from detector.scoring.envelope import ModelError
from detector.scoring.generations import CheckOutcome, Generation, GenerationStore, check_models
from detector.scoring.history import FeatureHistory
from detector.scoring.incidents import Incident, Incidents
from detector.scoring.learn_settings import LearnSettings
from detector.scoring.training import MIN_TRAINING_ROWS, ModelSet, TrainedModel, train_models

__all__ = ["Learner", "TrainingJob", "TrainingResult"]

_CUT = timedelta(hours=1)
_log = logging.getLogger("ciwatch.learner")


@dataclass(frozen=True, slots=True)
class TrainingResult:
    """What a training produced: the generation published (None: rejected), its check."""

    cut: datetime
    generation: Generation | None
    models: ModelSet | None
    check: CheckOutcome
    seconds: float
    tried: tuple[str, ...] = ()
    """Every family with enough rows before the cut (trained, or skipped as too few were
    left once the check period was held out)."""
    overtaken: bool = False
    """A rollback changed the current generation while training: nothing was published."""


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """The frames of one training, read already; :meth:`run` fits, checks and publishes."""

    cut: datetime
    train: Mapping[str, pd.DataFrame]
    recent: Mapping[str, pd.DataFrame]
    previous: ModelSet | None
    store: GenerationStore
    settings: LearnSettings
    detector: str
    target_alert_rate: float
    families: Mapping[str, Family]
    clock: Callable[[], datetime]
    current: tuple[int, ...] = ()
    """The store's :meth:`~GenerationStore.signature` when prepared."""
    ready: tuple[str, ...] = ()
    """The families with :data:`MIN_TRAINING_ROWS` rows before the cut."""

    def run(self) -> TrainingResult:
        """Train every family with enough rows, check, publish the passing ones (slow)."""
        started = self.clock()
        models = train_models(
            dict(self.train),
            families=self.families,
            detector=self.detector,
            target_alert_rate=self.target_alert_rate,
        )
        check = check_models(
            models,
            self.recent,
            target_alert_rate=self.target_alert_rate,
            max_rate_factor=self.settings.max_alert_rate_factor,
        )
        chosen, carried = self._compose(models, check)
        generation = None
        # A rollback while this trained wins: publishing now would silently undo it.
        overtaken = self.store.signature() != self.current
        if set(chosen) - set(carried) and not overtaken:
            generation = self.store.publish(
                ModelSet(chosen, models.skipped),
                check,
                created_at=self.clock(),
                carried=carried,
                cut=self.cut,
            )
        else:
            self.store.record_check(check, created_at=self.clock())
            chosen = {}
        seconds = (self.clock() - started).total_seconds()
        published = ModelSet(chosen) if generation is not None else None
        return TrainingResult(
            self.cut, generation, published, check, seconds, self.ready, overtaken
        )

    def _compose(
        self, models: ModelSet, check: CheckOutcome
    ) -> tuple[dict[str, TrainedModel], tuple[str, ...]]:
        """The passing new models, and the previous generation's for families that failed."""
        chosen = {name: models.models[name] for name in check.passed_families}
        carried = []
        for name, model in (self.previous.models if self.previous else {}).items():
            if name not in chosen:
                chosen[name] = model
                carried.append(name)
        return chosen, tuple(carried)


class Learner:
    """The history, the generations and the event-time schedule of one state directory.

    ``clock``: the wall clock stamped on generations (``created_at``); the
    schedule itself runs on event time only.
    """

    def __init__(
        self,
        directory: Path,
        settings: LearnSettings,
        *,
        detector: str,
        target_alert_rate: float,
        families: Mapping[str, Family] = FAMILIES,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.families = families
        self.history = FeatureHistory(
            directory / "history",
            families=families,
            per_day=settings.per_day_rows,
            keep_days=settings.window.days + settings.check_period.days + 1,
        )
        self.store = GenerationStore(directory / "models", keep=settings.keep_generations)
        self._detector = detector
        self._target = target_alert_rate
        self._clock = clock
        # Without a checkpoint (restored below when there is one), the history tells.
        self.first_seen, self.latest = self.history.span()
        self.last_cut: datetime | None = None
        self.attempted: set[str] = set()
        self.incidents = Incidents()
        self.excluded_rows = 0
        """Rows the last prepared training left out as incidents."""
        current = self.store.current()
        self._signature = self.store.signature()
        self.generation: Generation | None = current
        if current is not None:
            self.last_cut = current.cut
            self.attempted = set(current.families)

    # -- what the pipeline asks ------------------------------------------------------------

    def current_models(self) -> ModelSet | None:
        """The current generation's models (None: none yet, or it no longer loads)."""
        if self.generation is None:
            return None
        try:
            return self.store.load(self.generation)
        except ModelError as exc:
            _log.warning("generation %s does not load: %s", self.generation.number, exc)
            return None

    @property
    def alert_from(self) -> datetime | None:
        """Event time anomaly alerts start at (None: nothing seen yet, so not yet)."""
        if self.first_seen is None:
            return None
        return self.first_seen + self.settings.learning_period

    def learning(self) -> bool:
        """Still in the learning period (or nothing seen yet)."""
        start = self.alert_from
        return start is None or self.latest is None or self.latest < start

    def observe(self, observations: Sequence[Observation]) -> None:
        """Keep the sampled rows of a batch and move the event-time clock."""
        self.history.observe(observations)
        times = [o.event.time for o in observations if not o.late]
        if times:
            first, last = min(times), max(times)
            self.first_seen = first if self.first_seen is None else min(self.first_seen, first)
            self.latest = last if self.latest is None else max(self.latest, last)

    # -- the schedule ----------------------------------------------------------------------

    def due(self, now: datetime | None = None) -> datetime | None:
        """The cut a training is due at, at event time ``now`` (default: the latest seen)."""
        now = now or self.latest
        if now is None:
            return None
        cut = _floor(now, _CUT)
        if self.last_cut is not None and cut <= self.last_cut:
            return None
        ready = {name for name, rows in self.history.rows().items() if rows >= MIN_TRAINING_ROWS}
        if not ready:
            return None
        if self.last_cut is None or cut - self.last_cut >= self.settings.retrain_every:
            return cut
        return cut if ready - self.attempted else None

    def prepare(self, cut: datetime) -> TrainingJob:
        """Read the frames of a training at ``cut`` (train on the window, hold out the newest)."""
        settings = self.settings
        start = cut - settings.window
        train: dict[str, pd.DataFrame] = {}
        recent: dict[str, pd.DataFrame] = {}
        ready = []
        self.incidents.forget_before(start)
        self.excluded_rows = 0
        for name in self.families:
            rows = self.history.frame(name, start, cut)
            inside = self.incidents.mask(rows)
            self.excluded_rows += int(inside.sum())
            rows = rows.loc[~inside]
            if rows.empty:
                continue
            if len(rows) >= MIN_TRAINING_ROWS:
                ready.append(name)
            held_from = cut - settings.check_period
            span = rows["time"].iloc[-1] - rows["time"].iloc[0]
            if span >= 2 * settings.check_period:
                train[name] = rows.loc[rows["time"] < held_from]
                recent[name] = rows.loc[rows["time"] >= held_from]
            else:  # too young to hold a period out: checked on what it learnt
                train[name] = recent[name] = rows
        return TrainingJob(
            cut,
            train,
            recent,
            self.current_models(),
            self.store,
            settings,
            self._detector,
            self._target,
            self.families,
            self._clock,
            self.store.signature(),
            tuple(ready),
        )

    def finished(self, result: TrainingResult) -> None:
        """Record a training's outcome: the cut is done whether or not it was published."""
        self.last_cut = result.cut
        # Every family trained was attempted, also one with no recent rows to check on (else
        # it would be "never trained" and retrain everything every hour).
        self.attempted |= set(result.check.families) | set(result.tried)
        if result.generation is not None:
            self.generation = result.generation

    def exclude(self, incidents: Iterable[Incident]) -> None:
        """Keep these alerts' actors out of training around them (:mod:`.incidents`)."""
        self.incidents.add(incidents)

    def give_up(self, cut: datetime) -> None:
        """A training that failed outright (a full disk): tried again at the next retraining."""
        self.last_cut = cut

    def rolled_back(self) -> bool:
        """Whether the store's current generation changed (``ciwatch models rollback``)."""
        signature = self.store.signature()
        if signature == self._signature:
            return False
        self._signature = signature
        current = self.store.current()
        number = current.number if current is not None else None
        if number == (self.generation.number if self.generation is not None else None):
            return False
        self.generation = current
        return True

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "first_seen": _iso(self.first_seen),
            "latest": _iso(self.latest),
            "last_cut": _iso(self.last_cut),
            "attempted": sorted(self.attempted),
            "incidents": self.incidents.snapshot(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.first_seen = _time(state.get("first_seen"))
        self.latest = _time(state.get("latest"))
        cut = _time(state.get("last_cut"))
        published = self.generation.cut if self.generation is not None else None
        # A generation published after the checkpoint was written still counts.
        self.last_cut = max((t for t in (cut, published) if t is not None), default=None)
        self.attempted = set(state.get("attempted", ()))
        self.incidents.restore(state.get("incidents", {}))
        if self.generation is not None:  # its families were trained, checkpoint or not
            self.attempted |= set(self.generation.families)


def _floor(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // seconds * seconds, UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None
