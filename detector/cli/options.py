"""Option values checked where they are parsed: a bad one is one line before any work.

Each ``*_option`` function returns an argparse ``type=``; argparse reports its
``ArgumentTypeError`` as ``ciwatch: error: <command>: argument --name: <why>``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from detector.config import PipelineConfig
from detector.errors import ConfigError

__all__ = ["add_rules_option", "int_option", "output_directory", "rate_option", "with_rule_packs"]


def int_option(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (inclusive; no upper bound when None)."""
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def rate_option(below: float) -> Callable[[str], float]:
    """A share above 0 and below ``below`` (``0.001``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and 0 < value < below):
            raise argparse.ArgumentTypeError(f"must be above 0 and below {below}, got {text}")
        return value

    return parse


def output_directory(path: Path, what: str) -> Path:
    """``path`` as a directory to write ``what`` into, created if missing.

    Called before a command's real work, so that a file in the way or a
    read-only place is one :class:`ConfigError` at once, not after minutes.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"cannot write {what}: not a directory", where=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot write {what}: {exc.strerror or exc}", where=str(path)) from None
    return path


def add_rules_option(parser: argparse.ArgumentParser) -> None:
    """``--rules PATH`` (repeatable): rule packs to load besides those the config names."""
    parser.add_argument(
        "--rules",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="also load this rule pack, file or directory (repeatable), e.g. from `sigma convert`",
    )


def with_rule_packs(config: PipelineConfig, packs: list[Path]) -> PipelineConfig:
    """The config with ``packs`` loaded after the packs it names (``--rules``)."""
    if not packs:
        return config
    rules = config.rules.model_copy(update={"packs": (*config.rules.packs, *packs)})
    return config.model_copy(update={"rules": rules})
