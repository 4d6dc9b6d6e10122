"""GitHub audit log: audit-log streaming and the REST ``/audit-log`` API.

Shape: a flat object with a dotted ``action`` (``repo.create``,
``protected_branch.destroy``), ``actor``, time as ``@timestamp`` or
``created_at`` (epoch ms; Panther exports a ``"YYYY-MM-DD HH:MM:SS.fff"``
string and renames ``@timestamp`` to ``at_sign_timestamp``). GitHub records
actions that happened, so the outcome is success unless the action itself
names a failure (``user.failed_login``) or, for ``api.request``, the recorded
HTTP ``status_code`` is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.events.fields import (
    first_str,
    get,
    is_mapping,
    parse_time,
    require,
    str_or_none,
    valid_ip,
)
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, register

__all__ = ["GitHubAuditParser"]

_TIME_FIELDS = ("@timestamp", "at_sign_timestamp", "created_at", "timestamp", "p_event_time")
# Words of an action's operation that name a failed attempt: user.failed_login,
# user.two_factor_challenge_failure, protected_branch.rejected_ref_update.
_FAILURE_WORDS = frozenset({"failure", "failed", "rejected"})
_MEMBER_MARKERS = frozenset({"member", "members", "admin", "maintainer", "owner", "collaborator"})
# Access through an app's own token is a machine acting, whoever installed the app.
_SERVICE_ACCESS = ("GitHub App server-to-server token",)
_ATTRIBUTES = (
    "org",
    "repo",
    "business",
    "team",
    "user",
    "programmatic_access_type",
    "operation_type",
)


@register
class GitHubAuditParser(Parser):
    name = "github_audit"
    time_field = "created_at"
    priority = 30
    triggers = frozenset({"action"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        action = doc.get("action")
        if not isinstance(action, str) or "sender" in doc:
            # Webhook payloads also carry "action", but undotted ("opened") and with a "sender".
            return False
        actor = doc.get("actor")
        # Slack's audit log also has dotted actions, but its actor is an object.
        return not is_mapping(actor) and ("." in action or isinstance(actor, str))

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        action = require(first_str(doc, "action"), "action")
        actor = require(first_str(doc, "actor", "actor_name"), "actor")
        return Parsed(
            time=parse_time(next((v for f in _TIME_FIELDS if (v := get(doc, f))), None)),
            action=action,
            actor=actor,
            outcome=_outcome(doc, action),
            actor_type=_actor_type(doc),
            ip=valid_ip(get(doc, "actor_ip")),
            country=first_str(doc, "actor_location.country_code", "actor_location.country_name"),
            user_agent=first_str(doc, "user_agent"),
            target=_target(doc, action),
            vendor_id=first_str(doc, "_document_id", "document_id"),
            attributes={k: v for k in _ATTRIBUTES if (v := first_str(doc, k)) is not None},
        )


def _outcome(doc: Mapping[str, Any], action: str) -> Outcome:
    # api.request events carry the HTTP status of the request they record.
    status = str_or_none(get(doc, "status_code"))
    if status is not None and status.isdigit():
        return Outcome.FAILURE if int(status) >= 400 else Outcome.SUCCESS
    words = set(action.rpartition(".")[2].split("_"))
    return Outcome.FAILURE if words & _FAILURE_WORDS else Outcome.SUCCESS


def _target(doc: Mapping[str, Any], action: str) -> str | None:
    # Membership and admin changes act on a person, even when a repo is named too.
    if _MEMBER_MARKERS.intersection(action.rpartition(".")[2].split("_")):
        person = first_str(doc, "user", "invitee", "team")
        if person is not None:
            return person
    return first_str(doc, "repo", "repository", "user", "team", "name", "org", "business")


def _actor_type(doc: Mapping[str, Any]) -> ActorType:
    if get(doc, "actor_is_bot") is True or get(doc, "programmatic_access_type") in _SERVICE_ACCESS:
        return ActorType.SERVICE
    return ActorType.HUMAN if first_str(doc, "actor") else ActorType.UNKNOWN
