"""The names and order of the features every Observation carries.

Every observation has the same names, in the order :func:`feature_names`
gives (a key kind the event does not have counts 0), so models get
fixed-width vectors. Names are documented in docs/features.md; changing what
a name means or the set of names bumps :data:`FEATURE_SCHEMA_VERSION`.

>>> FEATURE_NAMES[:3]
('actor.events.5m', 'actor.failures.5m', 'actor.privileged.5m')
"""

from __future__ import annotations

from detector.events.model import Category
from detector.features.settings import FeatureSettings

__all__ = [
    "ACTOR_CHANNELS",
    "ACTOR_DISTINCT_FIELDS",
    "ACTOR_RATIOS",
    "ACTOR_SCALARS",
    "CATEGORY_CHANNELS",
    "EVENT_FLAGS",
    "FEATURE_NAMES",
    "FEATURE_SCHEMA_VERSION",
    "IP_CHANNELS",
    "MUTATING_CATEGORIES",
    "TARGET_CHANNELS",
    "feature_names",
    "windowed_names",
]

FEATURE_SCHEMA_VERSION = "3"

ACTOR_CHANNELS = (
    "events",
    "failures",
    "privileged",
    "distinct_ips",
    "distinct_countries",
    "distinct_targets",
    "distinct_repos",
    "distinct_namespaces",
    "distinct_user_agents",
    "code_access",
    "secret_access",
    "pipeline",
    "infrastructure_change",
    "privilege_change",
    "config_change",
    "production",
    "novel",
)
"""Windowed counts per actor; ``distinct_*`` count the values of :data:`ACTOR_DISTINCT_FIELDS`,
the category channels (see :data:`CATEGORY_CHANNELS`) the events of that category, and
``production`` the events on a production namespace or target, ``novel`` the events carrying
a value of a tracked field first seen for the actor (learning period or not)."""

ACTOR_DISTINCT_FIELDS = {
    "distinct_ips": "ip",
    "distinct_countries": "country",
    "distinct_targets": "target",
    "distinct_repos": "repo",
    "distinct_namespaces": "namespace",
    "distinct_user_agents": "user_agent",
}
"""Distinct-count channel → the event field (or ``attributes`` key) it counts."""

CATEGORY_CHANNELS = {
    Category.CODE_ACCESS: "code_access",
    Category.SECRET_ACCESS: "secret_access",
    Category.PIPELINE: "pipeline",
    Category.INFRASTRUCTURE_CHANGE: "infrastructure_change",
    Category.PRIVILEGE_CHANGE: "privilege_change",
    Category.CONFIG_CHANGE: "config_change",
}
"""Event category → the actor channel counting it (other categories have none)."""

MUTATING_CATEGORIES = frozenset(
    {Category.INFRASTRUCTURE_CHANGE, Category.PRIVILEGE_CHANGE, Category.CONFIG_CHANGE}
)
"""Categories that change something (``event.mutating``)."""

IP_CHANNELS = ("events", "failures", "distinct_actors")
TARGET_CHANNELS = ("distinct_actors",)

ACTOR_SCALARS = (
    "actor.hour_of_week_share",
    "actor.hour_of_week_rarity",
    "actor.active_hours_of_week",
    "actor.age_days",
    "actor.learning",
)
ACTOR_RATIOS = ("failure_ratio", "events_vs_baseline")
"""Per window, ratios computed from the actor's counts (see docs/features.md)."""

EVENT_FLAGS = ("event.failure", "event.privileged", "event.mutating", "event.production")


def windowed_names(
    kind: str, channels: tuple[str, ...], labels: tuple[str, ...]
) -> tuple[str, ...]:
    """``kind.channel.window`` names, window by window (the order counters report them)."""
    return tuple(f"{kind}.{channel}.{label}" for label in labels for channel in channels)


def feature_names(settings: FeatureSettings) -> tuple[str, ...]:
    """Every feature name of a store with these settings, in vector order."""
    labels = settings.window_labels
    return (
        *windowed_names("actor", ACTOR_CHANNELS, labels),
        *windowed_names("ip", IP_CHANNELS, labels),
        *windowed_names("target", TARGET_CHANNELS, labels),
        *ACTOR_SCALARS,
        *windowed_names("actor", ACTOR_RATIOS, labels),
        *(f"actor.new.{field}" for field in settings.tracked),
        *EVENT_FLAGS,
    )


FEATURE_NAMES: tuple[str, ...] = feature_names(FeatureSettings())
"""The feature names with the default settings."""
