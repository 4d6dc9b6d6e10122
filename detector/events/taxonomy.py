"""Taxonomy as data: vendor action → category and privileged flag; automation identities.

Files live in ``pipelines/taxonomy/*.yaml``; later files (and later
directories) override earlier ones, so a deployment adds its own CI roles and
service accounts in a file of its own. One file classifies one source::

    source: github_audit          # the parser name
    default: other                # category of actions not listed
    actions:                      # exact vendor action → category
      repo.create: code_access
      protected_branch.destroy: {category: config_change, privileged: true}
    patterns:                     # globs (only * and ? are wild), tried after exact actions
      - {match: "secret_scanning*", category: config_change}
    automation:                   # actor globs that are machines → actor_type service
      - "*[bot]"

A file without ``source`` may only list ``automation`` globs, which then apply
to every source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detector.errors import TaxonomyError
from detector.events.model import Category
from detector.resources import pipelines_dir
from detector.yamlfile import read_yaml_file, yaml_files_in

__all__ = ["Classification", "Taxonomy", "bundled_taxonomy_dir"]

_CACHE_LIMIT = 65_536
_ANY_SOURCE = "*"


@dataclass(frozen=True, slots=True)
class Classification:
    category: Category
    privileged: bool = False


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category: Category
    privileged: bool = False


class _Pattern(_Entry):
    match: str


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str | None = None
    default: Category | None = None
    actions: dict[str, _Entry] = Field(default_factory=dict)
    patterns: list[_Pattern] = Field(default_factory=list)
    automation: list[str] = Field(default_factory=list)

    @field_validator("actions", mode="before")
    @classmethod
    def _short_form(cls, actions: Any) -> Any:
        """``action: category`` is shorthand for ``action: {category: category}``."""
        if not isinstance(actions, Mapping):
            return actions
        return {k: {"category": v} if isinstance(v, str) else v for k, v in actions.items()}


@dataclass
class _SourceTable:
    default: Classification
    exact: dict[str, Classification]
    patterns: list[tuple[re.Pattern[str], Classification]]


def bundled_taxonomy_dir() -> Path:
    """The taxonomy shipped with ciwatch (``pipelines/taxonomy``)."""
    return pipelines_dir() / "taxonomy"


class Taxonomy:
    """Answers "what category is this action" and "is this actor a machine".

    Lookups are cached per (source, key); the caches are bounded because actor
    names and vendor actions are open-ended over months of traffic.
    """

    def __init__(self, files: Iterable[Path] = (), *, automation: Iterable[str] = ()) -> None:
        """Load taxonomy ``files`` in order; ``automation`` adds actor globs for every source."""
        self._tables: dict[str, _SourceTable] = {}
        self._automation: dict[str, list[str]] = {}
        self._automation_re: dict[str, re.Pattern[str] | None] = {}
        # Source → key → answer: two lookups cost less than building and hashing a
        # (source, key) tuple per event.
        self._class_cache: dict[str, dict[str, Classification]] = {}
        self._actor_cache: dict[str, dict[str, bool]] = {}
        for path in files:
            self._add_file(path)
        self._automation.setdefault(_ANY_SOURCE, []).extend(automation)
        self._compile_automation()

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path], *, automation: Iterable[str] = ()) -> Taxonomy:
        """Load the YAML files of each directory (``*.yaml``, ``*.yml``), in order."""
        files: list[Path] = []
        for directory in dirs:
            if not directory.is_dir():
                raise TaxonomyError("not a directory", where=str(directory))
            files.extend(yaml_files_in(directory, TaxonomyError))
        return cls(files, automation=automation)

    @classmethod
    def bundled(cls) -> Taxonomy:
        return cls.from_dirs([bundled_taxonomy_dir()])

    @property
    def sources(self) -> list[str]:
        return sorted(self._tables)

    def classify(self, source: str, key: str) -> Classification:
        cached = self._class_cache.get(source)
        found = None if cached is None else cached.get(key)
        if found is None:
            found = self._lookup(source, key)
            _remember(self._class_cache, source, key, found)
        return found

    def covers(self, source: str, key: str) -> bool:
        """True if an exact entry or a pattern classifies ``key`` (not just the default)."""
        table = self._tables.get(source)
        if table is None:
            return False
        return key in table.exact or any(p.match(key) for p, _ in table.patterns)

    def is_automation(self, source: str, actor: str) -> bool:
        cached = self._actor_cache.get(source)
        found = None if cached is None else cached.get(actor)
        if found is None:
            found = any(
                pattern is not None and pattern.match(actor) is not None
                for pattern in (self._automation_re.get(source), self._automation_re[_ANY_SOURCE])
            )
            _remember(self._actor_cache, source, actor, found)
        return found

    def _lookup(self, source: str, key: str) -> Classification:
        table = self._tables.get(source)
        if table is None:
            return Classification(Category.OTHER)
        exact = table.exact.get(key)
        if exact is not None:
            return exact
        for pattern, classification in table.patterns:
            if pattern.match(key):
                return classification
        return table.default

    def _add_file(self, path: Path) -> None:
        spec = _load(path)
        self._automation.setdefault(spec.source or _ANY_SOURCE, []).extend(spec.automation)
        if spec.source is None:
            if spec.actions or spec.patterns or spec.default:
                raise TaxonomyError(
                    "actions need a 'source' key naming the log type", where=str(path)
                )
            return
        table = self._tables.setdefault(
            spec.source, _SourceTable(Classification(Category.OTHER), {}, [])
        )
        if spec.default is not None:
            table.default = Classification(spec.default)
        for action, entry in spec.actions.items():
            table.exact[action] = Classification(entry.category, entry.privileged)
        # Later files' patterns go first so that an overlay can refine a bundled glob.
        table.patterns[:0] = [
            (_glob(p.match), Classification(p.category, p.privileged)) for p in spec.patterns
        ]

    def _compile_automation(self) -> None:
        self._automation.setdefault(_ANY_SOURCE, [])
        self._automation_re = {
            source: re.compile("|".join(_glob(g).pattern for g in globs)) if globs else None
            for source, globs in self._automation.items()
        }


_T = TypeVar("_T")


def _remember(cache: dict[str, dict[str, _T]], source: str, key: str, answer: _T) -> None:
    """Add an answer to a per-source cache; all are forgotten at :data:`_CACHE_LIMIT` in all."""
    if sum(map(len, cache.values())) >= _CACHE_LIMIT:
        cache.clear()
    cache.setdefault(source, {})[key] = answer


def _glob(pattern: str) -> re.Pattern[str]:
    """A glob where only ``*`` and ``?`` are wild: ``[bot]`` in ``*[bot]`` stays literal."""
    escaped = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(f"(?:{escaped})\\Z", re.DOTALL)


def _load(path: Path) -> _File:
    data: Any = read_yaml_file(path, TaxonomyError, what="taxonomy")
    if not isinstance(data, Mapping):
        raise TaxonomyError("expected a mapping at the top", where=str(path))
    try:
        return _File.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(part) for part in first["loc"])
        raise TaxonomyError(f"{loc}: {first['msg']}", where=str(path)) from None
