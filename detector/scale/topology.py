"""Scale-out's shape: the keyed stages a config needs, their topics, and which rules run where.

Kafka is the distributed engine, as in Kafka Streams: every event is produced
to an internal topic keyed by the key a stage's state is grouped on, so all
events of one key land on one partition and one replica owns that key's state.
The stages form a chain, in this order, each only when something needs it:

- ``ip``: rules grouped by source IP without the actor (a password spray), and
  the IP features a model or rule reads (``ip.distinct_actors.1h``);
- ``target``: the same for targets;
- ``actor``: everything else — per-actor features, the other rules, the
  models, suppression and risk. Always present.

A stage before ``actor`` counts its own key kind's windows for each event and
hands the counts on with it (:func:`detector.scale.wire.encode`), so the actor
stage's feature vectors are the single-process ones.

Events without the stage's key (no IP, no target) pass through keyed by actor.
A rule grouped by neither actor, IP nor target (``attributes.session``) runs in
the actor stage: it sees whole only what one actor does (an Okta session has one user).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from detector.events.model import Event
from detector.features.durations import DurationOrZero
from detector.rules.model import Rule
from detector.rules.reads import kinds_read

__all__ = ["ScaleSettings", "Topology", "rule_stage"]

_UPSTREAM = ("ip", "target")
"""Key kinds that may get a stage before the actor's, in chain order."""


class ScaleSettings(BaseModel):
    """``service.scale``: run as keyed stages over internal topics (docs/scaling.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    topic_prefix: str = Field(default="ciwatch", pattern=r"^[A-Za-z0-9._-]+$")
    """Internal topics are ``<prefix>.by-<kind>`` and ``<prefix>.by-<kind>.changelog``."""
    partitions: int = Field(default=12, ge=1, le=10_000)
    """Partitions of each internal topic: the most consumers a stage can use."""
    producer_wait: DurationOrZero = timedelta(seconds=60)
    """Longest a stage partition waits for a silent producer (a replica that died, until
    its partitions' next owner sends): past it, that producer's older records are late."""
    max_held_records: int = Field(default=10_000, gt=0)
    """Most records a stage partition holds while it waits for a producer: past it, the
    oldest go on although the wait goes on, and that producer's older records are late
    (~4.6 KB a held record, decoded event included)."""


def rule_stage(rule: Rule) -> str:
    """The stage a rule runs in: the first of actor, ip, target it groups by; else actor."""
    keys = set(rule.group_by)
    if "actor" in keys:
        return "actor"
    return next((kind for kind in _UPSTREAM if kind in keys), "actor")


@dataclass(frozen=True, slots=True)
class Topology:
    """The chain of stages and their topics; ``stages`` ends with ``actor``."""

    prefix: str
    stages: tuple[str, ...]
    partitions: int
    # Asked per record polled: one lookup instead of formatting each stage's topic name.
    _stage_by_topic: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stages = {self.topic(stage): stage for stage in self.stages}
        object.__setattr__(self, "_stage_by_topic", stages)  # frozen: set once, here

    @classmethod
    def plan(cls, settings: ScaleSettings, rules: Sequence[Rule], *, models: bool) -> Topology:
        """The stages ``rules`` (and the models, if scoring) need."""
        needed = {rule_stage(rule) for rule in rules}
        read = kinds_read(rules, models=models)
        stages = tuple(kind for kind in _UPSTREAM if kind in needed or kind in read)
        return cls(settings.topic_prefix, (*stages, "actor"), settings.partitions)

    def topic(self, stage: str) -> str:
        return f"{self.prefix}.by-{stage}"

    def changelog(self, stage: str) -> str:
        return f"{self.prefix}.by-{stage}.changelog"

    @property
    def topics(self) -> dict[str, int]:
        """Every internal topic (stage inputs and changelogs) → partitions."""
        stages = self.stages
        names = [name for stage in stages for name in (self.topic(stage), self.changelog(stage))]
        return dict.fromkeys(names, self.partitions)

    @property
    def changelogs(self) -> list[str]:
        return [self.changelog(stage) for stage in self.stages]

    def stage_of(self, topic: str) -> str | None:
        """The stage whose input ``topic`` is; None for a source topic."""
        return self._stage_by_topic.get(topic)

    def after(self, stage: str | None) -> str | None:
        """The stage events go to after ``stage`` (None: from the source); None after actor."""
        if stage is None:
            return self.stages[0]
        at = self.stages.index(stage)
        return self.stages[at + 1] if at + 1 < len(self.stages) else None

    @staticmethod
    def key(stage: str, event: Event) -> str:
        """The partitioning key of ``event`` on ``stage``'s topic."""
        if stage == "ip":
            return event.ip or event.actor
        if stage == "target":
            return event.target or event.actor
        return event.actor

    @staticmethod
    def rules_of(stage: str, rules: Iterable[Rule]) -> list[Rule]:
        return [rule for rule in rules if rule_stage(rule) == stage]

    @property
    def carried(self) -> tuple[str, ...]:
        """Key kinds counted by an upstream stage and carried to the actor stage."""
        return self.stages[:-1]
