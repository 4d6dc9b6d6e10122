"""Reading rule packs: YAML files or directories of them, validated rule by rule.

Every problem ends in one :class:`~detector.errors.RuleError` whose ``where``
names the file, the rule and the field:
``pipelines/rules/identity.yaml: rule okta-brute-force: threshold.window: invalid
duration '10x' ...``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from detector.errors import RuleError
from detector.features.settings import FeatureSettings
from detector.resources import pipelines_dir
from detector.rules.fields import LocatedError
from detector.rules.model import Rule, RuleKind
from detector.yamlfile import read_yaml_file, yaml_files_in

__all__ = ["bundled_rules_dir", "check_tracked", "check_unique_ids", "load_rules", "rule_files"]

_TOP_LEVEL = frozenset({"rules"})


def bundled_rules_dir() -> Path:
    """The default rule pack shipped with ciwatch (``pipelines/rules``)."""
    return pipelines_dir() / "rules"


def load_rules(paths: Sequence[Path | str], *, tracked: Sequence[str] | None = None) -> list[Rule]:
    """Every rule in ``paths`` (files, or directories of ``*.yaml``), in file then pack order.

    Disabled rules are returned too (the engine skips them). ``tracked`` is the
    list of fields new_value rules may name (default: ``FeatureSettings().tracked``).
    The bundled pack's directory may be missing or empty; any other missing
    path is an error.
    """
    allowed = tuple(tracked) if tracked is not None else _default_tracked()
    rules = [rule for path in rule_files(paths) for rule in _load_file(path)]
    check_unique_ids(rules)
    for rule in rules:
        check_tracked(rule, allowed)
    return rules


def check_unique_ids(rules: Iterable[Rule]) -> None:
    """Raise :class:`RuleError` at the second rule with an id already used, naming the first."""
    first: dict[str, str] = {}
    for rule in rules:
        origin = rule.origin or "<rules>"
        if rule.id in first:
            raise RuleError(
                f"duplicate rule id (first in {first[rule.id]})",
                where=f"{origin}: rule {rule.id}: id",
            )
        first[rule.id] = origin


def check_tracked(rule: Rule, tracked: Sequence[str]) -> None:
    """Raise if a new_value rule names a field the feature store does not track."""
    spec = rule.new_value
    if rule.kind is RuleKind.NEW_VALUE and spec is not None and spec.field not in tracked:
        known = ", ".join(tracked)
        raise RuleError(
            f"{spec.field!r} is not a tracked field (tracked: {known})",
            where=f"{rule.origin or '<rules>'}: rule {rule.id}: new_value.field",
        )


def rule_files(paths: Sequence[Path | str]) -> list[Path]:
    """The YAML files ``paths`` stand for: files as given, directories' ``*.yaml`` and
    ``*.yml`` files sorted by name (hidden ones skipped)."""
    files: list[Path] = []
    bundled = _bundled_or_none()
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(yaml_files_in(path, RuleError))
        elif path.is_file():
            files.append(path)
        elif bundled is not None and path.resolve() == bundled.resolve():
            continue
        elif path.exists():
            raise RuleError("not a regular file or a directory", where=str(path))
        else:
            raise RuleError("no such file or directory", where=str(path))
    return files


def _load_file(path: Path) -> list[Rule]:
    entries = _read_entries(path)
    rules: list[Rule] = []
    for index, entry in enumerate(entries):
        label = _label(entry, index)
        if not isinstance(entry, Mapping):
            raise RuleError("each rule must be a mapping", where=f"{path}: rule {label}")
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            field, message = _describe(exc.errors()[0])
            raise RuleError(message, where=f"{path}: rule {label}: {field}") from None
        rules.append(rule.located(str(path)))
    return rules


def _read_entries(path: Path) -> list[Any]:
    data: Any = read_yaml_file(path, RuleError, what="rule pack")
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise RuleError("expected a mapping with a 'rules' list at the top", where=str(path))
    unknown = sorted(str(key) for key in data if key not in _TOP_LEVEL)
    if unknown:
        raise RuleError(f"unknown top-level key {unknown[0]!r} (expected: rules)", where=str(path))
    entries = data.get("rules")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RuleError("'rules' must be a list", where=f"{path}: rules")
    return entries


def _label(entry: Any, index: int) -> str:
    if isinstance(entry, Mapping) and isinstance(entry.get("id"), str) and entry["id"]:
        return str(entry["id"])
    return f"#{index + 1}"


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """The dotted field and a one-line message for the first validation error."""
    field = _dotted(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, LocatedError):
        inner = cause.path
        if inner:
            field = f"{field}{inner}" if inner.startswith("[") or not field else f"{field}.{inner}"
        return field or "(rule)", cause.message
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return field or "(rule)", message.splitlines()[0]


def _dotted(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            # pydantic labels tagged/function validators with their type; not a field name.
            if "[" in part or part.startswith("function-"):
                continue
            text = f"{text}.{part}" if text else part
    return text


def _default_tracked() -> tuple[str, ...]:
    return FeatureSettings().tracked


def _bundled_or_none() -> Path | None:
    try:
        return bundled_rules_dir()
    except FileNotFoundError:
        return None
