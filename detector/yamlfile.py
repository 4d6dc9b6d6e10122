"""YAML reading for config, taxonomy and rule packs: libyaml's C loader when present."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_yaml", "not_utf8"]

# The pure-Python loader made reading the bundled packs most of a replay's start-up.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse ``text`` as safe YAML (no Python objects); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_LOADER)


def not_utf8(exc: UnicodeDecodeError) -> str:
    """One line for a file that is not UTF-8 text, naming the first bad byte's offset."""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
