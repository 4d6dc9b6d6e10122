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

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

from detector.events.fields import is_mapping, parse_time, require, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register
from detector.events.readers import field_reader, text_reader, texts_reader, value_reader

__all__ = ["GitHubAuditParser"]

_TIME = value_reader("@timestamp", "at_sign_timestamp", "created_at", "timestamp", "p_event_time")
# Words of an action's operation that name a failed attempt: user.failed_login,
# user.two_factor_challenge_failure, protected_branch.rejected_ref_update.
_FAILURE_WORDS = frozenset({"failure", "failed", "rejected"})
_MEMBER_MARKERS = frozenset({"member", "members", "admin", "maintainer", "owner", "collaborator"})
# Access through an app's own token is a machine acting, whoever installed the app.
_SERVICE_ACCESS = ("GitHub App server-to-server token",)
_ATTRIBUTES = texts_reader(
    {
        name: name
        for name in (
            "org",
            "repo",
            "business",
            "team",
            "user",
            "programmatic_access_type",
            "operation_type",
        )
    }
)
# The fields read from every record, their paths resolved once (readers.text_reader).
_ACTION = text_reader("action")
_ACTOR = text_reader("actor")
_ACTOR_OR_NAME = text_reader("actor", "actor_name")
_COUNTRY = text_reader("actor_location.country_code", "actor_location.country_name")
_USER_AGENT = text_reader("user_agent")
_DOCUMENT_ID = text_reader("_document_id", "document_id")
_PERSON = text_reader("user", "invitee", "team")
_TARGET = text_reader("repo", "repository", "user", "team", "name", "org", "business")
_STATUS_CODE = text_reader("status_code")
_ACTOR_IP = field_reader("actor_ip")
_ACTOR_IS_BOT = field_reader("actor_is_bot")
_ACCESS_TYPE = field_reader("programmatic_access_type")


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
        action = require(_ACTION(doc), "action")
        actor = require(_ACTOR_OR_NAME(doc), "actor")
        operation = _operation(action)
        return parsed(
            time=parse_time(_TIME(doc)),
            action=action,
            actor=actor,
            outcome=_outcome(doc, operation),
            actor_type=_actor_type(doc),
            ip=valid_ip(_ACTOR_IP(doc)),
            country=_COUNTRY(doc),
            user_agent=_USER_AGENT(doc),
            target=_target(doc, operation),
            vendor_id=_DOCUMENT_ID(doc),
            attributes=_ATTRIBUTES(doc),
        )


def _outcome(doc: Mapping[str, Any], operation: _Operation) -> Outcome:
    # api.request events carry the HTTP status of the request they record.
    status = _STATUS_CODE(doc)
    if status is not None and status.isdigit():
        return Outcome.FAILURE if int(status) >= 400 else Outcome.SUCCESS
    return Outcome.FAILURE if operation.failed else Outcome.SUCCESS


class _Operation(NamedTuple):
    """What the words of an action's operation (``failed_login``) say."""

    failed: bool
    on_member: bool


def _operation(action: str) -> _Operation:
    # A stream repeats a few hundred actions: their words are split once each. Only
    # action-sized strings are remembered, so a hostile one costs no memory.
    if len(action) <= _MAX_REMEMBERED:
        return _remembered_operation(action)
    return _operation_of(action)


def _operation_of(action: str) -> _Operation:
    words = frozenset(action.rpartition(".")[2].split("_"))
    return _Operation(bool(words & _FAILURE_WORDS), bool(words & _MEMBER_MARKERS))


_MAX_REMEMBERED = 200
_remembered_operation = functools.lru_cache(maxsize=4096)(_operation_of)


def _target(doc: Mapping[str, Any], operation: _Operation) -> str | None:
    # Membership and admin changes act on a person, even when a repo is named too.
    if operation.on_member:
        person = _PERSON(doc)
        if person is not None:
            return person
    return _TARGET(doc)


def _actor_type(doc: Mapping[str, Any]) -> ActorType:
    if _ACTOR_IS_BOT(doc) is True or _ACCESS_TYPE(doc) in _SERVICE_ACCESS:
        return ActorType.SERVICE
    return ActorType.HUMAN if _ACTOR(doc) else ActorType.UNKNOWN
