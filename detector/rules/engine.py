"""The rule engine: every enabled rule against each observation, in event time.

    engine = RuleEngine(load_rules([bundled_rules_dir()]), RuleContext())
    detections = engine.evaluate(observation)

Rules run in pack order; a rule's ``where`` is checked first, then ``unless``,
then the change windows, then its kind (registered by name in
:data:`EVALUATORS`). What ``where``, ``unless`` and sequence steps ask of an
event's source, action, category, outcome and actor type is decided once per
kind of event (:mod:`detector.rules.gates`): an event is only tried against the
rules its kind admits, on the conditions left. Threshold
and sequence state lives per rule and group key, is swept of groups idle beyond
their window, and round-trips through :meth:`RuleEngine.snapshot` /
:meth:`RuleEngine.restore` as plain JSON. No wall clock is read anywhere (only
the time bound of backtracking regexes is wall-clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from detector.detections import Detection
from detector.errors import CiwatchError, RuleError
from detector.features.observation import Observation
from detector.rules.conditions import (
    Predicate,
    RegexGuard,
    compile_any_of,
    compile_condition_map,
)
from detector.rules.context import ChangeWindow, RuleContext
from detector.rules.fields import FieldPath, group_key_function, parse_field_path
from detector.rules.firings import rule_detection
from detector.rules.gates import KIND_FIELDS, Gate, unless_gate, where_gate
from detector.rules.loader import check_tracked, check_unique_ids
from detector.rules.model import Rule, RuleKind
from detector.rules.sequence import SequenceEvaluator, Step
from detector.rules.state import Evaluator, Observe, from_micros, to_micros
from detector.rules.stateless import KnownValues, MatchEvaluator, NewValueEvaluator
from detector.rules.threshold import CountThreshold, DistinctThreshold

__all__ = [
    "EVALUATORS",
    "ChangeWindow",
    "EngineStateError",
    "RuleContext",
    "RuleEngine",
]

SNAPSHOT_VERSION = 1
_CANDIDATE_CACHE = 10_000  # kinds of event remembered
_SWEEP_EVERY = timedelta(minutes=5) // timedelta(microseconds=1)


class EngineStateError(CiwatchError):
    """A rule-engine snapshot cannot be restored (wrong version or shape)."""


@dataclass(frozen=True, slots=True)
class _Build:
    """What an evaluator factory gets: the rule, the engine's context and helpers."""

    rule: Rule
    context: RuleContext
    guard: RegexGuard
    known_values: KnownValues | None


def _match(build: _Build) -> Evaluator:
    return MatchEvaluator()


def _new_value(build: _Build) -> Evaluator:
    assert build.rule.new_value is not None
    return NewValueEvaluator(build.rule.new_value.field, build.known_values)


def _threshold(build: _Build) -> Evaluator:
    spec, rule = build.rule.threshold, build.rule
    assert spec is not None
    limit = build.context.max_groups_per_rule
    if spec.distinct is not None:
        field = parse_field_path(spec.distinct.field)
        return DistinctThreshold(spec.window, spec.required, field, rule.group_by, limit)
    return CountThreshold(spec.window, spec.required, rule.group_by, limit)


def _sequence(build: _Build) -> Evaluator:
    spec = build.rule.sequence
    assert spec is not None
    steps = [
        Step(
            compile_condition_map(step.where, build.guard),
            step.count,
            step.where,
            where_gate(step.where, build.guard),
        )
        for step in spec.steps
    ]
    return SequenceEvaluator(
        spec.window, steps, build.rule.group_by, build.context.max_groups_per_rule
    )


EVALUATORS: dict[RuleKind, Callable[[_Build], Evaluator]] = {
    RuleKind.MATCH: _match,
    RuleKind.THRESHOLD: _threshold,
    RuleKind.NEW_VALUE: _new_value,
    RuleKind.SEQUENCE: _sequence,
}


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    where: Predicate
    unless: Predicate
    group: tuple[FieldPath, ...]
    key: Callable[[Observation], tuple[str | None, ...]]  # the group-by values
    evaluator: Evaluator
    where_gate: Gate
    unless_gate: Gate


