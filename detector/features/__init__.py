"""Per-key behavioural state over event-time windows (see docs/features.md).

:class:`FeatureStore` turns each event into an :class:`Observation`: the
event, whether it was late, whether its actor is still learning, the values it
shows for the first time, and the named features of :data:`FEATURE_NAMES`.
"""

from __future__ import annotations

from detector.features.durations import format_duration, parse_duration
from detector.features.families import FAMILIES, FAMILY_SCHEMA_VERSION, Family, schema_hash
from detector.features.observation import Observation
from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION, feature_names
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore

__all__ = [
    "FAMILIES",
    "FAMILY_SCHEMA_VERSION",
    "FEATURE_NAMES",
    "FEATURE_SCHEMA_VERSION",
    "Family",
    "FeatureSettings",
    "FeatureStore",
    "Observation",
    "feature_names",
    "format_duration",
    "parse_duration",
    "schema_hash",
]
