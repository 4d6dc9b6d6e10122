"""The scenario generator, as the benchmarks and tests import it: now ``detector.generator``.

    python bench/scenarios.py --out DIR [--seed 7] [--days 7] [--people 20]

is ``ciwatch generate`` with the same options; see :mod:`detector.generator`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from detector.cli import main as ciwatch
from detector.generator import (
    ATTACK_IDS,
    BEHAVIOURAL_ATTACK_IDS,
    MERGED,
    MIN_DAYS,
    RULE_ATTACK_IDS,
    SOURCES,
    World,
    generate,
    labels,
    write,
)

__all__ = [
    "ATTACK_IDS",
    "BEHAVIOURAL_ATTACK_IDS",
    "MERGED",
    "MIN_DAYS",
    "RULE_ATTACK_IDS",
    "SOURCES",
    "World",
    "generate",
    "labels",
    "main",
    "write",
]


def main(argv: Sequence[str] | None = None) -> int:
    """``ciwatch generate`` with these arguments."""
    return ciwatch(["generate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
