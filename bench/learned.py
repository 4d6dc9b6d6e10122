"""The ``learned`` kind of ``bench/detection.py``: models ciwatch learns while it replays.

A team turning ciwatch on has no models yet: ``ciwatch run`` (and ``ciwatch
replay --learn``, the same learning over event time) raises no anomaly alert
during its learning period (``models.learn.learning_period``, 14 days by
default), trains as soon as a model family has rows enough, and retrains every
day. To measure that, each held-out organisation is generated again, the same
one (seed, people and shape), over the learning period plus its usual days,
with its attacks only after the learning period (``ciwatch generate
--attacks-from``): the first :func:`learning_days` days are the clean history
the models learn from. False alerts and actor-days are counted from the first
day after the learning period only (:func:`counted_from`); every attack counts
for recall, as for the other kinds.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import replay_quality as rq
from heldout import HeldOut

from detector.config import load_config
from detector.generator import World, generate
from detector.generator.world import START

__all__ = [
    "LEARN",
    "counted_from",
    "fresh_learn_dir",
    "learned",
    "learned_world",
    "learning_days",
    "since",
]

LEARN = "--learn"
DAY = timedelta(days=1)


@cache
def learning_days() -> int:
    """Whole days of the default ``models.learn.learning_period`` (what the replay uses)."""
    period = load_config(None).models.learn.learning_period
    return math.ceil(period / DAY)


def counted_from() -> datetime:
    """The first moment counted for false alerts: the day after the learning period starts."""
    return START + learning_days() * DAY


def learned_world(held: HeldOut) -> World:
    """``held``'s organisation over the learning period plus its days, attacks after it.

    The attacks start on the day after the learning period's last (``--attacks-from``
    15 for 14 days), so none falls while the models are still learning.
    """
    days = learning_days()
    return generate(
        held.seed, days + held.days, held.people, shape=held.shape, attacks_from=days + 1
    )


def learned(held: HeldOut, work: Path) -> list[str]:
    """Models learned while replaying (``replay --learn``): nothing to prepare beforehand.

    Each replay learns in a directory of its own under ``work`` (kept with
    ``--work``: ``ciwatch models list --state-dir`` shows its generations).
    """
    return [LEARN]


def fresh_learn_dir(options: list[str], directory: Path) -> list[str]:
    """``options`` with an empty ``--learn-dir`` of its own when they learn, else as they are.

    Emptied first: a state directory left by an earlier run (``--work``) would
    hand its models, trained on the whole world, to the start of this one.
    """
    if LEARN not in options:
        return options
    shutil.rmtree(directory, ignore_errors=True)
    return [*options, "--learn-dir", str(directory)]


def since(result: rq.Score, moment: datetime | None) -> rq.Score:
    """``result`` with only the false alerts that start at ``moment`` or later (None: all)."""
    if moment is None:
        return result
    kept = [
        (alert, look_alike) for alert, look_alike in result.false_alerts if alert.first >= moment
    ]
    return replace(result, false_alerts=kept)