_Kind = tuple[str, str, str, str, str]
"""An event's source, action, category, outcome and actor type (KIND_FIELDS, as it has them)."""
_NO_KEY: tuple[str | None, ...] = ()  # for evaluators that do not read the group key


class _Candidate(NamedTuple):
    """A rule events of one kind admit, with what is left of its conditions."""

    compiled: _Compiled
    where: Predicate | None  # None: the kind alone satisfies where
    unless: Predicate | None  # None: the kind alone rules unless out
    observe: Observe  # the evaluator's, for this kind of event
    stateful: bool  # the evaluator's, and the rest the rule's, at hand for the hot loop
    change_window: bool
    reads_key: bool


class RuleEngine:
    """Evaluates rules over observations and remembers threshold/sequence state.

    ``known_values(actor, field)``, when given, lists the values an actor was
    seen with before, for new_value explanations (the feature store knows them).
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        context: RuleContext | None = None,
        *,
        known_values: KnownValues | None = None,
    ) -> None:
        self.context = context or RuleContext()
        self.guard = RegexGuard(
            timeout=self.context.regex_timeout, max_length=self.context.regex_max_length
        )
        check_unique_ids(rules)
        self._compiled = [self._compile(rule, known_values) for rule in rules if rule.enabled]
        self._by_kind: dict[_Kind, tuple[list[_Candidate], list[_Candidate]]] = {}
        self._by_source: dict[str, list[_Compiled]] = {}  # the rules a source alone admits
        self._watermark: int | None = None  # as of the last _advance: see watermark
        self._latest: datetime | None = None  # the latest in-time event time seen
        self._next_sweep: int | None = None
        self._sweep_at: datetime | None = None  # _next_sweep as a time, once _advance set it
        # (its sweep, window in µs) of the stateful rules with a window: what a sweep visits.
        self._windowed = [
            (c.evaluator.sweeper(), c.rule.window // timedelta(microseconds=1))
            for c in self._compiled
            if c.evaluator.stateful and c.rule.window is not None
        ]
        self.swept = 0

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The enabled rules, in evaluation order."""
        return tuple(compiled.rule for compiled in self._compiled)

    @property
    def regex_timeouts(self) -> int:
        """Regex matches cut short by the time bound (counted as non-matches)."""
        return self.guard.timeouts

    @property
    def regex_limits(self) -> Counter[tuple[str, str]]:
        """(rule id, reason) → regex matches that hit a bound so far (a copy; reasons in
        :class:`~detector.rules.regexes.LimitReason`), for ``ciwatch_rule_regex_limits_total``."""
        return Counter(self.guard.limits)

    @property
    def regex_rules(self) -> frozenset[str]:
        """Ids of the rules with a regex condition: their limit series are exported from 0."""
        return frozenset(self.guard.rules)

    def group_counts(self) -> dict[str, int]:
        """Live group keys per stateful rule (for metrics and tests of the bounds)."""
        return {
            c.rule.id: c.evaluator.group_count() for c in self._compiled if c.evaluator.stateful
        }

    def evicted_groups(self) -> int:
        """Groups dropped because a rule's table was full (``max_groups_per_rule``)."""
        return sum(compiled.evaluator.evicted() for compiled in self._compiled)

    def evaluate(self, observation: Observation) -> list[Detection]:
        """The detections this observation raises, in rule order."""
        return self.evaluate_batch([observation])

    def evaluate_batch(self, observations: Iterable[Observation]) -> list[Detection]:
        """:meth:`evaluate` of each observation in turn: their detections, in order."""
        detections: list[Detection] = []
        by_kind = self._by_kind
        for observation in observations:
            event = observation.event
            if not observation.late:
                moment = event.time
                latest = self._latest
                # An event no later than the latest seen leaves the watermark, so the sweep,
                # as is; one before the next sweep only moves the watermark (read from
                # _latest when due).
                if latest is None or moment > latest:
                    self._latest = moment
                    sweep_at = self._sweep_at
                    if sweep_at is None or moment >= sweep_at:
                        self._advance(to_micros(moment))
            kind = (event.source, event.action, event.category, event.outcome, event.actor_type)
            plan = by_kind.get(kind)
            if plan is None:
                plan = self._candidates(kind)
            # The new value rules only for an event that reports a new value (_candidates).
            candidates = plan[1] if observation.new_values else plan[0]
            if candidates:  # none for many kinds of event
                self._try(observation, candidates, detections)
        return detections

    def _try(
        self, observation: Observation, candidates: Sequence[_Candidate],
        detections: list[Detection],
    ) -> None:  # fmt: skip
        """The observation against the rules its kind admits; their firings to ``detections``."""
        late = observation.late
        in_window: bool | None = None
        for compiled, where, unless, observe, stateful, change_window, reads_key in candidates:
            if (late and stateful) or (where is not None and not where(observation)):
                continue
            if unless is not None and unless(observation):
                continue
            if change_window:
                if in_window is None:
                    in_window = self.context.in_change_window(observation.event.time)
                if in_window:
                    continue
            if reads_key:
                key = compiled.key(observation)
                firing = observe(observation, key)
            else:
                firing = observe(observation, _NO_KEY)
                if firing is None:
                    continue
                key = compiled.key(observation)
            if firing is not None:
                detections.append(
                    rule_detection(compiled.rule, compiled.group, observation, key, firing)
                )

    def snapshot(self) -> dict[str, Any]:
        """The threshold/sequence state as plain JSON data (see :meth:`restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "watermark": self.watermark,
            "next_sweep": self._next_sweep,
            "rules": {
                c.rule.id: {"fingerprint": c.rule.fingerprint, "groups": c.evaluator.to_state()}
                for c in self._compiled
                if c.evaluator.stateful
            },
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Continue from a :meth:`snapshot`.

        State of rules that are gone, or whose matching or grouping changed
        (another fingerprint), is discarded; their windows start empty.
        """
        if not isinstance(data, Mapping) or data.get("version") != SNAPSHOT_VERSION:
            found = data.get("version") if isinstance(data, Mapping) else type(data).__name__
            raise EngineStateError(
                f"unsupported rule-engine snapshot version {found!r}, expected {SNAPSHOT_VERSION}"
            )
        saved = data.get("rules") or {}
        self._latest = self._sweep_at = None  # the next event advances from the restored state
        try:
            for compiled in self._compiled:
                if compiled.evaluator.stateful:
                    entry = saved.get(compiled.rule.id) or {}
                    fits = entry.get("fingerprint") == compiled.rule.fingerprint
                    compiled.evaluator.load_state(entry["groups"] if fits else [])
            self._watermark = _optional_int(data.get("watermark"))
            self._next_sweep = _optional_int(data.get("next_sweep"))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EngineStateError(f"malformed rule-engine snapshot: {exc!r}") from None

    def _compile(self, rule: Rule, known_values: KnownValues | None) -> _Compiled:
        check_tracked(rule, self.context.tracked)
        where = f"{rule.origin or '<rules>'}: rule {rule.id}"
        guard = self.guard.for_rule(rule.id)  # regex limits are counted per rule
        try:
            build = _Build(rule, self.context, guard, known_values)
            group = tuple(parse_field_path(path) for path in rule.group_by)
            return _Compiled(
                rule=rule,
                where=compile_condition_map(rule.where, guard, allow_empty=True),
                unless=compile_any_of(rule.unless, guard),
                group=group,
                key=group_key_function(group),
                evaluator=EVALUATORS[rule.kind](build),
                where_gate=where_gate(rule.where, guard, allow_empty=True),
                unless_gate=unless_gate(rule.unless, guard),
            )
        except ValueError as exc:  # the model validated these; only a hand-built rule gets here
            raise RuleError(str(exc), where=where) from None

    def _candidates(self, kind: _Kind) -> tuple[list[_Candidate], list[_Candidate]]:
        """The rules events of this kind (:data:`~detector.rules.gates.KIND_FIELDS`, in order)
        admit, in rule order, each with what is left of its conditions: without the ones only
        an event that reports a new value can fire (``new_value`` rules), and with them.

        Most rules name the sources, actions and outcomes they are about: deciding those
        conditions once per kind of event spares every event the rules that cannot match
        it, and the tests of those fields in the rules that can. A ``new_value`` rule fires
        on a few events in a thousand: the others are spared its conditions too, unless one
        is a regex, whose bounds are tallied on every event tested (as gates keep them).
        """
        if len(self._by_kind) >= _CANDIDATE_CACHE:
            self._by_kind.clear()  # vendors' action vocabularies are small; be safe anyway
        decide = partial(Gate.decide_kind, kind=dict(zip(KIND_FIELDS, kind, strict=True)))

        found: list[_Candidate] = []
        every: list[_Candidate] = []
        for compiled in self._admitted_by_source(kind[0]):
            where = decide(compiled.where_gate)
            unless = decide(compiled.unless_gate) if where is not False else True
            if where is False or unless is True:
                continue
            observe = compiled.evaluator.specialise(decide)
            if observe is None:
                continue
            candidate = _Candidate(
                compiled,
                None if where is True else where,
                None if unless is False else unless,
                observe,
                compiled.evaluator.stateful,
                compiled.rule.unless_change_window,
                compiled.evaluator.reads_key,
            )
            every.append(candidate)
            if not compiled.evaluator.needs_new_value or compiled.rule.id in self.guard.rules:
                found.append(candidate)
        plan = self._by_kind[kind] = (found, every)
        return plan

    def _admitted_by_source(self, source: str) -> list[_Compiled]:
        """The rules whose ``where`` events of ``source`` may satisfy, in rule order.

        A ``where`` that the source alone rules out is ruled out for every kind of event of
        that source (knowing more fields decides more leaves, never undoes a decided one):
        each new kind of event is then decided against its source's rules only (in the
        bundled packs, a fifth of them), not against every rule.
        """
        admitted = self._by_source.get(source)
        if admitted is None:
            if len(self._by_source) >= _CANDIDATE_CACHE:
                self._by_source.clear()
            only_source = {"source": source}
            admitted = [
                compiled
                for compiled in self._compiled
                if compiled.where_gate.decide_kind(only_source) is not False
            ]
            self._by_source[source] = admitted
        return admitted

    @property
    def watermark(self) -> int | None:
        """The latest in-time event time (µs) the engine saw, or restored."""
        if self._latest is None:
            return self._watermark
        latest = to_micros(self._latest)
        return latest if self._watermark is None or latest > self._watermark else self._watermark

    def _advance(self, now: int) -> None:
        if self._watermark is None or now > self._watermark:
            self._watermark = now
        if self._next_sweep is None:
            self._next_sweep = now + _SWEEP_EVERY
        elif self._watermark >= self._next_sweep:
            self._sweep(self._watermark)
            self._next_sweep = self._watermark + _SWEEP_EVERY
        self._sweep_at = from_micros(self._next_sweep)

    def _sweep(self, watermark: int) -> None:
        # The longest lateness of any source: a group idle for its window is kept
        # until no source can still deliver an in-time event into it.
        grace = self.context.allowed_lateness // timedelta(microseconds=1)
        horizon, swept = watermark - grace, 0
        for sweep, window in self._windowed:
            swept += sweep(horizon - window)
        self.swept += swept


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
