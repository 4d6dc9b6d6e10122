"""What the feature layer hands every detector for one event.

An :class:`Observation` is the event plus what per-actor state says about it at
that moment: whether it arrived too late to count in the windows, which tracked
values the actor shows for the first time, whether the actor is still in its
learning period, and the named feature numbers (the FeatureVector) that rules
and models read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from detector.events.model import Event
from detector.frozen import quick_builder, quick_init

__all__ = ["Observation", "new_observation"]


@quick_init
@dataclass(frozen=True, slots=True)
class Observation:
    """One event seen through the per-actor state.

    ``late``: the event is older than the watermark minus the allowed lateness;
    it was not added to any window and stateful detectors skip it.
    ``new_values``: tracked field (``country``, ``ip``, ...) → the value this
    actor shows for the first time (or again after forget-after), reported only
    once the actor's learning period is over.
    ``learning``: the actor is still within its learning period.
    ``features``: feature name → value, as documented in docs/features.md.
    ``known_values``: for each field of ``new_values``, the values the actor was
    remembered with right after this event, most recent first (rules explain a
    new value with them; a store observes a whole batch before rules read it).
    """

    event: Event
    late: bool = False
    learning: bool = False
    new_values: Mapping[str, str] = field(default_factory=dict)
    features: Mapping[str, float] = field(default_factory=dict)
    known_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


new_observation = quick_builder(Observation)
"""``Observation(*fields)``, every field given positionally in field order: half the time of
the class's own call (:func:`~detector.frozen.quick_builder`), for the store, which makes one
per event."""
