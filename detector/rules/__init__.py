"""Rules as data: rule packs in YAML, validated on load, evaluated over observations.

The schema and examples are in docs/rules.md. The public surface:
:func:`load_rules` reads packs, :class:`RuleEngine` evaluates them with a
:class:`RuleContext` (change windows, tracked fields) and yields
:class:`~detector.detections.Detection` objects for the alert layer.
"""

from __future__ import annotations

from detector.rules.context import ChangeWindow, RuleContext
from detector.rules.engine import EngineStateError, RuleEngine
from detector.rules.loader import bundled_rules_dir, load_rules
from detector.rules.model import Rule, RuleKind, TestCase, TestEvent

__all__ = [
    "ChangeWindow",
    "EngineStateError",
    "Rule",
    "RuleContext",
    "RuleEngine",
    "RuleKind",
    "TestCase",
    "TestEvent",
    "bundled_rules_dir",
    "load_rules",
]
