"""The rule schema: pydantic models that reject unknown keys, checked when a pack loads.

The YAML schema is documented with examples in docs/rules.md. Condition maps
(``where``, ``unless``, sequence steps) are kept as written, for explanations,
and compiled by :mod:`detector.rules.conditions` — once here to validate, and
again by the engine with its regex time bound.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from detector.detections import Severity
from detector.events.model import ActorType, Category, Outcome
from detector.features.durations import Duration, coerce_duration
from detector.rules.conditions import RegexGuard, compile_any_of, compile_condition_map
from detector.rules.fields import FieldPathError, LocatedError, parse_field_path
from detector.rules.summaries import check_template

__all__ = [
    "DistinctSpec",
    "NewValueSpec",
    "Rule",
    "RuleKind",
    "SequenceSpec",
    "SequenceStep",
    "SigmaOrigin",
    "TestCase",
    "TestEvent",
    "ThresholdSpec",
]


class RuleKind(StrEnum):
    MATCH = "match"
    THRESHOLD = "threshold"
    NEW_VALUE = "new_value"
    SEQUENCE = "sequence"


def _check_where(value: Any) -> Any:
    compile_condition_map(value, RegexGuard(), allow_empty=True)
    return value


def _check_step_where(value: Any) -> Any:
    compile_condition_map(value, RegexGuard())
    return value


def _check_unless(value: Any) -> Any:
    compile_any_of(value, RegexGuard())
    return value


def _check_field(value: Any) -> Any:
    try:
        parse_field_path(value)
    except FieldPathError as exc:
        raise ValueError(str(exc)) from None
    return value


Conditions = Annotated[dict[str, Any], BeforeValidator(_check_where)]
StepConditions = Annotated[dict[str, Any], BeforeValidator(_check_step_where)]
Exceptions = Annotated[list[dict[str, Any]], BeforeValidator(_check_unless)]
FieldName = Annotated[str, BeforeValidator(_check_field)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Tag = Annotated[str, StringConstraints(pattern=r"^\S+$")]
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DistinctSpec(_Strict):
    """Count distinct values of ``field`` instead of events."""

    field: FieldName
    count: int = Field(ge=1)


class ThresholdSpec(_Strict):
    """Fire when a group reaches ``count`` events (or ``distinct`` values) within ``window``."""

    window: Duration
    count: int | None = Field(default=None, ge=1)
    distinct: DistinctSpec | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> ThresholdSpec:
        if (self.count is None) == (self.distinct is None):
            raise ValueError("give exactly one of count or distinct")
        return self

    @property
    def required(self) -> int:
        """The number to reach: events for ``count``, values for ``distinct``."""
        return self.distinct.count if self.distinct is not None else (self.count or 0)


class NewValueSpec(_Strict):
    """Fire when the actor shows a value of ``field`` for the first time (after learning)."""

    field: Text


class SequenceStep(_Strict):
    where: StepConditions
    count: int = Field(default=1, ge=1)


class SequenceSpec(_Strict):
    """Steps in order, for the same group key, all within ``window`` of the first."""

    window: Duration
    steps: list[SequenceStep] = Field(min_length=2, max_length=10)


class SigmaOrigin(_Strict):
    """Where a rule converted by ``ciwatch sigma convert`` came from, with its attribution.

    SigmaHQ's rules are under the Detection Rule License 1.1, which asks that a
    derived rule keep the author and a reference to the original.
    """

    id: str | None = None
    author: str | None = None
    license: Text = "DRL-1.1"
    status: str | None = None
    date: str | None = None
    modified: str | None = None


class TestEvent(_Strict):
    """One test event: a raw vendor document, or a compact normalized event.

    ``at`` (``+10m``, ``-1h``) places the event relative to the test's base
    time; compact events without ``time`` or ``at`` follow the previous one by
    a second (the first at the base time); raw documents keep their own time
    unless ``at`` is given. ``repeat`` copies the event, ``every`` apart.
    """

    __test__ = False  # not a pytest class

    raw: dict[str, Any] | None = None
    source: str | None = None
    action: str | None = None
    actor: str | None = None
    time: datetime | None = None
    category: Category | None = None
    outcome: Outcome = Outcome.SUCCESS
    actor_type: ActorType | None = None
    ip: str | None = None
    country: str | None = None
    user_agent: str | None = None
    target: str | None = None
    privileged: bool | None = None
    id: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    repeat: int = Field(default=1, ge=1, le=10_000)
    every: Duration = timedelta(seconds=1)
    at: timedelta | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _offset(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            sign = -1 if text.startswith("-") else 1
            body = text.lstrip("+-").strip()
            return sign * coerce_duration(body, allow_zero=True)
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("time needs a timezone, e.g. 2026-01-05T10:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> TestEvent:
        if self.raw is not None:
            extra = sorted(self.model_fields_set - {"raw", "repeat", "every", "at"})
            if extra:
                raise ValueError(f"a raw event takes only repeat, every and at, not {extra}")
            return self
        missing = [name for name in ("source", "action", "actor") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a compact event needs source, action and actor (missing {missing})")
        if self.time is not None and self.at is not None:
            raise ValueError("give time or at, not both")
        return self


class TestCase(_Strict):
    """An embedded test: these events through the pipeline raise ``alerts`` alerts."""

    __test__ = False  # not a pytest class

    name: Text
    alerts: int = Field(ge=0)
    events: list[TestEvent] = Field(min_length=1)


class Rule(_Strict):
    """One detection rule, as written in a rule pack (see docs/rules.md)."""

    id: RuleId
    title: Text
    kind: RuleKind
    severity: Severity
    description: Text
    tags: tuple[Tag, ...] = ()
    runbook: str = ""
    enabled: bool = True
    where: Conditions = Field(default_factory=dict)
    unless: Exceptions = Field(default_factory=list)
    unless_change_window: bool = False
    group_by: tuple[FieldName, ...] = Field(default=("actor",), min_length=1)
    threshold: ThresholdSpec | None = None
    new_value: NewValueSpec | None = None
    sequence: SequenceSpec | None = None
    summary: Text | None = None
    suppress: Duration = timedelta(hours=1)
    tests: tuple[TestCase, ...] = ()
    references: tuple[Text, ...] = ()
    false_positives: tuple[Text, ...] = ()
    sigma: SigmaOrigin | None = None

    _origin: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        blocks = {
            RuleKind.THRESHOLD: self.threshold,
            RuleKind.NEW_VALUE: self.new_value,
            RuleKind.SEQUENCE: self.sequence,
        }
        if self.kind in blocks and blocks[self.kind] is None:
            raise LocatedError(self.kind.value, f"kind {self.kind} needs a {self.kind} block")
        for kind, block in blocks.items():
            if kind is not self.kind and block is not None:
                raise LocatedError(kind.value, f"only allowed with kind: {kind}")
        if self.kind is RuleKind.MATCH and not self.where:
            raise LocatedError("where", "a match rule needs where conditions")
        if self.summary is not None:
            try:
                check_template(self.summary, self.kind.value)
            except ValueError as exc:
                raise LocatedError("summary", str(exc)) from None
        names = [test.name for test in self.tests]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise LocatedError("tests", f"test name {repeated[0]!r} repeats within the rule")
        return self

    @property
    def origin(self) -> str:
        """The file this rule was loaded from (empty when built in code)."""
        return self._origin

    @property
    def window(self) -> timedelta | None:
        """The window of a threshold or sequence rule."""
        spec = self.threshold or self.sequence
        return spec.window if spec is not None else None

    @property
    def fingerprint(self) -> str:
        """A hash of what decides matching and state; engine state survives only equal ones."""
        decisive = self.model_dump_json(
            include={"kind", "where", "unless", "group_by", "threshold", "new_value", "sequence"}
        )
        return hashlib.sha256(decisive.encode()).hexdigest()[:16]

    def located(self, origin: str) -> Rule:
        """This rule, remembering the file it came from (for error messages)."""
        self._origin = origin
        return self
