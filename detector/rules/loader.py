"""Reading rule packs: YAML files or directories of them, validated rule by rule.

Every problem ends in one :class:`~detector.errors.RuleError` whose ``where``
names the file and line, the rule and the field:
``pipelines/rules/identity.yaml:42: rule okta-brute-force: threshold.window: invalid
duration '10x' ...``. Lines are found only once something is wrong, by composing
the file again (:func:`detector.yamlfile.line_of`): loading stays as fast as libyaml.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from detector.errors import RuleError
from detector.features.settings import FeatureSettings
from detector.resources import pipelines_dir
from detector.rules.fields import LocatedError
from detector.rules.model import Rule, RuleKind
from detector.yamlfile import (
    KeyPath,
    compose_yaml_file,
    key_path,
    line_of,
    locate,
    read_yaml_file,
    yaml_files_in,
)

__all__ = [
    "bundled_rules_dir",
    "check_tracked",
    "check_unique_ids",
    "load_rules",
    "rule_files",
    "rule_lines",
    "rule_location",
    "rule_locations",
]

_TOP_LEVEL = frozenset({"rules"})
_WHOLE_RULE = "(rule)"  # the field named when an error is about the rule as a whole


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
    """Raise :class:`RuleError` at the second rule with an id already used, naming the first
    (both as ``file:line``)."""
    first: dict[str, tuple[Rule, int]] = {}
    seen: Counter[tuple[str, str]] = Counter()  # (file, id) → rules so far, for repeats in one file
    for rule in rules:
        nth = seen[rule.origin, rule.id]
        seen[rule.origin, rule.id] += 1
        if rule.id in first:
            earlier, earlier_nth = first[rule.id]
            raise RuleError(
                f"duplicate rule id (first in {rule_location(earlier, ['id'], nth=earlier_nth)})",
                where=f"{rule_location(rule, ['id'], nth=nth)}: rule {rule.id}: id",
            )
        first[rule.id] = (rule, nth)


def check_tracked(rule: Rule, tracked: Sequence[str]) -> None:
    """Raise if a new_value rule names a field the feature store does not track."""
    spec = rule.new_value
    if rule.kind is RuleKind.NEW_VALUE and spec is not None and spec.field not in tracked:
        known = ", ".join(tracked)
        raise RuleError(
            f"{spec.field!r} is not a tracked field (tracked: {known})",
            where=f"{rule_location(rule, ['new_value', 'field'])}: rule {rule.id}: new_value.field",
        )


def rule_location(rule: Rule, keys: KeyPath = (), *, nth: int = 0) -> str:
    """``file:line`` of ``keys`` inside ``rule`` (its start for no keys), or the file alone.

    The rule is found by id in its file (``nth``: which of several rules with that
    id). Composes the file: meant for error messages and failed tests, not loops.
    """
    return rule_locations(rule, [keys], nth=nth)[0]


def rule_locations(rule: Rule, key_paths: Sequence[KeyPath], *, nth: int = 0) -> list[str]:
    """:func:`rule_location` for several key paths, composing the file once."""
    origin = rule.origin or "<rules>"
    lines = rule_lines(rule, key_paths, nth=nth)
    return [f"{origin}:{line}" if line is not None else origin for line in lines]


def rule_lines(rule: Rule, key_paths: Sequence[KeyPath], *, nth: int = 0) -> list[int | None]:
    """The 1-based line of each key path inside ``rule`` in its file (``None``: not found)."""
    root = compose_yaml_file(rule.origin) if rule.origin else None
    item = _nth_rule_node(root, rule.id, nth) if root is not None else None
    return [None if item is None else locate(item, keys)[0] for keys in key_paths]


def _nth_rule_node(root: yaml.Node, rule_id: str, nth: int) -> yaml.Node | None:
    rules = _value_of(root, "rules")
    if not isinstance(rules, yaml.SequenceNode):
        return None
    matching = [item for item in rules.value if _scalar_value(_value_of(item, "id")) == rule_id]
    return matching[nth] if nth < len(matching) else None


def _value_of(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    values = [value for name, value in node.value if _scalar_value(name) == key]
    return values[-1] if values else None


def _scalar_value(node: yaml.Node | None) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _at(path: Path, keys: KeyPath) -> str:
    """``path:line`` of ``keys`` in the file (composed again: errors only), or ``path``."""
    line = line_of(path, keys)
    return f"{path}:{line}" if line is not None else str(path)


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
            where = f"{_at(path, ['rules', index])}: rule {label}"
            raise RuleError("each rule must be a mapping", where=where)
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            field, message = _describe(exc.errors()[0])
            keys = key_path(field) if field != _WHOLE_RULE else []
            where = f"{_at(path, ['rules', index, *keys])}: rule {label}: {field}"
            raise RuleError(message, where=where) from None
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
        message = f"unknown top-level key {unknown[0]!r} (expected: rules)"
        raise RuleError(message, where=_at(path, [unknown[0]]))
    entries = data.get("rules")
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise RuleError("'rules' must be a list", where=f"{_at(path, ['rules'])}: rules")
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
        return field or _WHOLE_RULE, cause.message
    kind = error["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return field or _WHOLE_RULE, message.splitlines()[0]


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
