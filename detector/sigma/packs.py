"""Reading Sigma files and directories, and writing converted rules as ciwatch rule packs.

One pack file per Sigma log source (``sigma-aws-cloudtrail.yaml``), rules in input
order, each a complete, loadable rule: the pack loads with ``--rules DIR``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import yaml

from detector.errors import ConfigError
from detector.files import write_atomically
from detector.sigma.convert import Conversion, Converted, convert_texts

__all__ = ["convert_paths", "pack_name", "sigma_files", "write_pack"]

_SIGMA_SUFFIXES = (".yml", ".yaml")
_HEADER = """\
# Converted from Sigma by `ciwatch sigma convert` (docs/sigma.md). Do not edit by hand:
# convert again. Each rule keeps its Sigma id, author and licence under `sigma:`; SigmaHQ's
# rules are under the Detection Rule License 1.1 (https://github.com/SigmaHQ/Detection-Rule-License),
# which asks derived rules to keep that attribution.
"""


def sigma_files(paths: Sequence[Path]) -> list[Path]:
    """The Sigma YAML files at ``paths``: files as given, directories searched recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    item
                    for item in path.rglob("*")
                    if item.suffix in _SIGMA_SUFFIXES
                    and item.is_file()
                    and not item.name.startswith(".")
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError("no such file or directory", where=str(path))
    return found


def convert_paths(paths: Sequence[Path]) -> Conversion:
    """Convert every Sigma rule in ``paths``; a missing or unreadable file is a ConfigError."""
    texts: dict[str, str] = {}
    for path in sigma_files(paths):
        try:
            texts[str(path)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read: {getattr(exc, 'strerror', None) or exc}", where=str(path)
            ) from None
    if not texts:
        raise ConfigError("no Sigma rules (*.yml, *.yaml) here", where=", ".join(map(str, paths)))
    return convert_texts(texts)


def pack_name(log_source: str) -> str:
    """The pack file of a Sigma log source: ``aws/cloudtrail`` → ``sigma-aws-cloudtrail.yaml``."""
    return "sigma-" + re.sub(r"[^a-z0-9]+", "-", log_source.lower()).strip("-") + ".yaml"


def write_pack(converted: Sequence[Converted], directory: Path) -> list[Path]:
    """Write the converted rules into ``directory``, one pack per log source; the files written."""
    by_pack: dict[str, list[Converted]] = defaultdict(list)
    for item in converted:
        by_pack[pack_name(item.log_source)].append(item)
    written: list[Path] = []
    for name, items in sorted(by_pack.items()):
        body = yaml.safe_dump(
            {"rules": [item.rule for item in items]},
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
        target = directory / name
        write_atomically(target, (_HEADER + body).encode("utf-8"))
        written.append(target)
    return written
