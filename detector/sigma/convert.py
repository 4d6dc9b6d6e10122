"""Sigma rules → ciwatch rules, built on pySigma: parse, map fields, translate, validate.

pySigma parses the YAML (:class:`~sigma.collection.SigmaCollection`), resolves
correlation references, applies the field mapping pipeline of
:mod:`detector.sigma.logsources` and builds each condition tree;
:mod:`detector.sigma.conditions` and :mod:`detector.sigma.correlations` write the
ciwatch conditions. Every converted rule is validated with the ciwatch rule model
before it is kept: a rule is converted whole or reported with the reason it is not.

Example::

    result = convert_texts({"okta.yml": text})
    result.converted[0].rule["where"]   # {"source": "okta_system_log", "action": ...}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import yaml
from pydantic import ValidationError
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule

from detector.errors import ConfigError
from detector.rules.model import Rule
from detector.sigma.conditions import UnsupportedSigmaError
from detector.sigma.correlations import correlation_rule, referenced_rules
from detector.sigma.logsources import processing_pipeline
from detector.sigma.matching import log_source_name, match_conditions

__all__ = ["Conversion", "Converted", "Skipped", "convert_texts", "rule_metadata"]

_LEVELS = {
    "informational": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}
_MAX_SLUG = 80


@dataclass(frozen=True)
class Converted:
    """A converted rule: plain data, ready to write into a rule pack."""

    rule: dict[str, Any]
    log_source: str
    origin: str


@dataclass(frozen=True)
class Skipped:
    """A Sigma rule that was not converted, and why."""

    title: str
    origin: str
    log_source: str
    reason: str


@dataclass
class Conversion:
    converted: list[Converted] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.converted) + len(self.skipped)


def convert_texts(texts: Mapping[str, str]) -> Conversion:
    """Convert Sigma YAML texts (name → text); correlations may refer across them.

    A text that is not YAML raises :class:`ConfigError` naming it; a document pySigma
    rejects, or a rule ciwatch cannot express, is a :class:`Skipped` entry.
    """
    collection, origins = _collect(texts)
    conversion = Conversion()
    pipeline = processing_pipeline()
    for sigma_rule in collection.rules:
        if isinstance(sigma_rule, SigmaRule) and not sigma_rule.errors:
            try:
                pipeline.apply(sigma_rule)  # before correlations read their rules' conditions
            except SigmaError as exc:
                sigma_rule.errors.append(exc)
    ids: set[str] = set()
    # Not output: rules only a correlation uses (its `generate: false`, Sigma's default).
    outputs = cast("list[SigmaRule | SigmaCorrelationRule]", list(collection.get_output_rules()))
    for sigma_rule in outputs:
        origin = origins.get(id(sigma_rule), "")
        log_source = _log_source_name(sigma_rule)
        try:
            rule = _convert_one(sigma_rule, ids)
        except (UnsupportedSigmaError, SigmaError) as exc:
            conversion.skipped.append(Skipped(sigma_rule.title, origin, log_source, str(exc)))
            continue
        ids.add(rule["id"])
        conversion.converted.append(Converted(rule, log_source, origin))
    return conversion


def _collect(texts: Mapping[str, str]) -> tuple[SigmaCollection, dict[int, str]]:
    collections: list[SigmaCollection] = []
    origins: dict[int, str] = {}
    for name, text in texts.items():
        try:
            documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError as exc:
            raise ConfigError(f"not YAML: {_first_line(exc)}", where=name) from None
        if not all(isinstance(doc, dict) for doc in documents):
            raise ConfigError("not a Sigma rule: expected mappings", where=name)
        collection = SigmaCollection.from_dicts(
            documents, collect_errors=True, resolve_references=False
        )
        for sigma_rule in collection.rules:
            origins[id(sigma_rule)] = name
        collections.append(collection)
    # Correlations may name rules of other files: resolve once everything is in.
    merged = SigmaCollection.merge(collections, resolve_references=False)
    for rule in merged.rules:
        if isinstance(rule, SigmaCorrelationRule):
            _resolve_or_record(rule, merged)
    return merged, origins


def _resolve_or_record(rule: SigmaCorrelationRule, collection: SigmaCollection) -> None:
    try:
        rule.resolve_rule_references(collection)
    except SigmaError as exc:
        rule.errors.append(exc)


def _convert_one(sigma_rule: SigmaRule | SigmaCorrelationRule, ids: set[str]) -> dict[str, Any]:
    if sigma_rule.errors:
        raise UnsupportedSigmaError(f"invalid Sigma rule: {_first_line(sigma_rule.errors[0])}")
    if isinstance(sigma_rule, SigmaCorrelationRule):
        body = correlation_rule(sigma_rule)
    else:
        body = {"kind": "match", "where": match_conditions(sigma_rule)}
    metadata = rule_metadata(sigma_rule, ids)
    head = {key: metadata.pop(key) for key in ("id", "title")}
    rule = {**head, "kind": body.pop("kind"), **metadata, **body}
    try:
        Rule.model_validate(rule)
    except (ValidationError, ValueError) as exc:
        raise UnsupportedSigmaError(
            f"the converted rule does not load: {_first_line(exc)}"
        ) from None
    return rule


def rule_metadata(
    sigma_rule: SigmaRule | SigmaCorrelationRule, ids: set[str] | None = None
) -> dict[str, Any]:
    """Id, title, severity, description, ATT&CK tags and attribution of a converted rule."""
    title = sigma_rule.title.strip() or "untitled Sigma rule"
    level = sigma_rule.level.name.lower() if sigma_rule.level is not None else "medium"
    metadata: dict[str, Any] = {
        "id": _rule_id(sigma_rule, ids or set()),
        "title": title,
        "severity": _LEVELS.get(level, "medium"),
        "description": " ".join((sigma_rule.description or title).split()),
    }
    tags = attack_tags(str(tag) for tag in sigma_rule.tags)
    if tags:
        metadata["tags"] = tags
    if sigma_rule.references:
        metadata["references"] = [str(ref) for ref in sigma_rule.references if str(ref).strip()]
    false_positives = [str(fp).strip() for fp in sigma_rule.falsepositives if str(fp).strip()]
    if false_positives:
        metadata["false_positives"] = false_positives
        metadata["runbook"] = "Known false positives (from the Sigma rule): " + "; ".join(
            false_positives
        )
    origin = {
        "id": str(sigma_rule.id) if sigma_rule.id is not None else None,
        "author": sigma_rule.author,
        "license": sigma_rule.license or "DRL-1.1",
        "status": sigma_rule.status.name.lower() if sigma_rule.status is not None else None,
        "date": sigma_rule.date.isoformat() if sigma_rule.date is not None else None,
        "modified": sigma_rule.modified.isoformat() if sigma_rule.modified is not None else None,
    }
    metadata["sigma"] = {key: value for key, value in origin.items() if value is not None}
    return metadata


def attack_tags(tags: Iterable[str]) -> list[str]:
    """Sigma's ATT&CK tags as ciwatch writes them (``attack.defense-evasion`` → ``_evasion``)."""
    return [tag.lower().replace("-", "_") for tag in tags if tag.lower().startswith("attack.")]


def _rule_id(sigma_rule: SigmaRule | SigmaCorrelationRule, ids: set[str]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", sigma_rule.title.lower()).strip("-")[:_MAX_SLUG].strip("-")
    base = f"sigma-{slug or 'rule'}"
    if sigma_rule.id is not None:
        base += f"-{str(sigma_rule.id).lower()[:8]}"
    candidate, number = base, 2
    while candidate in ids:  # two rules of one title without ids
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def _log_source_name(sigma_rule: SigmaRule | SigmaCorrelationRule) -> str:
    if isinstance(sigma_rule, SigmaRule):
        return log_source_name(sigma_rule)
    try:
        return log_source_name(referenced_rules(sigma_rule)[0])
    except UnsupportedSigmaError:
        return "correlation"


def _first_line(exc: BaseException | object) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
