"""Runs the tests embedded in rules, through the real pipeline (``ciwatch test-rules``).

Each test gets a fresh pipeline holding only its rule, so tests cannot leak
state into each other; its events go through features, the rule and the
alert layer (suppression included), and the number of alerts raised is
compared with what the test expects.

A failed test says where it is (``file:line``), what was expected and what
happened, and why: the events go through a second fresh pipeline whose
observations are checked condition by condition (:class:`~detector.rules.why.WhyTrace`),
naming for each event the first condition that stopped it, or that it matched.
Passing tests pay nothing for this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detector.config import PipelineConfig
from detector.errors import RuleError
from detector.events.model import Event
from detector.events.normalizer import Normalizer
from detector.features.durations import format_duration
from detector.normalizing import build_normalizer
from detector.pipeline import Pipeline
from detector.rules.loader import rule_lines, rule_location
from detector.rules.model import Rule, RuleKind
from detector.rules.testcases import TestEventError, build_test_events
from detector.rules.why import WhyTrace
from detector.yamlfile import KeyPath

__all__ = ["MAX_REASONS", "RuleTestResult", "failure_report", "run_rule_tests"]

MAX_REASONS = 3
"""Lines of "why" shown per failed test without ``--verbose``."""

_MATCHED = "matched where and unless"


@dataclass(frozen=True, slots=True)
class RuleTestResult:
    rule: str
    test: str
    expected: int
    summaries: tuple[str, ...]
    error: str | None = None
    """Why the test could not run (a raw event that does not normalize, ...)."""
    location: str = ""
    """``file:line`` of the test (filled in for failed tests)."""
    why: tuple[str, ...] = ()
    """Events grouped by what happened to them, most telling first (failed tests)."""

    @property
    def alerts(self) -> int:
        return len(self.summaries)

    @property
    def passed(self) -> bool:
        return self.error is None and self.alerts == self.expected

    @property
    def outcome(self) -> str:
        """``expected 1 alert, got 0`` (or the error that stopped the test)."""
        if self.error is not None:
            return self.error
        return f"expected {_alerts(self.expected)}, got {self.alerts}"


def run_rule_tests(rules: Sequence[Rule], config: PipelineConfig) -> list[RuleTestResult]:
    """Every embedded test of every rule (disabled rules too: their tests must stay true).

    Models are off: a rule's tests judge the rule alone.
    """
    config = config.model_copy(
        update={"models": config.models.model_copy(update={"enabled": False})}
    )
    normalizer = build_normalizer(config)
    return [
        _run(rule, index, config, normalizer) for rule in rules for index in range(len(rule.tests))
    ]


def failure_report(result: RuleTestResult, *, verbose: bool = False) -> list[str]:
    """The lines printed for a failed test: a headline naming where, then indented reasons.

    ``verbose`` shows every reason instead of the first :data:`MAX_REASONS`.
    """
    where = f"{result.location}: " if result.location else ""
    lines = [f"FAIL {where}rule {result.rule}, test {result.test!r}: {result.outcome}"]
    shown = result.why if verbose else result.why[:MAX_REASONS]
    lines.extend(f"  {reason}" for reason in shown)
    if len(shown) < len(result.why):
        lines.append(f"  ... {len(result.why) - len(shown)} more (--verbose shows all)")
    return lines


def _run(rule: Rule, index: int, config: PipelineConfig, normalizer: Normalizer) -> RuleTestResult:
    test = rule.tests[index]
    active = rule.model_copy(update={"enabled": True})
    pipeline = Pipeline.from_config(config, rules=[active], normalizer=normalizer)
    try:
        events = build_test_events(test, pipeline.normalizer, where=f"rule {rule.id}")
    except RuleError as exc:
        message = str(exc)
        if isinstance(exc, TestEventError):
            (line,) = _event_lines(rule, index, [exc.index])
            message = f"events[{exc.index}] ({line}): {exc.message}"
        location = rule_location(rule, ["tests", index])
        return RuleTestResult(rule.id, test.name, test.alerts, (), message, location)
    alerts = pipeline.process_events(events) + pipeline.finish()
    summaries = tuple(
        a.detection.summary for a in alerts if a.revision == 0 and a.detection.name == rule.id
    )
    result = RuleTestResult(rule.id, test.name, test.alerts, summaries)
    if result.passed:
        return result
    location = rule_location(rule, ["tests", index])
    why = _explain(active, index, events, config, normalizer, summaries)
    return RuleTestResult(rule.id, test.name, test.alerts, summaries, None, location, why)


@dataclass(slots=True)
class _Trace:
    """What happened to a test's events: runs of (test event index, copies, fate)."""

    runs: list[tuple[int, int, str]]
    step_counts: list[int]
    """Matching events per sequence step (sequence rules)."""

    def count(self, *, matched: bool) -> int:
        return sum(n for _, n, fate in self.runs if (fate == _MATCHED) is matched)


