"""What rules read: the feature names they mention, and so the key kinds a store counts."""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

from detector.features.families import FAMILIES
from detector.features.store import KINDS
from detector.rules.model import Rule

__all__ = ["features_read", "kinds_read"]

_FEATURE_MENTION = re.compile(r"features(?:\.|\[)((?:actor|ip|target|event)\.[\w.]*\w)")


def features_read(rules: Iterable[Rule]) -> set[str]:
    """Feature names the rules mention anywhere: ``features.<name>`` in a condition,
    ``{features[<name>]}`` in a summary (a superset: prose that names one counts too)."""
    names: set[str] = set()
    for rule in rules:
        text = orjson.dumps(rule.model_dump(mode="json", exclude={"tests"}, warnings=False))
        names.update(_FEATURE_MENTION.findall(text.decode()))
    return names


def kinds_read(rules: Iterable[Rule], *, models: bool) -> tuple[str, ...]:
    """The key kinds a store counts: the actor, and the IP and target if the rules or (with
    ``models``) the models read their features. Counting a target costs about a sixth of
    the feature stage (docs/performance-history.md), for features nothing else reads."""
    read = features_read(rules)
    if models:
        read |= {name for family in FAMILIES.values() for name in family.features}
    return tuple(
        kind for kind in KINDS if kind == "actor" or any(n.startswith(f"{kind}.") for n in read)
    )
