"""Where the layers meet: records → events → features → rules → alerts → sinks.

:class:`Pipeline` is the detection itself, with no I/O: the same object runs in
``ciwatch run``, ``replay`` and ``demo``, so nothing about detection can differ
between them. What it hands back is in :mod:`detector.outcomes`; the daemon
(:mod:`detector.daemon`) and ``ciwatch replay`` deliver its alerts and commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from detector.alerts.model import Alert
from detector.alerts.risk import RiskScorer
from detector.alerts.suppression import Clock, Suppressor
from detector.assembly import (
    build_learner,
    build_rules,
    learns,
    model_files_signature,
    models_directory,
    rules_signature,
)
from detector.config import PipelineConfig
from detector.detections import Detection
from detector.errors import CiwatchError
from detector.events.model import Event
from detector.events.normalizer import Normalizer
from detector.events.ordering import in_event_time_order
from detector.features.dedup import DuplicateSettings, RecentIds
from detector.features.observation import Observation
from detector.features.store import FeatureStore
from detector.normalizing import build_normalizer
from detector.outcomes import BatchOutcome, RunStats
from detector.rules.engine import RuleContext, RuleEngine
from detector.rules.model import Rule
from detector.rules.reads import kinds_read
from detector.scoring import AnomalyScorer, ModelError, ModelSet, load_models
from detector.scoring.evidence import EvidenceRule
from detector.scoring.learner import Learner, TrainingResult
from detector.sources.record import RawRecord

__all__ = ["Pipeline"]

_STATE_VERSION = 1
_LATE = attrgetter("late")
_NONE: Mapping[str, Mapping[str, Sequence[int]]] = {}


class Pipeline:
    """Detection without I/O: feed records or events, get alerts."""

    def __init__(
        self,
        normalizer: Normalizer,
        features: FeatureStore,
        rules: RuleEngine | None,
        suppressor: Suppressor,
        scorer: AnomalyScorer | None = None,
        duplicates: RecentIds | None = None,
        risk: RiskScorer | None = None,
    ) -> None:
        self.normalizer = normalizer
        self.features = features
        self.duplicates = duplicates if duplicates is not None else RecentIds(DuplicateSettings())
        self.rules = rules if rules is not None else RuleEngine([])
        self.suppressor = suppressor
        self.scorer = scorer
        self.risk = risk if risk is not None else RiskScorer()
        self.learner: Learner | None = None
        self.learner_shared = False
        """The learner is the process's, fed by several pipelines (scale-out's actor tasks):
        its state is saved by its owner, not in this pipeline's snapshot."""
        self.models: ModelSet | None = None
        """The models the scorer uses (None: no scorer)."""
        self.models_dir: Path | None = None
        self.evidence = EvidenceRule()
        self._models_signature: tuple[tuple[str, int, int], ...] = ()
        self.model_reload_errors = 0
        self.last_model_error: str | None = None
        self._rules_signature: tuple[tuple[str, int, int], ...] = ()
        self.rule_reload_errors = 0
        self.last_rule_error: str | None = None
        self.stats = RunStats()

    @classmethod
    def from_config(
        cls,
        config: PipelineConfig,
        *,
        rules: Sequence[Rule] | None = None,
        normalizer: Normalizer | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], datetime] | None = None,
        learn_dir: Path | None = None,
        bundled_fallback: bool = True,
    ) -> Pipeline:
        """The pipeline a config describes.

        ``rules`` and ``normalizer`` replace what the config would build: rule
        tests run one rule at a time and share one normalizer. ``wall_clock``
        (the daemon's) dead-letters events dated further ahead of it than
        ``normalizer.max_future_skew``; replays pass none. ``learn_dir``: the
        state directory models are learnt in when ``models.dir`` is null
        (:mod:`detector.scoring.learner`); without one, a null ``models.dir``
        means the bundled models unless ``bundled_fallback`` is off (the daemon:
        it scores only with models it learnt or was told to use).
        """
        context = RuleContext(
            change_windows=config.change_windows,
            tracked=config.features.tracked,
            allowed_lateness=config.features.longest_lateness,
        )
        alerts = config.alerts
        suppressor = Suppressor(
            clock=clock, max_evidence=alerts.max_evidence, max_open=alerts.max_open
        )
        chosen = build_rules(config) if rules is None else rules
        pipeline = cls(
            normalizer or build_normalizer(config, wall_clock=wall_clock),
            FeatureStore(config.features, kinds=kinds_read(chosen, models=config.models.enabled)),
            None,
            suppressor,
            duplicates=RecentIds(config.duplicates),
            risk=RiskScorer(config.risk, clock=clock, max_evidence=alerts.max_evidence),
        )
        pipeline.rules = pipeline._rule_engine(chosen, context)
        if rules is None:
            pipeline._rules_signature = rules_signature(config)
        learning = learn_dir is not None and learns(config)
        pipeline.models_dir = models_directory(config, fallback=bundled_fallback and not learning)
        pipeline.evidence = EvidenceRule(**config.models.evidence.model_dump())
        if learn_dir is not None and learning:
            pipeline.learner = build_learner(config, learn_dir)
            pipeline.use_models(pipeline.learner.current_models() or ModelSet({}))
        pipeline.reload_models()
        return pipeline

    def use_models(self, models: ModelSet) -> None:
        """Score with ``models`` from now on; actors keep their usual, counters carry on."""
        previous = self.scorer
        scorer = AnomalyScorer(
            models,
            evidence=self.evidence,
            history=previous.history if previous is not None else None,
            alert_from=self.learner.alert_from if self.learner is not None else None,
        )
        if previous is not None:
            scorer.carry(previous)
        self.scorer = scorer
        self.models = models

    def train_if_due(self, now: datetime) -> TrainingResult | None:
        """Train here and now if the learner is due at event time ``now`` (replay; the daemon
        trains in the background with :meth:`Learner.prepare` and :meth:`install`)."""
        if self.learner is None or (cut := self.learner.due(now)) is None:
            return None
        result = self.learner.prepare(cut).run()
        self.install(result)
        return result

    def install(self, result: TrainingResult) -> None:
        """A finished training: its generation (if one was published) scores from now on."""
        if self.learner is None:
            return
        self.learner.finished(result)
        if result.models is not None:
            self.use_models(result.models)

    def reload_models(self, *, force: bool = False) -> bool:
        """Load :attr:`models_dir` again if its files changed; True if new models now score.

        The daemon calls this now and then: a new ``ciwatch train --out`` into the
        directory takes effect without a restart. A directory caught half-written,
        or models that fail their checks, leave the current models in place; the
        error is kept in :attr:`last_model_error` and the load is retried next time.
        ``force`` loads the directory even if its files look unchanged (SIGHUP).
        """
        if self.models_dir is None:
            return False
        signature = model_files_signature(self.models_dir)
        if signature == self._models_signature and not force:
            return False
        try:
            models = load_models(self.models_dir)
        except ModelError as exc:
            self.model_reload_errors += 1
            self.last_model_error = str(exc)
            if not self._models_signature:
                raise  # at start-up, bad models are a configuration error
            return False
        self.use_models(models)
        self._models_signature = signature
        self.last_model_error = None
        return True

    def reload_rules(self, config: PipelineConfig, *, force: bool = False) -> bool:
        """Load the config's rule packs again if their files changed; True if new rules apply.

        Windows of rules whose matching and grouping did not change carry over
        (the engine's snapshot is restored into the new engine); a pack that no
        longer loads leaves the current rules in place, its error in
        :attr:`last_rule_error`.
        """
        signature = rules_signature(config)
        if signature == self._rules_signature and not force:
            return False
        try:
            rules = build_rules(config)
        except CiwatchError as exc:
            self.rule_reload_errors += 1
            self.last_rule_error = str(exc)
            return False
        # A kind the new rules read is counted from now on (its counts start here).
        self.features.count_also(kinds_read(rules, models=config.models.enabled))
        engine = self._rule_engine(rules, self.rules.context)
        engine.restore(self.rules.snapshot())
        self.rules = engine
        self._rules_signature = signature
        self.last_rule_error = None
        return True

    def _rule_engine(self, rules: Sequence[Rule], context: RuleContext) -> RuleEngine:
        # Known values through the pipeline, not the store: restore() replaces the store.
        return RuleEngine(
            rules, context, known_values=lambda actor, name: self.features.known_values(actor, name)
        )

    def process(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Normalize and detect over one batch; the alerts are ready to send.

        The batch's events are detected on in event time: records of one batch
        (several partitions, files from several regions) interleave, and sorting
        them costs little and waits for nothing.
        """
        outcome = self.normalize(records)
        outcome.events = in_event_time_order(outcome.events)
        outcome.alerts = self.detect(outcome.events)
        return outcome

    def normalize(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Normalize and count one batch without detecting (replay sorts the events first)."""
        normalized = self.normalizer.normalize_batch(records)
        outcome = BatchOutcome(
            normalized.events, normalized.dead_letters, skipped=normalized.skipped
        )
        self.stats.count(outcome, len(records))
        return outcome

    def detect(self, events: Iterable[Event]) -> list[Alert]:
        """Detection over events :meth:`normalize` counted, in the order given."""
        alerts = self.process_events(events)
        self.stats.add_alerts(alerts)
        return alerts

    def process_events(self, events: Iterable[Event]) -> list[Alert]:
        return self.raise_alerts(*self.observe(events))

    def observe(
        self, events: Iterable[Event], carried: Mapping[str, Mapping[str, Sequence[int]]] = _NONE
    ) -> tuple[list[Observation], list[Detection]]:
        """Features and rule firings of new events (duplicates counted and left out).

        ``carried``: event id → the window counts upstream scale-out stages
        computed for it (:meth:`FeatureStore.observe`).
        """
        kept, times = self.without_duplicates(events)
        # The whole batch through the features first (their counting runs at once), then
        # the rules over the observations in the same order.
        observations = self.features.observe_batch(kept, carried or None, times)
        self.stats.late_events += sum(map(_LATE, observations))
        detections = self.rules.evaluate_batch(observations)
        self.features.counted(len(observations))
        return observations, detections

    def without_duplicates(self, events: Iterable[Event]) -> tuple[list[Event], list[float]]:
        """The events not seen before (the duplicates counted) and their times in seconds,
        read once for the duplicate check and the features."""
        batch = list(events)
        times = [event.time.timestamp() for event in batch]
        kept, times, duplicates = self.duplicates.new_events(batch, times)
        for event in duplicates:
            self.stats.duplicates[event.source] += 1
        return kept, times

    def raise_alerts(
        self, observations: list[Observation], detections: list[Detection]
    ) -> list[Alert]:
        """Scoring, suppression and risk over what :meth:`observe` gave: the alerts to send."""
        if self.learner is not None and self.scorer is not None:
            self.learner.observe(observations)
            self.scorer.alert_from = self.learner.alert_from
        if self.scorer is not None:
            # Models score the batch at once (vectorized); merged in event time so that
            # suppression and rule/model linking see them in the order they happened.
            detections.extend(self.scorer.score(observations))
            detections.sort(key=lambda found: found.time)
        alerts = self.suppressor.process(detections)
        watermark = self.features.watermark
        if watermark is not None:
            alerts.extend(self.suppressor.advance(watermark))
        # After suppression: risk adds up distinct alerts, not the firings they fold.
        alerts = self.risk.process(alerts)
        self._keep_out_of_training(alerts)
        return alerts

    def _keep_out_of_training(self, alerts: Sequence[Alert]) -> None:
        """A learning pipeline keeps alerted activity out of its training (incidents)."""
        if self.learner is not None and alerts:
            self.learner.exclude(
                (
                    alert.id,
                    alert.detection.actor,
                    alert.detection.time,
                    alert.last_time or alert.detection.time,
                )
                for alert in alerts
                if alert.detection.actor
            )

    def finish(self) -> list[Alert]:
        """Alerts still folding repeats, sent again with their final counts."""
        alerts = self.risk.process(self.suppressor.flush())
        self._keep_out_of_training(alerts)
        self.stats.folded = self.suppressor.folded
        self.stats.add_alerts(alerts)
        return alerts

    def held_back(self) -> dict[tuple[str, str], int]:
        """(model family, reason) → high anomaly scores not raised so far (for metrics)."""
        totals: dict[tuple[str, str], int] = {}
        scorer = self.scorer
        if scorer is not None:
            for reason, counts in (
                ("in_learning", scorer.in_learning),
                ("without_evidence", scorer.without_evidence),
            ):
                totals.update({(family, reason): n for family, n in counts.items()})
        for name, n in self.suppressor.linked_anomalies.items():
            totals[(name.removesuffix("-anomaly"), "linked")] = n
        return totals

    def snapshot(self, *, streamed: bool = False) -> dict[str, Any]:
        """The state as plain JSON data (:meth:`restore`); ``streamed``: its large parts as
        sections of a checkpoint, made as it is written (:mod:`detector.streamed`)."""
        history = self.scorer.history if self.scorer is not None else None
        return {
            "version": _STATE_VERSION,
            "features": self.features.snapshot(streamed=streamed),
            "rules": self.rules.snapshot(),
            "alerts": self.suppressor.snapshot(),
            "duplicates": self.duplicates.snapshot(),
            "risk": self.risk.snapshot(),
            "anomaly_actors": history.snapshot(streamed=streamed) if history is not None else {},
            "learner": self._learner_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported pipeline state version {state.get('version')!r}")
        features = self.features
        self.features = FeatureStore.restore(
            features.settings, state["features"], kinds=features.kinds, carried=features.carried
        )
        self.rules.restore(state["rules"])
        self.suppressor.restore(state["alerts"])
        # Checkpoints written before duplicates were recognised have no ids: start empty.
        self.duplicates.restore(state.get("duplicates", {}))
        # Checkpoints written before risk scoring have none: start with no risk.
        self.risk.restore(state.get("risk", {}))
        if self.scorer is not None:  # older checkpoints: actors relearn their usual
            self.scorer.history.restore(state.get("anomaly_actors", {}))
        if self.learner is not None and self.scorer is not None:
            if not self.learner_shared:
                self.learner.restore(state.get("learner", {}))
            self.scorer.alert_from = self.learner.alert_from

    def _learner_state(self) -> dict[str, Any]:
        if self.learner is None or self.learner_shared:
            return {}
        return self.learner.snapshot()