def _explain(
    rule: Rule,
    index: int,
    events: Sequence[Event],
    config: PipelineConfig,
    normalizer: Normalizer,
    summaries: Sequence[str],
) -> tuple[str, ...]:
    trace = _trace(rule, events, config, normalizer)
    lines = _event_lines(rule, index, [spec for spec, _, _ in trace.runs])
    labelled = [
        (f"events[{spec}]{_times(n)} ({line})", fate)
        for (spec, n, fate), line in zip(trace.runs, lines, strict=True)
    ]
    matched = [f"{label}: {fate}" for label, fate in labelled if fate == _MATCHED]
    stopped = [f"{label}: {fate}" for label, fate in labelled if fate != _MATCHED]
    alerts = [f"alert: {summary}" for summary in summaries]
    if len(summaries) > rule.tests[index].alerts:
        return (*alerts, *matched)
    if not matched:
        return tuple(stopped)
    total = trace.count(matched=True) + trace.count(matched=False)
    head = f"{trace.count(matched=True)} of {total} events {_MATCHED}; {_kind_hint(rule, trace)}"
    return (head, *alerts, *stopped, *matched)


def _trace(
    rule: Rule, events: Sequence[Event], config: PipelineConfig, normalizer: Normalizer
) -> _Trace:
    pipeline = Pipeline.from_config(config, rules=[rule], normalizer=normalizer)
    why = WhyTrace(rule, pipeline.rules.context)
    stateful = rule.kind in (RuleKind.THRESHOLD, RuleKind.SEQUENCE)
    trace = _Trace([], [0] * (len(rule.sequence.steps) if rule.sequence is not None else 0))
    for event in events:
        if pipeline.duplicates.is_duplicate(event):
            fate = "dropped as a duplicate (same source and id as an earlier event)"
        else:
            observation = pipeline.features.observe(event)
            fate = why.reason(observation, stateful=stateful) or _MATCHED
            if fate == _MATCHED:
                for step in why.steps_held(observation):
                    trace.step_counts[step - 1] += 1
        # testcases.py numbers each event by its place in the test, from 1.
        spec = event.position.offset - 1 if event.position is not None else 0
        runs = trace.runs
        if runs and runs[-1][0] == spec and runs[-1][2] == fate:
            runs[-1] = (spec, runs[-1][1] + 1, fate)
        else:
            runs.append((spec, 1, fate))
    return trace


def _kind_hint(rule: Rule, trace: _Trace) -> str:
    """What the rule's kind needs beyond events that match."""
    per = f"per {', '.join(rule.group_by)}"
    if rule.threshold is not None:
        spec, window = rule.threshold, format_duration(rule.threshold.window)
        if spec.distinct is not None:
            distinct = f"{spec.distinct.count} distinct {spec.distinct.field}"
            return f"needs {distinct} within {window} {per}"
        return f"needs {spec.count} within {window} {per}"
    if rule.sequence is not None:
        window = format_duration(rule.sequence.window)
        steps = zip(trace.step_counts, rule.sequence.steps, strict=True)
        counts = ", ".join(
            f"step {n}: {seen} of {step.count}" for n, (seen, step) in enumerate(steps, 1)
        )
        return f"needs the steps in order within {window} {per} ({counts})"
    if rule.new_value is not None:
        field = rule.new_value.field
        return f"fires for a {field} new to the actor, after its learning period"
    return f"matches within suppress {format_duration(rule.suppress)} {per} fold into one alert"


def _event_lines(rule: Rule, index: int, specs: Sequence[int]) -> list[str]:
    paths: list[KeyPath] = [["tests", index, "events", spec] for spec in specs]
    return [f"line {line}" if line is not None else "?" for line in rule_lines(rule, paths)]


def _times(copies: int) -> str:
    return f" x{copies}" if copies > 1 else ""


def _alerts(count: int) -> str:
    return f"{count} alert" if count == 1 else f"{count} alerts"
