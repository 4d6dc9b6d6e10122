"""YAML files for config, taxonomy and rule packs: reading them, and finding them.

One reading (libyaml's C loader when present; every problem one error naming
the file, and the line for a syntax error) and one listing rule (``*.yaml`` and
``*.yml``, sorted by name, hidden files skipped) for every kind of YAML file
ciwatch loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from detector.errors import CiwatchError

__all__ = ["YAML_SUFFIXES", "load_yaml", "not_utf8", "read_yaml_file", "yaml_files_in"]

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
