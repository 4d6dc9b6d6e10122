"""The daemon's checkpoints, paced: taken between batches, written a part at a time.

Writing a checkpoint of a large state takes seconds (50,000 actors: 0.9 s, a
million: 9.8 s), and a loop stopped that long leaves a backlog that a daemon
at 90 % of its sustained rate takes nine times as long to catch up on. So a
periodic checkpoint is *taken* between two batches — the offsets, the small
parts of the state encoded, and each key's parts as they are (a copy of a
hot key's, a reference to a cold key's, which counting replaces but never
changes) — and *written* after each later batch for a ninth of the time
that batch took, so that checkpoints take a tenth of the loop's time at most
and the loop goes on between the parts. After its last part it is put in
place (fsync, rename) on a thread of its own, since the fsync waits for the
disk; until then the previous checkpoints stand. A checkpoint that must be
durable now (before a partition's first commit, at a clean stop) is written
whole, dropping one in flight. One in flight is dropped too when partitions
are revoked, since its offsets would hold one this replica no longer owns;
one already being put in place is finished, as if written just before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from detector.checkpoint import Checkpoint, CheckpointWrite, Offsets
from detector.metrics import Metrics

__all__ = ["CHECKPOINT_SHARE", "PacedCheckpoints", "State"]

CHECKPOINT_SHARE = 0.1
"""At most this share of the loop's time goes to writing checkpoints: the parts written after
a batch take a ninth of its time, and checkpoints longer than a ninth of ``snapshot_every``
are spaced out."""
_LEAST_PART = 0.005  # seconds written after a batch at the least (a quick, idle loop)

State = Callable[[], tuple[Mapping[str, Any], Offsets]]
"""The pipeline state to checkpoint (``snapshot(streamed=True)``) and its offsets, taken when
called."""


class PacedCheckpoints:
    """A daemon's checkpoints in ``checkpoint``: :meth:`take` one, :meth:`pace` it after each
    batch, or :meth:`save` one whole; failures counted in ``metrics`` and said once in ``log``.
    """

    def __init__(
        self, checkpoint: Checkpoint, metrics: Metrics, log: Callable[..., None], every: float
    ) -> None:
        self.checkpoint = checkpoint
        self.seconds = 0.0
        """How long the last checkpoint took the loop: its taking and each of its parts."""
        self._metrics, self._log, self._every = metrics, log, every
        self._writing: CheckpointWrite | None = None
        self._spent = 0.0  # the loop's seconds on the checkpoint in flight
        self._failing = False
        self._spaced = False

    @property
    def writing(self) -> bool:
        """A checkpoint is taken and not yet in place."""
        return self._writing is not None

    @property
    def committing(self) -> bool:
        """The checkpoint in flight is written and being put in place (on its own thread)."""
        return self._writing is not None and self._writing.committing

    def take(self, state: State) -> None:
        """Take a checkpoint of ``state`` now, to write after later batches (none while one is
        in flight: that one is finished first)."""
        if self._writing is not None:
            return
        started = time.monotonic()
        try:
            pipeline_state, offsets = state()
            self._writing = self.checkpoint.begin(pipeline_state, dict(offsets))
        except OSError as exc:
            self._failed(exc)
        self._spent = time.monotonic() - started

    def pace(self, loop_seconds: float) -> bool:
        """Write the checkpoint in flight for a ninth of ``loop_seconds`` (what the batch just
        processed took); whether it is now in place."""
        if self._writing is None:
            return False
        share = max(_LEAST_PART, loop_seconds * CHECKPOINT_SHARE / (1 - CHECKPOINT_SHARE))
        return self._advance(share)

    def save(self, state: State) -> bool:
        """Write a checkpoint of ``state`` whole, now (one in flight is dropped); whether it
        is in place."""
        self.abandon()
        self.take(state)
        return self._writing is not None and self._advance(None)

    def abandon(self) -> None:
        """Drop the checkpoint in flight, if any: the ones in place stay. One whose every part
        is written is being put in place: that is finished instead."""
        if self.committing:
            self._advance(None)
        elif self._writing is not None:
            self._writing.abandon()
            self._writing = None

    def _advance(self, seconds: float | None) -> bool:
        assert self._writing is not None
        started = time.monotonic()
        try:
            written = self._writing.advance(seconds)
        except OSError as exc:  # a full disk: the previous checkpoint stays; tried again later
            self._writing = None
            self._failed(exc)
            return False
        finally:
            self._spent += time.monotonic() - started
        if written is None:
            return False
        self._writing, self.seconds = None, self._spent
        if self._failing:
            self._log("checkpoint written again", file=str(self.checkpoint.path))
        self._failing = False
        self._metrics.snapshots.labels("ok").inc()
        return True

    def _failed(self, exc: OSError) -> None:
        self._metrics.snapshots.labels("error").inc()
        if not self._failing:  # once, not every snapshot_every
            self._log(
                f"checkpoint failed: {exc}; retrying quietly",
                level=logging.ERROR,
                file=str(self.checkpoint.path),
                error_type=type(exc).__name__,
            )
        self._failing = True

    def interval(self) -> float:
        """Seconds from taking a checkpoint to taking the next: ``snapshot_every``, or longer
        when the last took the loop more than :data:`CHECKPOINT_SHARE` of that (said once)."""
        spaced = self.seconds * (1 / CHECKPOINT_SHARE - 1)
        if spaced <= self._every:
            return self._every
        if not self._spaced:
            self._spaced = True
            self._log(
                f"a checkpoint took {self.seconds:.1f} s to write: checkpoints are"
                f" spaced {spaced:.0f} s apart instead of every {self._every:.0f} s"
                " (service.snapshot_every), so that they take a tenth of the time at most",
                level=logging.WARNING,
            )
        return spaced
