"""The daemon's checkpoint: pipeline state together with the source offsets it reflects.

Written atomically and durably to ``<state_dir>/checkpoint.json`` (a
temporary file, fsynced, renamed in, the directory fsynced) after a batch's
first commit of a partition, every ``service.snapshot_every`` and at
shutdown; the one before is kept as ``checkpoint.json.prev``. A checkpoint
that cannot be read or is damaged falls back to the previous one (one line
logged); only both unusable is an error. Temporary files a crash left behind
are deleted on start. On start the pipeline is
restored from it and each partition is read again from the checkpoint's
offset, so the state and the stream agree: records processed after the last
checkpoint are processed again, their alerts carry the same ids as before
(receivers deduplicate), and first-seen baselines, open windows and alerts
still folding repeats survive a restart or a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard

import orjson

from detector.errors import ConfigError
from detector.files import remove_stale_temporaries, write_atomically
from detector.logs import line_log

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "Offsets"]

CHECKPOINT_FORMAT = "ciwatch-checkpoint"
_VERSION = 1

Offsets = dict[tuple[str, int], int]
"""(topic, partition) → the next offset to read."""


class Checkpoint:
    """Saves and loads ``checkpoint.json`` in ``directory`` (created if missing).

    ``log``: where the one line about a fallback or a crash's leftovers goes.
    """

    def __init__(self, directory: Path, *, log: Callable[[str], None] | None = None) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create: {exc.strerror}", where=str(directory)) from None
        self.path = directory / "checkpoint.json"
        self.previous = directory / "checkpoint.json.prev"
        self.loaded: Path | None = None  # the file the last load or restore used
        self._log = line_log("ciwatch.checkpoint", log)
        try:
            stale = remove_stale_temporaries(self.path)
        except OSError as exc:
            raise ConfigError(f"cannot clean up: {exc.strerror}", where=str(directory)) from None
        if stale:
            self._log(
                f"removed {len(stale)} unfinished checkpoint files a crash left in {directory}"
            )

    def save(self, pipeline_state: dict[str, Any], offsets: Offsets) -> int:
        """Write the state and offsets atomically; the bytes written."""
        document = {
            "format": CHECKPOINT_FORMAT,
            "version": _VERSION,
            "offsets": [
                {"topic": topic, "partition": partition, "offset": offset}
                for (topic, partition), offset in sorted(offsets.items())
            ],
            "pipeline": pipeline_state,
        }
        payload = orjson.dumps(document)
        write_atomically(self.path, payload, keep=self.previous)
        return len(payload)

    def load(self) -> tuple[dict[str, Any], Offsets] | None:
        """The saved state and offsets, or ``None`` if there is no checkpoint yet.

        If ``checkpoint.json`` cannot be read, is damaged, of another format or
        version, or missing beside a previous one (a crash between the renames),
        the previous checkpoint is loaded instead, said in one line. Both
        unusable is a configuration error (one line naming the file): starting
        afresh would silently forget every baseline.
        """
        try:
            current = _read(self.path)
        except ConfigError as problem:
            return self._fall_back(problem)
        if current is None and self.previous.exists():
            return self._fall_back(None)
        self.loaded = self.path if current is not None else None
        return current

    def restore(self, apply: Callable[[dict[str, Any]], None]) -> Offsets | None:
        """Load the checkpoint and ``apply`` its pipeline state; its offsets (None: no checkpoint).

        ``apply`` raises :class:`ConfigError` (no ``where``) for state it cannot
        take, a wrong shape inside valid JSON: the previous checkpoint is applied
        instead, said in one line. Both failing is the current one's error, one
        line naming the file. ``apply`` must replace the whole state each time.
        """
        saved = self.load()
        if saved is None:
            return None
        state, offsets = saved
        try:
            apply(state)
            return offsets
        except ConfigError as exc:
            problem = ConfigError(exc.message, where=str(self.loaded))
        if self.loaded == self.previous:  # load fell back already: nothing older
            raise problem
        try:
            previous = _read(self.previous)
            if previous is None:
                raise ConfigError("missing")
            apply(previous[0])
        except ConfigError as exc:
            also = f"{problem.message}; the previous checkpoint too: {exc.message}"[:400]
            raise ConfigError(also, where=problem.where) from None
        self.loaded = self.previous
        self._log(
            f"{problem}; using the previous checkpoint {self.previous}", level=logging.WARNING
        )
        return previous[1]

    def _fall_back(self, problem: ConfigError | None) -> tuple[dict[str, Any], Offsets] | None:
        """The previous checkpoint, when the current one is unusable (``problem``) or missing."""
        try:
            previous = _read(self.previous)
        except ConfigError:
            if problem is None:
                raise
            raise problem from None
        if previous is None:
            if problem is not None:
                raise problem
            return None
        self.loaded = self.previous
        why = str(problem) if problem is not None else f"{self.path}: missing"
        self._log(f"{why}; using the previous checkpoint {self.previous}", level=logging.WARNING)
        return previous


def _read(path: Path) -> tuple[dict[str, Any], Offsets] | None:
    """The state and offsets in the checkpoint file ``path``; None if there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint: {exc.strerror}", where=str(path)) from None
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"damaged checkpoint ({exc})", where=str(path)) from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError("not a ciwatch checkpoint", where=str(path))
    if document.get("version") != _VERSION:
        version = document.get("version")
        raise ConfigError(f"unsupported checkpoint version {version}", where=str(path))
    return _contents(document, path)


def _contents(document: dict[str, Any], path: Path) -> tuple[dict[str, Any], Offsets]:
    """The pipeline state and offsets of a checkpoint document, its shape checked."""
    pipeline = document.get("pipeline")
    items = document.get("offsets")
    if not isinstance(pipeline, dict):
        raise ConfigError("damaged checkpoint: 'pipeline' is not an object", where=str(path))
    if not isinstance(items, list):
        raise ConfigError("damaged checkpoint: 'offsets' is not a list", where=str(path))
    offsets: Offsets = {}
    for number, item in enumerate(items):
        entry = item if isinstance(item, dict) else {}
        topic, partition, offset = entry.get("topic"), entry.get("partition"), entry.get("offset")
        if not (isinstance(topic, str) and _is_int(partition) and _is_int(offset)):
            message = f"damaged checkpoint: offsets[{number}] needs topic, partition and offset"
            raise ConfigError(message, where=str(path))
        offsets[(topic, partition)] = offset
    return pipeline, offsets


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
