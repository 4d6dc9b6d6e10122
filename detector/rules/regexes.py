"""Rule regexes in linear time: RE2 first, a bounded backtracking engine only where RE2 cannot go.

A ``regex`` condition compiles with RE2 (``google-re2``), whose matching time is
linear in the input: no pattern/value pair can stall the pipeline. RE2 has no
lookaround and no backreferences; a pattern that needs them still loads, and
runs on the backtracking ``regex`` module with a time bound. Either way a
condition examines at most ``max_length`` characters of a value (its prefix).

Every time a bound applies it is tallied per rule in :class:`RegexGuard`, for
``ciwatch_rule_regex_limits_total{rule, reason}``::

    guard = RegexGuard().for_rule("k8s-exec")
    test = compile_regex("^system:(?!serviceaccount:)", guard, "actor.regex")
    test("system:node:a")  # True, on the backtracking engine
    guard.limits  # Counter({("k8s-exec", "fallback"): 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

import re2
import regex

from detector.rules.fields import LocatedError

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_TIMEOUT",
    "LimitReason",
    "RegexGuard",
    "TextTest",
    "compile_regex",
    "linear_time",
]

DEFAULT_MAX_LENGTH = 64 * 1024  # characters: far beyond any user agent, command line or URL
DEFAULT_TIMEOUT = 0.05  # seconds, backtracking engine only

TextTest = Callable[[str], bool]


class LimitReason(StrEnum):
    """Why a regex match did not run unbounded (the metric's ``reason`` label)."""

    TOO_LONG = "too_long"
    """The value was longer than ``max_length``: only its prefix was searched."""
    FALLBACK = "fallback"
    """RE2 cannot compile the pattern: the match ran on the backtracking engine."""
    TIMEOUT = "timeout"
    """The backtracking match ran out of time: counted as no match."""


@dataclass(slots=True)
class RegexGuard:
    """The bounds of regex matchers and a tally, per (rule, reason), of every time one applied.

    An engine holds one guard; :meth:`for_rule` gives each rule's conditions a
    guard that names the rule and shares the tally.
    """

    timeout: float = DEFAULT_TIMEOUT
    max_length: int = DEFAULT_MAX_LENGTH
    rule: str = ""
    limits: Counter[tuple[str, str]] = field(default_factory=Counter)
    rules: set[str] = field(default_factory=set)
    """Rules with a regex condition, shared like the tally (their metric series start at 0)."""

    def for_rule(self, rule: str) -> RegexGuard:
        """The same bounds and tally, counting under ``rule``."""
        return replace(self, rule=rule)

    def count(self, reason: LimitReason) -> None:
        self.limits[(self.rule, reason.value)] += 1

    @property
    def timeouts(self) -> int:
        """Backtracking matches cut short by the time bound (counted as non-matches)."""
        return sum(n for (_, reason), n in self.limits.items() if reason == LimitReason.TIMEOUT)


class _Searcher(Protocol):
    def search(self, text: bytes) -> object | None: ...


class RegexError(LocatedError):
    """A pattern neither engine compiles; ``path`` says where (``actor.regex``)."""


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a pattern RE2 rejects is handled here, not logged to stderr
_RE2_OPTIONS.never_capture = True  # a condition only asks whether there is a match


def linear_time(pattern: str) -> bool:
    """Whether RE2 compiles ``pattern`` (so matching it is linear in the input)."""
    return _compile_re2(pattern) is not None


def compile_regex(
    pattern: str, guard: RegexGuard, path: str, *, max_length: int | None = None
) -> TextTest:
    """A test that searches a text for ``pattern`` within the guard's bounds.

    Raises :class:`RegexError` if neither RE2 nor the ``regex`` module compiles it.
    """
    limit = max_length or guard.max_length
    guard.rules.add(guard.rule)
    linear = _compile_re2(pattern)
    if linear is not None:
        return _linear_test(linear, guard, limit)
    try:
        backtracking = regex.compile(pattern)
    except regex.error as exc:
        raise RegexError(path, f"bad regex {pattern!r}: {exc}") from None
    return _backtracking_test(backtracking, guard, limit)


def _compile_re2(pattern: str) -> _Searcher | None:
    try:
        # Bytes in and out (UTF-8 still): the wrapper's str path maps every match
        # position back to characters, four times the cost of a short search.
        compiled: _Searcher = re2.compile(pattern.encode("utf-8"), _RE2_OPTIONS)
    except (re2.error, UnicodeEncodeError):  # lookaround, backreferences, not a regex at all
        return None
    return compiled


_MEMO_ENTRIES = 512  # short values remembered per linear-time pattern
_MEMO_LENGTH = 200  # characters: user agents, actors, namespaces, resource names


def _linear_test(compiled: _Searcher, guard: RegexGuard, limit: int) -> TextTest:
    search = compiled.search
    # The same few values (user agents, actors, namespaces) come back event after event:
    # a linear-time answer depends on the text alone, so short ones are remembered. Long
    # ones are not, and neither is anything a bound applies to (the tally counts each time).
    memo: dict[str, bool] = {}

    def test(text: str) -> bool:
        found = memo.get(text)
        if found is not None:
            return found
        length = len(text)
        if length > limit:
            guard.count(LimitReason.TOO_LONG)
            text = text[:limit]
        # "replace": a lone surrogate (from a JSON "\ud800" escape) has no UTF-8 form.
        found = search(text.encode("utf-8", "replace")) is not None
        if length <= _MEMO_LENGTH and length <= limit:
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            memo[text] = found
        return found

    return test


def _backtracking_test(compiled: regex.Pattern[str], guard: RegexGuard, limit: int) -> TextTest:
    def test(text: str) -> bool:
        guard.count(LimitReason.FALLBACK)
        if len(text) > limit:
            guard.count(LimitReason.TOO_LONG)
            text = text[:limit]
        try:
            return compiled.search(text, timeout=guard.timeout) is not None
        except TimeoutError:
            guard.count(LimitReason.TIMEOUT)
            return False

    return test
