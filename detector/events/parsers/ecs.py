"""Elastic Common Schema documents: the fallback for any source shipped through Beats,
Elastic Agent, Vector or Logstash in ECS shape.

Shape: ``@timestamp``, ``event.action`` (free text, chosen by whoever wrote the
integration: ``user-login``, ``ConsoleLogin``, ``added-member-to-group``),
``event.outcome`` (``success``/``failure``/``unknown``), ``event.category``
and ``event.type`` (lists), ``event.id``, ``event.dataset``/``event.module``,
``user.*`` (the actor), ``user.target.*`` (a user acted on), ``source.*`` and
``client.*`` (address and geo), ``user_agent.original``. Shippers write
fields nested (``{"event": {"action": ...}}``), flattened with dotted keys
(``{"event.action": ...}``), or a mix of both; every lookup here accepts all
three.

The action is ``event.action`` verbatim; the taxonomy key is its lower-case
form, since integrations disagree on case and the taxonomy's globs are
case-sensitive. ECS has no field that says a user is a machine, so the actor
type is left to the taxonomy's automation globs except for names that are
unmistakably machines (Kubernetes service accounts, Windows computer accounts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detector.events.fields import parse_time, require, str_or_none, valid_ip
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register

__all__ = ["EcsParser", "ecs_get"]

_TIME_FIELDS = ("@timestamp", "event.created", "timestamp")
_ACTOR_FIELDS = ("user.name", "user.email", "user.id", "source.user.name", "client.user.name")
_TARGET_FIELDS = (
    "user.target.name", "user.target.email", "user.target.id", "orchestrator.resource.name",
    "file.path", "url.path", "url.original", "destination.domain", "destination.address",
    "destination.ip", "group.name",
)  # fmt: skip
_IP_FIELDS = ("source.ip", "client.ip", "source.address", "client.address")
_COUNTRY_FIELDS = (
    "source.geo.country_iso_code", "client.geo.country_iso_code",
    "source.geo.country_name", "client.geo.country_name",
)  # fmt: skip
_OUTCOMES = {"success": Outcome.SUCCESS, "failure": Outcome.FAILURE}
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_ATTRIBUTES = {
    "dataset": ("event.dataset", "event.module", "observer.vendor"),
    "category": ("event.category",),
    "type": ("event.type",),
    "provider": ("event.provider",),
    "account": ("cloud.account.id",),
    "region": ("cloud.region",),
    "namespace": ("orchestrator.namespace",),
    "org": ("organization.name", "organization.id"),
}


@register
class EcsParser(Parser):
    name = "ecs"
    time_field = "@timestamp"
    priority = 100
    triggers = frozenset({"@timestamp"})

    def matches(self, doc: Mapping[str, Any]) -> bool:
        return "@timestamp" in doc and isinstance(ecs_get(doc, "event.action"), str)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        time = parse_time(next((v for f in _TIME_FIELDS if (v := ecs_get(doc, f))), None))
        action = require(_first(doc, "event.action"), "action")
        actor = require(_first(doc, *_ACTOR_FIELDS), "actor")
        outcome = (_first(doc, "event.outcome") or "").lower()
        return parsed(
            time=time,
            action=action,
            actor=actor,
            outcome=_OUTCOMES.get(outcome, Outcome.UNKNOWN),
            actor_type=_actor_type(actor),
            ip=next((ip for f in _IP_FIELDS if (ip := valid_ip(ecs_get(doc, f)))), None),
            country=_first(doc, *_COUNTRY_FIELDS),
            user_agent=_first(doc, "user_agent.original"),
            target=_first(doc, *_TARGET_FIELDS),
            vendor_id=_first(doc, "event.id"),
            taxonomy_key=action.lower(),
            attributes={
                key: value for key, paths in _ATTRIBUTES.items() if (value := _first(doc, *paths))
            },
        )


def ecs_get(obj: Any, path: str) -> Any:
    """``path`` (``"source.geo.country_iso_code"``) in nested, dotted-key or mixed form; else None.

    >>> ecs_get({"source": {"geo.country_iso_code": "FR"}}, "source.geo.country_iso_code")
    'FR'
    """
    if not isinstance(obj, Mapping):
        return None
    if path in obj:
        return obj[path]
    parts = path.split(".")
    # Longest key first: {"user.target": {...}} before {"user": {"target": ...}}.
    for cut in range(len(parts) - 1, 0, -1):
        child = obj.get(".".join(parts[:cut]))
        if isinstance(child, Mapping):
            found = ecs_get(child, ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


def _first(doc: Mapping[str, Any], *paths: str) -> str | None:
    """The first path holding a value, as a string; lists (``event.category``) comma-joined."""
    for path in paths:
        value = ecs_get(doc, path)
        if isinstance(value, list):
            value = ",".join(text for item in value if (text := str_or_none(item)))
        text = str_or_none(value)
        if text is not None:
            return text
    return None


def _actor_type(actor: str) -> ActorType:
    # Windows writes computer accounts as NAME$; Kubernetes names its service accounts.
    if actor.startswith(_SERVICE_ACCOUNT_PREFIX) or actor.endswith("$"):
        return ActorType.SERVICE
    return ActorType.UNKNOWN
