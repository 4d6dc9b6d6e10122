"""Sequence rules: steps in order, per group key, within a window."""

from __future__ import annotations

from typing import Any

from detector.features.observation import Observation
from detector.rules import RuleEngine
from tests.unit.rules.factories import obs, observe_all, rule

SUCCESS_AFTER_FAILURES = """
kind: sequence
where: {category: authentication}
sequence:
  window: 30m
  steps:
    - where: {outcome: failure}
      count: 5
    - where: {outcome: success}
"""


def fail(minutes: float, actor: str = "alice", **fields: Any) -> Observation:
    return obs(minutes, actor=actor, outcome="failure", id=f"f-{actor}-{minutes:g}", **fields)


def succeed(minutes: float, actor: str = "alice", **fields: Any) -> Observation:
    return obs(minutes, actor=actor, outcome="success", id=f"s-{actor}-{minutes:g}", **fields)


def engine() -> RuleEngine:
    return RuleEngine([rule(SUCCESS_AFTER_FAILURES)])


def test_fires_at_the_final_step() -> None:
    checker = engine()
    assert observe_all(checker, [fail(minute) for minute in range(5)]) == []
    (detection,) = checker.evaluate(succeed(6))
    assert detection.key == (("actor", "alice"),)
    assert detection.evidence == (
        "f-alice-0",
        "f-alice-1",
        "f-alice-2",
        "f-alice-3",
        "f-alice-4",
        "s-alice-6",
    )
    assert detection.time == succeed(6).event.time
    steps = detection.explanation["steps"]
    assert [step["count"] for step in steps] == [5, 1]
    assert [step["required"] for step in steps] == [5, 1]
    assert steps[0]["where"] == {"outcome": "failure"}
    assert detection.explanation["elapsed"] == "6m"
    assert detection.summary == (
        "alice: user.session.start (failure) 5 times, then user.session.start (success) "
        "within 6m (window 30m)"
    )


def test_a_step_needs_its_count() -> None:
    checker = engine()
    assert observe_all(checker, [*(fail(minute) for minute in range(4)), succeed(5)]) == []


def test_steps_must_come_in_order() -> None:
    checker = engine()
    assert observe_all(checker, [succeed(0), *(fail(minute) for minute in range(1, 6))]) == []


def test_the_whole_sequence_must_fit_the_window() -> None:
    checker = engine()
    stream = [*(fail(minute) for minute in range(5)), succeed(31)]
    assert observe_all(checker, stream) == []


def test_old_failures_slide_out_and_recent_ones_count() -> None:
    checker = engine()
    # A failure every 5 minutes for an hour, then a success: the last five fit in 30 minutes.
    stream = [*(fail(minute) for minute in range(0, 60, 5)), succeed(57)]
    (detection,) = observe_all(checker, stream)
    assert detection.evidence[0] == "f-alice-35"
    assert detection.explanation["start"] == "2026-01-05T10:35:00Z"


def test_groups_do_not_mix() -> None:
    checker = engine()
    stream = [*(fail(minute, "bob") for minute in range(5)), succeed(6, "alice")]
    assert observe_all(checker, stream) == []


def test_the_group_starts_afresh_after_firing() -> None:
    checker = engine()
    stream = [*(fail(minute) for minute in range(5)), succeed(6), succeed(7)]
    assert len(observe_all(checker, stream)) == 1
    again = [*(fail(minute) for minute in range(8, 13)), succeed(14)]
    assert len(observe_all(checker, again)) == 1


def test_late_observations_are_skipped() -> None:
    checker = engine()
    stream = [*(fail(minute) for minute in range(5)), obs(6, outcome="success", late=True)]
    assert observe_all(checker, stream) == []


def test_a_step_older_than_the_previous_step_does_not_continue_it() -> None:
    checker = engine()
    stream = [*(fail(minute) for minute in range(2, 7)), succeed(1)]  # success arrives late
    assert observe_all(checker, stream) == []


def test_one_event_can_serve_consecutive_identical_steps_only_once() -> None:
    twice = """
    kind: sequence
    sequence:
      window: 10m
      steps:
        - where: {action: repo.download_zip}
        - where: {action: repo.download_zip}
    """
    checker = RuleEngine([rule(twice)])
    assert checker.evaluate(obs(0, action="repo.download_zip")) == []
    assert len(checker.evaluate(obs(1, action="repo.download_zip"))) == 1


def test_new_value_conditions_in_a_step() -> None:
    mfa_then_new_place = """
    kind: sequence
    sequence:
      window: 1h
      steps:
        - where: {action: user.mfa.factor.deactivate}
        - where: {action: user.session.start, new_values.country: {exists: true}}
    """
    checker = RuleEngine([rule(mfa_then_new_place)])
    stream = [
        obs(0, action="user.mfa.factor.deactivate", id="mfa"),
        obs(5, action="user.session.start", id="home"),
        obs(9, action="user.session.start", id="abroad", new_values={"country": "BR"}),
    ]
    (detection,) = observe_all(checker, stream)
    assert detection.evidence == ("mfa", "abroad")


def test_three_steps_with_a_group_other_than_the_actor() -> None:
    three = """
    kind: sequence
    group_by: [target]
    sequence:
      window: 1h
      steps:
        - where: {action: a}
        - where: {action: b}
        - where: {action: c}
    """
    checker = RuleEngine([rule(three)])
    stream = [
        obs(0, action="a", actor="alice", target="acme/api"),
        obs(1, action="b", actor="bob", target="acme/api"),
        obs(2, action="c", actor="bob", target="other"),
        obs(3, action="c", actor="carol", target="acme/api"),
    ]
    (detection,) = observe_all(checker, stream)
    assert detection.key == (("target", "acme/api"),)
    assert detection.actor == "carol"
    assert detection.summary.startswith("acme/api: a (success), then b (success), then c")
    assert detection.summary.endswith("; last by carol")
