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

The file is JSON lines, so that neither writing nor reading it holds the whole
state twice (:mod:`detector.streamed`): a header line (format, version), then
each large part of the state — the actor, IP and target tables, the actors'
anomaly estimates — as a section of one line per entry, then an index line:
the offsets, the rest of the state, and where each section is (its path in
the state, its bytes, its lines). Reading takes the header and the index;
each section is read, a line at a time, when the state is restored from it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

import orjson

from detector.errors import ConfigError
from detector.files import AtomicFile, remove_stale_temporaries
from detector.logs import line_log
from detector.streamed import (
    Section,
    SectionPlace,
    StreamedArray,
    StreamedObject,
    file_identity,
    json_line,
    split_sections,
)

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "CheckpointWrite", "Offsets"]

CHECKPOINT_FORMAT = "ciwatch-checkpoint"
_VERSION = 2
"""The version written: a header line, sections, an index line. Version 1 (one JSON
document) is still read."""
_BLOCK = 1 << 16  # bytes read at a time from the end, looking for the index's line

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

    def save(self, pipeline_state: Mapping[str, Any], offsets: Offsets) -> int:
        """Write the state and offsets atomically, a part at a time (the module's layout); the
        bytes written. :class:`~detector.streamed.Section` values in the state become sections."""
        written = self.begin(pipeline_state, offsets).advance(None)
        assert written is not None
        return written

    def begin(self, pipeline_state: Mapping[str, Any], offsets: Offsets) -> CheckpointWrite:
        """A checkpoint of the state and offsets as they are now, to write a part at a time
        (:meth:`CheckpointWrite.advance`) while the state moves on."""
        return CheckpointWrite(self, pipeline_state, offsets)

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


class CheckpointWrite:
    """A checkpoint being written a part at a time, so that the daemon's loop goes on
    between the parts; put in place whole (as :meth:`Checkpoint.save`) after the last.

    The state's sections must hold their parts as they were when it was taken
    (``snapshot(streamed=True)`` does): the state goes on changing meanwhile.
    Written a part at a time, the file is put in place on a thread of its own:
    its fsync waits for the disk (seconds for a large state on a slow volume),
    not holding the interpreter, so the loop goes on meanwhile too.
    """

    def __init__(
        self, checkpoint: Checkpoint, pipeline_state: Mapping[str, Any], offsets: Offsets
    ) -> None:
        self._parts = _encoded(pipeline_state, offsets)
        self._file = AtomicFile(checkpoint.path, keep=checkpoint.previous)
        self._commit: threading.Thread | None = None
        self._committed: int | BaseException = 0

    @property
    def committing(self) -> bool:
        """Every part is written and the file is being put in place."""
        return self._commit is not None

    def advance(self, seconds: float | None) -> int | None:
        """Write parts for about ``seconds`` (None: to the end, in place when this returns);
        the bytes written once the checkpoint is in place, else None. An ``OSError`` abandons
        the write."""
        if self._commit is None:
            deadline = None if seconds is None else time.monotonic() + seconds
            try:
                for part in self._parts:
                    self._file.write(part)
                    if deadline is not None and time.monotonic() >= deadline:
                        return None
            except BaseException:
                self._file.abandon()
                raise
            if seconds is None:
                return self._file.commit()
            self._commit = threading.Thread(target=self._put_in_place, name="ciwatch-checkpoint")
            self._commit.start()
        if seconds is not None and self._commit.is_alive():
            return None
        self._commit.join()
        if isinstance(self._committed, BaseException):
            raise self._committed
        return self._committed

    def _put_in_place(self) -> None:
        try:
            self._committed = self._file.commit()
        except BaseException as exc:  # raised on the loop's thread, by advance
            self._committed = exc

    def abandon(self) -> None:
        """Stop writing: the checkpoints in place stay as they were (not after
        :attr:`committing`: :meth:`advance` then finishes it)."""
        self._file.abandon()


def _encoded(pipeline_state: Mapping[str, Any], offsets: Offsets) -> Iterator[bytes]:
    """The bytes of a checkpoint file, a part at a time: its header, sections, index.

    What is not in a section, and the offsets, are encoded now; the sections
    hold their parts as they were when the state was taken, so the parts may
    be written while the loop goes on (:class:`CheckpointWrite`).
    """
    skeleton, sections = split_sections(pipeline_state)
    listed = [
        {"topic": topic, "partition": partition, "offset": offset}
        for (topic, partition), offset in sorted(offsets.items())
    ]
    rest = b'{"offsets":%b,"pipeline":%b' % (orjson.dumps(listed), orjson.dumps(skeleton))
    return _parts(sections, rest)


