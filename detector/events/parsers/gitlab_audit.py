"""GitLab audit events: streaming payloads, REST API items and ``audit_json.log`` lines.

Three shapes of one record (``author_id``, ``author_name``, ``entity_id``,
``entity_type``, ``created_at`` and a free-form ``details`` object):

* **streaming** (HTTP destinations, GitLab 14.5+): ``event_type``
  (``repository_git_operation``), plus ``entity_path``, ``target_*`` and
  ``ip_address`` at the top level, repeated under ``details``;
* **REST** ``/audit_events`` items: older ones have no ``event_type``, what
  happened is only in ``details`` (``change``/``from``/``to``,
  ``add``/``remove``, ``custom_message``), with ``author_email``;
* **audit_json.log** lines: ``time`` and ``severity``, the details merged into
  the top level.

The action is ``event_type`` when present. Without one it is derived from the
details, verbatim values behind a fixed word: ``change visibility``,
``add user_access``, ``remove user_access``, ``failed_login STANDARD``,
``login with standard``, else the ``custom_message`` text (or, for a
structured message, its ``action``: ``git-upload-pack``). The generic
``audit_operation`` type is classified by that derived action instead.

Authors: ``author_id`` -1 is an unauthenticated author (a failed sign-in names
the login that was tried), other negative ids are deploy tokens, deploy keys
and runner tokens. Panther's rule tests are ``{"detail": {...}}`` fragments
without a time, which dead-letter as ``missing_time``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.events.fields import first_str, get, parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["GitLabAuditParser"]

_TIME_FIELDS = ("created_at", "time", "p_event_time")
_PANTHER_LOG_TYPE = "GitLab.Audit"
# Keys only GitLab puts in an audit event's details; they recognise Panther's bare fragments.
_DETAIL_KEYS = ("custom_message", "author_class", "target_details", "failed_login", "entity_path")
# Details keys that say what happened, and the word the derived action starts with.
_ACTION_KEYS = (
    ("change", "change"),
    ("add", "add"),
    ("remove", "remove"),
    ("failed_login", "failed_login"),
    ("with", "login with"),
)
_GENERIC_TYPE = "audit_operation"
_FAILURE_WORDS = ("failed", "failure")
_UNAUTHENTICATED_ID = -1
_UNAUTHENTICATED_CLASS = "UnauthenticatedAuthor"
# Author classes of tokens and keys: machines, whoever created them.
_SERVICE_CLASSES = ("DeployToken", "DeployKey", "CiRunnerToken", "RunnerRegistrationToken", "Orbit")
_PROJECT_BOT_SUFFIX = "_by_project_bot"
_NAMESPACE_TYPES = frozenset({"Project", "Group", "Namespace"})
_MAX_VALUE_CHARS = 200


@register
class GitLabAuditParser(Parser):
    name = "gitlab_audit"
    time_field = "created_at"
    priority = 20
    triggers = frozenset({"p_log_type", "author_id", "event_type", "detail"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if doc.get("p_log_type") == _PANTHER_LOG_TYPE:
            return True
        if "author_id" in doc and ("entity_type" in doc or "entity_id" in doc):
            return True
        if isinstance(doc.get("event_type"), str) and "entity_path" in doc:
            return True
        # Panther's rule tests keep only {"detail": {...}}; EventBridge's "detail" comes with
        # "detail-type" and "source", and holds other vendors' keys.
        detail = doc.get("detail")
        return (
            isinstance(detail, Mapping)
            and "detail-type" not in doc
            and any(key in detail for key in _DETAIL_KEYS)
        )

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        details = _details(doc)
        time = parse_time(next((v for f in _TIME_FIELDS if (v := get(doc, f))), None))
        event_type = first_str(doc, "event_type")
        derived = _derived_action(doc, details)
        action = require(event_type or derived, "action")
        actor = require(_actor(doc, details), "actor")
        path = _entity_path(doc, details)
        # The catch-all type says nothing; its details say what happened.
        key = derived if event_type == _GENERIC_TYPE and derived else None
        return parsed(
            time=time,
            action=action,
            actor=actor,
            outcome=_outcome(key or action, doc, details),
            actor_type=_actor_type(doc, details, action),
            ip=valid_ip(_detail(doc, details, "ip_address")),
            target=_target(doc, details, path),
            vendor_id=first_str(doc, "id"),
            taxonomy_key=key,
            attributes=_attributes(doc, details, path),
        )


def _details(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("details", "detail"):
        value = doc.get(key)
        if isinstance(value, Mapping):
            return value
    return {}


def _detail(doc: Mapping[str, Any], details: Mapping[str, Any], key: str) -> str | None:
    """A field from the top level (streaming, audit_json.log) or from ``details`` (REST)."""
    return first_str(doc, key) or first_str(details, key)


def _derived_action(doc: Mapping[str, Any], details: Mapping[str, Any]) -> str | None:
    for key, word in _ACTION_KEYS:
        value = _detail(doc, details, key)
        if value is not None:
            return f"{word} {value}"
    message = details.get("custom_message", doc.get("custom_message"))
    if isinstance(message, Mapping):
        # Git operations: {"protocol": "ssh", "action": "git-upload-pack"}.
        return first_str(message, "action")
    return str_or_none(message)


def _actor(doc: Mapping[str, Any], details: Mapping[str, Any]) -> str | None:
    """The author's email (REST only, unique), else the name GitLab recorded, else the id.

    ``author_name`` is the display name, or for failed sign-ins the login typed in.
    """
    named = _detail(doc, details, "author_email") or _detail(doc, details, "author_name")
    if named is not None:
        return named
    author_id = first_str(doc, "author_id")
    return f"user_id:{author_id}" if author_id is not None else None


def _author_id(doc: Mapping[str, Any]) -> int | None:
    try:
        return int(str(doc.get("author_id")))
    except ValueError:
        return None


def _outcome(key: str, doc: Mapping[str, Any], details: Mapping[str, Any]) -> Outcome:
    # GitLab records what happened; failures are named as such (login_failed_with_*,
    # deploy_token_creation_failed, "Failed to login with STANDARD authentication"). A
    # specific event_type decides alone: "user_access_locked" may mention failed logins.
    if _detail(doc, details, "failed_login") is not None:
        return Outcome.FAILURE
    text = key.lower()
    return Outcome.FAILURE if any(word in text for word in _FAILURE_WORDS) else Outcome.SUCCESS


def _actor_type(doc: Mapping[str, Any], details: Mapping[str, Any], action: str) -> ActorType:
    author_class = _detail(doc, details, "author_class") or ""
    author_id = _author_id(doc)
    token_author = "runner_registration_token" in details
    if token_author or any(name in author_class for name in _SERVICE_CLASSES):
        return ActorType.SERVICE
    # Non-user authors have negative ids: -1 unauthenticated, -2 deploy token, -3 deploy key.
    if author_id is not None and author_id < _UNAUTHENTICATED_ID:
        return ActorType.SERVICE
    if action.endswith(_PROJECT_BOT_SUFFIX):
        return ActorType.SERVICE
    if author_id == _UNAUTHENTICATED_ID or _UNAUTHENTICATED_CLASS in author_class:
        return ActorType.UNKNOWN
    if author_class == "User" or (author_id is not None and author_id > 0):
        return ActorType.HUMAN
    return ActorType.UNKNOWN


def _entity_path(doc: Mapping[str, Any], details: Mapping[str, Any]) -> str | None:
    """The full path of the project or group; audit_json.log lines have no ``entity_path``,
    but there ``target_details`` is that path when the entity itself was acted on."""
    path = _detail(doc, details, "entity_path")
    if path is not None:
        return path
    entity_type = first_str(doc, "entity_type")
    if entity_type in _NAMESPACE_TYPES and _detail(doc, details, "target_type") == entity_type:
        return _detail(doc, details, "target_details")
    return None


def _target(doc: Mapping[str, Any], details: Mapping[str, Any], path: str | None) -> str | None:
    """``target_details``, except that a project or group acted on as a whole is named by
    its full path (``target_details`` is then often just its short name)."""
    target_type = _detail(doc, details, "target_type")
    if path and target_type in _NAMESPACE_TYPES and target_type == first_str(doc, "entity_type"):
        return path
    return _detail(doc, details, "target_details") or path


def _attributes(
    doc: Mapping[str, Any], details: Mapping[str, Any], entity_path: str | None
) -> dict[str, str]:
    entity_type = first_str(doc, "entity_type")
    message = details.get("custom_message", doc.get("custom_message"))
    git = message if isinstance(message, Mapping) else {}
    in_namespace = entity_path is not None and entity_type in _NAMESPACE_TYPES
    candidates = {
        "entity_type": entity_type,
        "entity_path": entity_path,
        "org": entity_path.split("/", 1)[0] if entity_path and in_namespace else None,
        "repo": entity_path if entity_type == "Project" else None,
        "author_id": first_str(doc, "author_id"),
        "author_class": _detail(doc, details, "author_class"),
        "target_type": _detail(doc, details, "target_type"),
        "access_level": _detail(doc, details, "as"),
        "from": _value(doc, details, "from"),
        "to": _value(doc, details, "to"),
        "protocol": first_str(git, "protocol"),
        "git_action": first_str(git, "action"),
    }
    return {key: value for key, value in candidates.items() if value is not None}


def _value(doc: Mapping[str, Any], details: Mapping[str, Any], key: str) -> str | None:
    """A ``from``/``to`` value as a short string (booleans as ``true``/``false``)."""
    value = doc.get(key, details.get(key))
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str_or_none(value)
    return text[:_MAX_VALUE_CHARS] if text is not None else None
