"""The daemon's checkpoint: pipeline state together with the source offsets it reflects.

Written atomically to ``<state_dir>/checkpoint.json`` after a committed batch,
every ``service.snapshot_every`` and at shutdown. On start the pipeline is
restored from it and each partition is read again from the checkpoint's
offset, so the state and the stream agree: records processed after the last
checkpoint are processed again, their alerts carry the same ids as before
(receivers deduplicate), and first-seen baselines, open windows and alerts
still folding repeats survive a restart or a crash.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, TypeGuard

import orjson

from detector.errors import ConfigError
from detector.features.state import write_atomically

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "Offsets"]

CHECKPOINT_FORMAT = "ciwatch-checkpoint"
_VERSION = 1

Offsets = dict[tuple[str, int], int]
"""(topic, partition) → the next offset to read."""


class Checkpoint:
    """Saves and loads ``checkpoint.json`` in ``directory`` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create: {exc.strerror}", where=str(directory)) from None
        self.path = directory / "checkpoint.json"

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
        write_atomically(self.path, payload)
        return len(payload)

    def load(self) -> tuple[dict[str, Any], Offsets] | None:
        """The saved state and offsets, or ``None`` if there is no checkpoint yet.

        A checkpoint that cannot be read or is of another format or version is
        a configuration error (one line naming the file): starting afresh would
        silently forget every baseline.
        """
        with contextlib.suppress(FileNotFoundError):
            try:
                document = orjson.loads(self.path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"damaged checkpoint ({exc})", where=str(self.path)) from None
            if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
                raise ConfigError("not a ciwatch checkpoint", where=str(self.path))
            if document.get("version") != _VERSION:
                version = document.get("version")
                raise ConfigError(f"unsupported checkpoint version {version}", where=str(self.path))
            return _contents(document, self.path)
        return None


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