def _parts(sections: list[tuple[tuple[str, ...], Section]], rest: bytes) -> Iterator[bytes]:
    header = json_line({"format": CHECKPOINT_FORMAT, "version": _VERSION})
    yield header
    at = len(header)
    index = []
    for path, section in sections:
        start, count = at, 0
        for chunk, lines in section.lines():
            yield chunk
            at, count = at + len(chunk), count + lines
        index.append(
            {"path": list(path), "object": section.is_object, "start": start, "end": at,
             "count": count}
        )  # fmt: skip
    yield b'%b,"sections":%b}\n' % (rest, orjson.dumps(index))


def _read(path: Path) -> tuple[dict[str, Any], Offsets] | None:
    """The state and offsets in the checkpoint file ``path``; None if there is none."""
    try:
        with path.open("rb") as file:
            return _read_open(file, path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read checkpoint: {exc.strerror}", where=str(path)) from None


def _read_open(file: BinaryIO, path: Path) -> tuple[dict[str, Any], Offsets]:
    first = file.readline()
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        header = _decoded(first + file.read(), path)  # version 1, written with line breaks
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError("not a ciwatch checkpoint", where=str(path))
    version = header.get("version")
    if version == 1:  # one JSON document, the whole file
        return _contents(header, path)
    if version != _VERSION:
        raise ConfigError(f"unsupported checkpoint version {version}", where=str(path))
    index, index_at = _last_line(file, len(first))
    document = _decoded(index, path)
    if not isinstance(document, dict):
        raise ConfigError("damaged checkpoint: its index is not an object", where=str(path))
    state, offsets = _contents(document, path)
    identity = file_identity(file.fileno())
    sections = document.get("sections")
    if not isinstance(sections, list):
        raise ConfigError("damaged checkpoint: 'sections' is not a list", where=str(path))
    for number, entry in enumerate(sections):
        if not _placed(entry, state, (path, identity), (len(first), index_at)):
            raise ConfigError(f"damaged checkpoint: sections[{number}]", where=str(path))
    return state, offsets


def _placed(
    entry: Any, state: dict[str, Any], file: tuple[Path, tuple[int, ...]], bounds: tuple[int, int]
) -> bool:
    """Put the reader of the section an index ``entry`` describes where the section stands in
    ``state`` (its ``None``); False if the entry does not fit the file or the state."""
    if not isinstance(entry, dict):
        return False
    where, is_object = entry.get("path"), entry.get("object")
    start, end, count = entry.get("start"), entry.get("end"), entry.get("count")
    if not (
        isinstance(where, list) and where and all(isinstance(key, str) for key in where)
        and isinstance(is_object, bool) and _is_int(start) and _is_int(end) and _is_int(count)
    ):  # fmt: skip
        return False
    if not bounds[0] <= start <= end <= bounds[1] or count < 0:
        return False
    parent: Any = state
    for key in where[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or parent.get(where[-1], False) is not None:
        return False
    place = SectionPlace(file[0], file[1], ".".join(where), (start, end), count)
    parent[where[-1]] = StreamedObject(place) if is_object else StreamedArray(place)
    return True


def _decoded(data: bytes, path: Path) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"damaged checkpoint ({exc})", where=str(path)) from None


def _last_line(file: BinaryIO, start: int) -> tuple[bytes, int]:
    """The file's last line (the index) after byte ``start``, and where it starts."""
    end = position = file.seek(0, os.SEEK_END)
    blocks: list[bytes] = []
    while position > start:
        step = min(_BLOCK, position - start)
        position -= step
        file.seek(position)
        block = file.read(step)
        # The file's own last byte is the index's line break: not where the index starts.
        cut = block.rfind(b"\n", 0, len(block) - 1 if position + step == end else len(block))
        if cut >= 0:
            blocks.append(block[cut + 1 :])
            return b"".join(reversed(blocks)), position + cut + 1
        blocks.append(block)
    return b"".join(reversed(blocks)), start


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
