"""A scaled replica's learner state between restarts: one file in its state directory.

The unscaled daemon keeps its learner's state — when the learning period
started, the newest event time, the last cut trained at, the incidents kept out
of training — in its checkpoint. A scaled replica has no checkpoint of its own
(its tasks' state is in the changelogs, and moves with their partitions), while
its learner belongs to the process: so that state is this file, written
atomically with every save of the tasks, after the history it describes. The
history and the generations are in the state directory already
(:mod:`detector.scoring.learner`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from detector.files import write_atomically
from detector.learning import BackgroundLearning
from detector.logs import LineLog
from detector.scoring.learner import Learner

__all__ = ["LEARNER_FILE", "restore_learner", "save_learner"]

LEARNER_FILE = "learner.json"


def save_learner(learning: BackgroundLearning, learner: Learner, directory: Path) -> None:
    """Write the history's changed days, then the learner's state; ``OSError`` to the caller."""
    learning.flush()
    write_atomically(directory / LEARNER_FILE, orjson.dumps(learner.snapshot()))


def restore_learner(learner: Learner, directory: Path, log: LineLog) -> bool:
    """Continue from the state :func:`save_learner` wrote; whether there was one to use.

    A missing file is a first start. An unreadable one is logged, and the learner
    goes on from what its history and generations tell (as after a lost
    checkpoint): it may retrain a cut or let an incident's rows back in, never
    stop learning.
    """
    path = directory / LEARNER_FILE
    try:
        state = orjson.loads(path.read_bytes())
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        learner.restore(state)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, TypeError, KeyError) as exc:  # orjson's errors are ValueErrors
        log(f"{path} not restored ({exc}): learning goes on from the history",
            level=logging.WARNING)  # fmt: skip
        return False
    return True
