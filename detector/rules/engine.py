"""The rule engine: every enabled rule against each observation, in event time.

    engine = RuleEngine(load_rules([bundled_rules_dir()]), RuleContext())
    detections = engine.evaluate(observation)

Rules run in pack order; a rule's ``where`` is checked first, then ``unless``,
then the change windows, then its kind (registered by name in
:data:`EVALUATORS`). What ``where`` and ``unless`` ask of ``source`` and
``action`` is decided once per pair (:mod:`detector.rules.gates`): an event is
only tried against the rules its pair admits, on the conditions left. Threshold
and sequence state lives per rule and group key, is swept of groups idle beyond
their window, and round-trips through :meth:`RuleEngine.snapshot` /
:meth:`RuleEngine.restore` as plain JSON. No wall clock is read anywhere (only
the time bound of backtracking regexes is wall-clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from detector.detections import Detection, DetectorKind
from detector.errors import CiwatchError, RuleError
from detector.events.model import isoformat
from detector.events.printable import printable
from detector.features.observation import Observation
from detector.rules.conditions import (
    Predicate,
    RegexGuard,
    compile_any_of,
    compile_condition_map,
)
from detector.rules.context import ChangeWindow, RuleContext
from detector.rules.fields import FieldPath, parse_field_path
from detector.rules.gates import Gate, unless_gate, where_gate
from detector.rules.loader import check_tracked, check_unique_ids
from detector.rules.model import Rule, RuleKind
from detector.rules.sequence import SequenceEvaluator, Step
from detector.rules.state import Evaluator, Firing, to_micros
from detector.rules.stateless import KnownValues, MatchEvaluator, NewValueEvaluator
from detector.rules.summaries import render_template
from detector.rules.threshold import CountThreshold, DistinctThreshold

__all__ = [
    "EVALUATORS",
    "ChangeWindow",
    "EngineStateError",
    "RuleContext",
    "RuleEngine",
]

SNAPSHOT_VERSION = 1
_CANDIDATE_CACHE = 10_000  # (source, action) pairs remembered
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
        Step(compile_condition_map(step.where, build.guard), step.count, step.where)
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
    evaluator: Evaluator
    where_gate: Gate
    unless_gate: Gate


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A rule an event's (source, action) admits, with what is left of its conditions."""

    compiled: _Compiled
    where: Predicate | None  # None: the pair alone satisfies where
    unless: Predicate | None  # None: the pair alone rules unless out


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
        self._by_event: dict[tuple[str, str], list[_Candidate]] = {}
        self._watermark: int | None = None
        self._next_sweep: int | None = None
        # (evaluator, window in µs) of the stateful rules with a window: what a sweep visits.
        self._windowed = [
            (c.evaluator, c.rule.window // timedelta(microseconds=1))
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
        event = observation.event
        if not observation.late:
            self._advance(to_micros(event.time))
        detections: list[Detection] = []
        in_window: bool | None = None
        for candidate in self._candidates(event.source, event.action):
            compiled = candidate.compiled
            evaluator = compiled.evaluator
            if observation.late and evaluator.stateful:
                continue
            where, unless = candidate.where, candidate.unless
            if (where is not None and not where(observation)) or (
                unless is not None and unless(observation)
            ):
                continue
            if compiled.rule.unless_change_window:
                if in_window is None:
                    in_window = self.context.in_change_window(event.time)
                if in_window:
                    continue
            key = tuple(path.text_value(observation) for path in compiled.group)
            firing = evaluator.observe(observation, key)
            if firing is not None:
                detections.append(_detection(compiled, observation, key, firing))
        return detections

    def snapshot(self) -> dict[str, Any]:
        """The threshold/sequence state as plain JSON data (see :meth:`restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "watermark": self._watermark,
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
            return _Compiled(
                rule=rule,
                where=compile_condition_map(rule.where, guard, allow_empty=True),
                unless=compile_any_of(rule.unless, guard),
                group=tuple(parse_field_path(path) for path in rule.group_by),
                evaluator=EVALUATORS[rule.kind](build),
                where_gate=where_gate(rule.where, guard, allow_empty=True),
                unless_gate=unless_gate(rule.unless, guard),
            )
        except ValueError as exc:  # the model validated these; only a hand-built rule gets here
            raise RuleError(str(exc), where=where) from None

    def _candidates(self, source: str, action: str) -> list[_Candidate]:
        """The rules an event's source and action admit, in rule order.

        Most rules name their sources and actions: deciding those conditions once
        per pair spares every event the rules that cannot match it, and the tests
        of the two fields in the rules that can.
        """
        key = (source, action)
        found = self._by_event.get(key)
        if found is None:
            if len(self._by_event) >= _CANDIDATE_CACHE:
                self._by_event.clear()  # vendors' action vocabularies are small; be safe anyway
            found = []
            for compiled in self._compiled:
                where = compiled.where_gate.decide(source, action)
                unless = compiled.unless_gate.decide(source, action) if where else True
                if where is not False and unless is not True:
                    found.append(
                        _Candidate(
                            compiled,
                            None if where is True else where,
                            None if unless is False else unless,
                        )
                    )
            self._by_event[key] = found
        return found

    def _advance(self, now: int) -> None:
        if self._watermark is None or now > self._watermark:
            self._watermark = now
        if self._next_sweep is None:
            self._next_sweep = now + _SWEEP_EVERY
        elif self._watermark >= self._next_sweep:
            self._sweep(self._watermark)
            self._next_sweep = self._watermark + _SWEEP_EVERY

    def _sweep(self, watermark: int) -> None:
        # The longest lateness of any source: a group idle for its window is kept
        # until no source can still deliver an in-time event into it.
        grace = self.context.allowed_lateness // timedelta(microseconds=1)
        for evaluator, window in self._windowed:
            self.swept += evaluator.sweep(watermark - window - grace)


_MAX_SUMMARY_CHARS = 1000


def _detection(
    compiled: _Compiled, observation: Observation, key: tuple[str | None, ...], firing: Firing
) -> Detection:
    rule, event = compiled.rule, observation.event
    pairs = tuple((path.text, value or "") for path, value in zip(compiled.group, key, strict=True))
    # Default sentences name actors, IPs and values straight from input: escaped, as templates are.
    summary = printable(firing.default_summary, limit=_MAX_SUMMARY_CHARS)
    if rule.summary is not None:
        values = _template_values(rule, observation, pairs, firing)
        summary = render_template(rule.summary, values) or summary
    conditions: dict[str, Any] = {"where": rule.where}
    if rule.unless:
        conditions["unless"] = rule.unless
    explanation = {
        "rule": rule.id,
        "kind": rule.kind.value,
        "conditions": conditions,
        "group": dict(pairs),
        **firing.explanation,
    }
    return Detection(
        kind=DetectorKind.RULE,
        name=rule.id,
        title=rule.title,
        severity=rule.severity,
        time=event.time,
        key=pairs,
        actor=event.actor,
        source=event.source,
        summary=summary,
        evidence=firing.evidence,
        suppress=rule.suppress,
        tags=rule.tags,
        score=None,
        runbook=rule.runbook or None,
        features=dict(observation.features),
        explanation=explanation,
    )


def _template_values(
    rule: Rule, observation: Observation, pairs: tuple[tuple[str, str], ...], firing: Firing
) -> dict[str, Any]:
    """Everything a summary template may name (see summaries.COMMON_FIELDS and KIND_FIELDS)."""
    event = observation.event
    return {
        "rule": rule.id,
        "title": rule.title,
        "severity": rule.severity.value,
        "actor": event.actor,
        "actor_type": event.actor_type.value,
        "action": event.action,
        "source": event.source,
        "category": event.category.value,
        "outcome": event.outcome.value,
        "target": event.target,
        "ip": event.ip,
        "country": event.country,
        "user_agent": event.user_agent,
        "id": event.id,
        "time": isoformat(event.time),
        "key": ", ".join(f"{name}={value}" for name, value in pairs),
        "group": "/".join(value for _, value in pairs),
        "attributes": dict(event.attributes),
        "features": dict(observation.features),
        **firing.values,
    }


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
