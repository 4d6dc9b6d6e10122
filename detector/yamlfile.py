"""YAML files for config, taxonomy and rule packs: reading them, and finding them.

One reading (libyaml's C loader when present; every problem one error naming
the file, and the line for a syntax error) and one listing rule (``*.yaml`` and
``*.yml``, sorted by name, hidden files skipped) for every kind of YAML file
ciwatch loads.

Loading keeps no positions (that is what makes it fast). When a loaded value
turns out to be invalid, :func:`line_of` composes the file again and follows a
key path to the line of the offending key, so an error can say
``pack.yaml:42: rule x: where.outcome``; only the error path pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from detector.errors import CiwatchError

__all__ = [
    "YAML_SUFFIXES",
    "KeyPath",
    "compose_yaml_file",
    "key_path",
    "line_of",
    "load_yaml",
    "locate",
    "not_utf8",
    "read_yaml_file",
    "yaml_files_in",
]

YAML_SUFFIXES = (".yaml", ".yml")

# The pure-Python loader made reading the bundled packs most of a replay's start-up.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """Parse ``text`` as safe YAML (no Python objects); raises ``yaml.YAMLError``."""
    return yaml.load(text, Loader=_LOADER)


def read_yaml_file(path: Path, error: type[CiwatchError], *, what: str) -> Any:
    """The parsed content of the YAML file ``path`` (None when empty).

    Any problem raises one ``error`` naming the file: ``cannot read <what>: ...``
    when it cannot be read as UTF-8 text, ``not valid YAML: ...`` at ``path:line``
    for a syntax error.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror or exc}", where=str(path)) from None
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {what}: {not_utf8(exc)}", where=str(path)) from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"not valid YAML: {problem}", where=where) from None


def yaml_files_in(directory: Path, error: type[CiwatchError]) -> list[Path]:
    """The YAML files directly in ``directory``: ``*.yaml`` and ``*.yml``, sorted by name.

    Hidden files (editor swap files, ``.#pack.yaml``) are skipped. A directory that
    cannot be listed raises one ``error`` naming it.
    """
    try:
        entries = list(directory.iterdir())
    except OSError as exc:
        raise error(f"cannot list: {exc.strerror or exc}", where=str(directory)) from None
    return sorted(
        path
        for path in entries
        if path.suffix in YAML_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def not_utf8(exc: UnicodeDecodeError) -> str:
    """One line for a file that is not UTF-8 text, naming the first bad byte's offset."""
    return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"


KeyPath = Sequence[str | int]
"""Keys (mapping keys, or dotted parts of them) and list indexes from a file's top."""

_PART = re.compile(r"\[(\d+)\]|[^.\[\]]+")


def key_path(dotted: str) -> list[str | int]:
    """``where.outcome.regex`` → ``["where", "outcome", "regex"]``; ``[2]`` → ``2``."""
    return [int(match[1]) if match[1] is not None else match[0] for match in _PART.finditer(dotted)]


def compose_yaml_file(path: Path | str) -> yaml.Node | None:
    """The node tree of a YAML file, with positions; ``None`` when it cannot be read."""
    try:
        return yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def locate(node: yaml.Node, keys: KeyPath) -> tuple[int, bool]:
    """The 1-based line of the deepest node ``keys`` reach from ``node``, and whether all did.

    A key names the mapping key it matches (the line of the key itself, where
    an author looks); an index names a list item. Keys may hold dots
    (``raw.client.userAgent``): at a mapping the longest run of remaining parts
    that is a key wins. Where the path stops (a required key that is missing),
    the line is that of the last key or item reached: the one that should hold it.
    """
    line, index = node.start_mark.line + 1, 0
    while index < len(keys):
        found = _step(node, keys, index)
        if found is None:
            return line, False
        mark_node, node, index = found
        line = mark_node.start_mark.line + 1
    return line, True


def _step(node: yaml.Node, keys: KeyPath, index: int) -> tuple[yaml.Node, yaml.Node, int] | None:
    part = keys[index]
    if isinstance(node, yaml.SequenceNode):
        if isinstance(part, int) and 0 <= part < len(node.value):
            item: yaml.Node = node.value[part]
            return item, item, index + 1
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    for end in range(len(keys), index, -1):
        parts = keys[index:end]
        if any(isinstance(p, int) for p in parts[1:]):
            continue
        wanted = ".".join(str(p) for p in parts)
        # The last of repeated keys, as loading keeps the last value.
        matches = [
            (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == wanted
        ]
        if matches:
            key, value = matches[-1]
            return key, value, end
    return None


def line_of(path: Path | str, keys: KeyPath) -> int | None:
    """The line :func:`locate` finds for ``keys`` in the file ``path``; ``None`` if unreadable."""
    root = compose_yaml_file(path)
    return None if root is None else locate(root, keys)[0]
