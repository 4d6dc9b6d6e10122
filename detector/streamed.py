"""Large parts of a JSON state written a line at a time and read back lazily, in little memory.

A checkpoint of a million actors is some 1.6 GB of JSON. Built as one document
(every key's state as Python dicts and lists, then the bytes), writing it took
8,970 MiB on top of a 1,585 MiB state, and at 100,000 actors a restart reading
it back peaked at 2,386 MiB against 620 MiB running: a pod sized for the state
was killed by its first checkpoint (``bench/memory.py``). So a state
may hold a :class:`Section` where a large JSON object (an actor table) or array
stands: :func:`split_sections` takes them out of the document,
:meth:`Section.lines` writes one JSON line per entry, a few hundred entries of
Python objects at a time, and :class:`StreamedObject` and :class:`StreamedArray`
read such lines back from the file as they are iterated, one line at a time.

Like :mod:`detector.files`, this module sits above the data flow: any layer may
import it, and it imports nothing of ciwatch but its errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, ItemsView, Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from detector.errors import ConfigError

__all__ = [
    "Section",
    "SectionPlace",
    "StreamedArray",
    "StreamedObject",
    "file_identity",
    "json_line",
    "split_sections",
]

_LINES_PER_WRITE = 500  # entries turned to JSON, then written, at a time


def json_line(value: Any) -> bytes:
    """``value`` as one line of JSON, its line break included."""
    return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE)


class Section:
    """A large JSON object (key, value pairs) or array (values), produced while it is written.

    ``produce`` is called once, when the section is written: the state is read
    then, not when the section was made.
    """

    __slots__ = ("_produce", "is_object")

    def __init__(self, produce: Callable[[], Iterable[Any]], *, is_object: bool) -> None:
        self._produce = produce
        self.is_object = is_object

    @classmethod
    def of_pairs(cls, produce: Callable[[], Iterable[tuple[str, Any]]]) -> Section:
        """A JSON object of the ``(key, value)`` pairs ``produce`` gives."""
        return cls(produce, is_object=True)

    @classmethod
    def of_items(cls, produce: Callable[[], Iterable[Any]]) -> Section:
        """A JSON array of the values ``produce`` gives."""
        return cls(produce, is_object=False)

    def lines(self) -> Iterator[tuple[bytes, int]]:
        """JSON lines, ``[key, value]`` or the value, some at a time: (bytes, how many lines)."""
        entries = iter(self._produce())
        pair = self.is_object
        while chunk := list(islice(entries, _LINES_PER_WRITE)):
            if pair:
                chunk = [[str(key), value] for key, value in chunk]
            yield b"".join([json_line(entry) for entry in chunk]), len(chunk)


def split_sections(
    document: Mapping[str, Any], path: tuple[str, ...] = ()
) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], Section]]]:
    """``document`` with ``None`` where a :class:`Section` was, and each section's path.

    Sections are found as values of nested mappings; the mappings on the way
    are copied, nothing else.
    """
    skeleton: dict[str, Any] = {}
    found: list[tuple[tuple[str, ...], Section]] = []
    for key, value in document.items():
        if isinstance(value, Section):
            skeleton[key] = None
            found.append(((*path, key), value))
        elif isinstance(value, Mapping):
            skeleton[key], inner = split_sections(value, (*path, key))
            found += inner
        else:
            skeleton[key] = value
    return skeleton, found


class SectionPlace:
    """Where a section's lines are in a file: bytes ``start`` to ``end``, ``count`` lines.

    ``identity`` is the file's (device, inode, size, modification time) when
    its index was read: a file replaced since is not read as if it were the same.
    """

    __slots__ = ("count", "end", "identity", "name", "path", "start")

    def __init__(
        self, path: Path, identity: tuple[int, ...], name: str, span: tuple[int, int], count: int
    ) -> None:
        self.path, self.identity, self.name = path, identity, name
        self.start, self.end = span
        self.count = count

    def entries(self) -> Iterator[Any]:
        """Each line's JSON value, in order; :class:`ConfigError` naming the file if damaged
        or gone."""
        try:
            file = self.path.open("rb")
        except OSError as exc:
            raise self.damaged(f"cannot read it: {exc.strerror}") from None
        with file:
            if file_identity(file.fileno()) != self.identity:
                raise self.damaged("the file changed while it was read")
            file.seek(self.start)
            position, read = self.start, 0
            while position < self.end:
                line = file.readline()
                position += len(line)
                if not line.endswith(b"\n") or position > self.end:
                    raise self.damaged(f"line {read + 1} is cut")
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise self.damaged(f"line {read + 1}: {exc}") from None
                read += 1
        if read != self.count:
            raise self.damaged(f"{read} lines, the index says {self.count}")

    def damaged(self, why: str) -> ConfigError:
        """The error of a damaged section: its name and ``why``, naming the file."""
        return ConfigError(f"section {self.name}: {why}", where=str(self.path))


def file_identity(descriptor: int) -> tuple[int, ...]:
    """What tells one version of a file from another: device, inode, size, modification time."""
    status = os.fstat(descriptor)
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


class StreamedObject(Mapping[str, Any]):
    """A JSON object read from a section's ``[key, value]`` lines each time it is iterated.

    Iterate :meth:`items` (one pass over the lines); a key looked up alone is
    found by reading the lines up to it.
    """

    __slots__ = ("_place",)

    def __init__(self, place: SectionPlace) -> None:
        self._place = place

    def pairs(self) -> Iterator[tuple[str, Any]]:
        for entry in self._place.entries():
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise self._place.damaged("a line is not a [key, value] pair")
            yield entry[0], entry[1]

    def items(self) -> ItemsView[str, Any]:
        return _StreamedItems(self)

    def __getitem__(self, key: str) -> Any:
        for known, value in self.pairs():
            if known == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self.pairs())

    def __len__(self) -> int:
        return self._place.count


class _StreamedItems(ItemsView[str, Any]):
    """The items of a :class:`StreamedObject`, read in one pass (not a lookup per key)."""

    _mapping: StreamedObject

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._mapping.pairs()


class StreamedArray(Collection[Any]):
    """A JSON array read from a section's lines each time it is iterated."""

    __slots__ = ("_place",)

    def __init__(self, place: SectionPlace) -> None:
        self._place = place

    def __iter__(self) -> Iterator[Any]:
        return self._place.entries()

    def __len__(self) -> int:
        return self._place.count

    def __contains__(self, value: object) -> bool:
        return any(value == item for item in self)
