"""YAML reading for config, taxonomy and rule packs: libyaml's C loader when present."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_yaml"]

# The pure-Python loader made reading the bundled packs most of a replay's start-up.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse ``text`` as safe YAML (no Python objects); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_LOADER)
