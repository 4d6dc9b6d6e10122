"""Runs the tests embedded in rules, through the real pipeline (``ciwatch test-rules``).

Each test gets a fresh pipeline holding only its rule, so tests cannot leak
state into each other; its events go through features, the rule and the
alert layer (suppression included), and the number of alerts raised is
compared with what the test expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detector.config import PipelineConfig
from detector.errors import RuleError
from detector.events.normalizer import Normalizer
from detector.pipeline import Pipeline, build_normalizer
from detector.rules.model import Rule, TestCase
from detector.rules.testcases import build_test_events

__all__ = ["RuleTestResult", "run_rule_tests"]


@dataclass(frozen=True, slots=True)
class RuleTestResult:
    rule: str
    test: str
    expected: int
    summaries: tuple[str, ...]
    error: str | None = None
    """Why the test could not run (a raw event that does not normalize, ...)."""

    @property
    def alerts(self) -> int:
        return len(self.summaries)

    @property
    def passed(self) -> bool:
        return self.error is None and self.alerts == self.expected


def run_rule_tests(rules: Sequence[Rule], config: PipelineConfig) -> list[RuleTestResult]:
    """Every embedded test of every rule (disabled rules too: their tests must stay true).

    Models are off: a rule's tests judge the rule alone.
    """
    config = config.model_copy(
        update={"models": config.models.model_copy(update={"enabled": False})}
    )
    normalizer = build_normalizer(config)
    return [_run(rule, test, config, normalizer) for rule in rules for test in rule.tests]


def _run(
    rule: Rule, test: TestCase, config: PipelineConfig, normalizer: Normalizer
) -> RuleTestResult:
    active = rule.model_copy(update={"enabled": True})
    pipeline = Pipeline.from_config(config, rules=[active], normalizer=normalizer)
    try:
        events = build_test_events(test, pipeline.normalizer, where=f"rule {rule.id}")
    except RuleError as exc:
        return RuleTestResult(rule.id, test.name, test.alerts, (), error=str(exc))
    alerts = pipeline.process_events(events) + pipeline.finish()
    summaries = tuple(
        a.detection.summary for a in alerts if a.revision == 0 and a.detection.name == rule.id
    )
    return RuleTestResult(rule.id, test.name, test.alerts, summaries)
