"""Okta System Log: the ``/api/v1/logs`` LogEvent object.

Shape: ``eventType`` (dotted, ``user.session.start``), ``published`` (ISO
8601), ``uuid``, an ``actor`` object (``alternateId`` is the login for users,
the client id for apps; ``type`` is ``User``, ``SystemPrincipal``,
``PublicClientApp``...), ``client`` (``ipAddress``, ``userAgent.rawUserAgent``,
``geographicalContext.country``), ``outcome`` (``result`` is one of SUCCESS,
FAILURE, DENY, ALLOW, CHALLENGE, SKIPPED, UNKNOWN; ``reason`` is free text),
``target`` (a list of typed objects), ``authenticationContext``,
``securityContext`` and ``debugContext``.

Flavours: Panther lower-cases the top-level keys (``eventtype``,
``debugcontext``) and adds ``p_event_time``; Okta's log streaming to Amazon
EventBridge wraps the LogEvent in ``detail`` with ``source``
``aws.partner/okta.com/...``. Okta puts ``"unknown"`` into actor fields it could
not resolve, so that placeholder is skipped when choosing the actor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from detector.events.fields import (
    get,
    is_mapping,
    parse_time,
    require,
    str_or_none,
    valid_ip,
)
from detector.events.model import ActorType, Outcome
from detector.events.parsers.base import Parsed, Parser, parsed, register
from detector.events.readers import text_reader, value_reader

__all__ = ["OktaSystemLogParser"]

_TIME = value_reader("published", "p_event_time")
# Keys only a LogEvent has at the top level; CloudTrail also has "eventType" ("AwsApiCall").
_SHAPE_FIELDS = ("published", "legacyEventType", "displayMessage", "authenticationContext")
_EVENTBRIDGE_SOURCE = "aws.partner/okta.com"
_PANTHER_LOG_TYPE = "Okta.SystemLog"
_PLACEHOLDER = "unknown"
_PLACEHOLDER_LENGTH = len(_PLACEHOLDER)
"""Only a text this long can be the placeholder: lower() never shortens a text, and the one
character it lengthens (U+0130) becomes an "i", which the placeholder does not have. Asking the
length first spares a lower-cased copy of almost every value (six or more per record)."""
_OUTCOMES = {
    "SUCCESS": Outcome.SUCCESS,
    "ALLOW": Outcome.SUCCESS,
    "FAILURE": Outcome.FAILURE,
    "DENY": Outcome.FAILURE,
}
# CHALLENGE (e.g. MFA prompted), SKIPPED and UNKNOWN are neither a success nor a failure.
_HUMAN_TYPES = frozenset({"user"})
# Anything that is not a person: Okta itself, OAuth clients, app integrations, API tokens.
_SERVICE_TYPES = frozenset(
    {
        "systemprincipal",
        "publicclientapp",
        "privateclientapp",
        "client",
        "appinstance",
        "app",
        "apitoken",
        "serviceaccount",
    }
)
_DETAIL_TARGET_TYPES = frozenset({"AuthenticatorEnrollment", "Authenticator"})
_FACTOR_MODE = text_reader("detailEntry.policyRuleFactorMode")
_POSITIVE = "POSITIVE"
# Where debugData keeps behaviours, in both spellings fields.get accepts.
_BEHAVIOR_KEYS = frozenset({"behaviors", "logOnlySecurityData", "logonlysecuritydata"})
# The fields read from every record, their paths resolved once (readers.text_reader). The
# objects several fields come from (actor, client, outcome...) are looked up once, and their
# fields read from them: first_str(event, "actor.id") is first_str(get(event, "actor"), "id").
_NAMES = tuple(text_reader(p) for p in ("alternateId", "displayName", "id"))
_EVENT_TYPE = text_reader("eventType")
_RESULT = text_reader("result")
_REASON = text_reader("reason")
_COUNTRY = text_reader("geographicalContext.country")
_USER_AGENT = text_reader("userAgent.rawUserAgent")
_UUID = text_reader("uuid")
_TYPE = text_reader("type")
_SESSION = text_reader("authenticationContext.externalSessionId")
_AS_ORG = text_reader("asOrg")
_THREAT_SUSPECTED = text_reader("threatSuspected")
_REQUEST_URI = text_reader("requestUri")


@register
class OktaSystemLogParser(Parser):
    name = "okta_system_log"
    time_field = "published"
    priority = 20
    triggers = frozenset({"p_log_type", "detail", "eventType", "eventtype"})
    # Not read: the request's IP chain, the transaction, the display message, most of client.
    reads = (
        "detail", "source", "published", "p_event_time", "eventType", "uuid", "target",
        "actor.alternateId", "actor.displayName", "actor.id", "actor.type",
        "client.ipAddress", "client.geographicalContext.country", "client.userAgent.rawUserAgent",
        "outcome.result", "outcome.reason", "authenticationContext.externalSessionId",
        "securityContext.asOrg", "securityContext.isProxy", "debugContext.debugData",
    )  # fmt: skip

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if doc.get("p_log_type") == _PANTHER_LOG_TYPE:
            # Panther's type tag is enough: its enrichment-only test fragments then dead-letter
            # as missing_time instead of unknown_format.
            return True
        event = _log_event(doc)
        if not isinstance(get(event, "eventType"), str):
            return False
        actor = get(event, "actor")
        if is_mapping(actor) and "alternateId" in actor:
            return True
        return any(get(event, field) is not None for field in _SHAPE_FIELDS)

    def parse(self, doc: Mapping[str, Any]) -> Parsed:
        event = _log_event(doc)
        time = parse_time(_TIME(event))
        action = require(_EVENT_TYPE(event), "action")
        targets = get(event, "target")
        target, target_name = _target(targets)
        actor, client, outcome = get(event, "actor"), get(event, "client"), get(event, "outcome")
        result = _RESULT(outcome)
        return parsed(
            time=time,
            action=action,
            actor=require(_name(actor), "actor"),
            outcome=_OUTCOMES.get((result or "").upper(), Outcome.UNKNOWN),
            actor_type=_actor_type(actor),
            ip=valid_ip(get(client, "ipAddress")),
            country=_COUNTRY(client),
            user_agent=_USER_AGENT(client),
            target=target_name,
            vendor_id=_UUID(event),
            attributes=_attributes(event, result, outcome, target, targets),
        )


def _log_event(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """The LogEvent itself, out of an EventBridge envelope if it came in one."""
    detail = doc.get("detail")
    if is_mapping(detail) and str(doc.get("source", "")).startswith(_EVENTBRIDGE_SOURCE):
        return detail
    return doc


def _name(obj: Any) -> str | None:
    """An actor's or a target's name: login, display name or id, not Okta's placeholder."""
    for read in _NAMES:
        text = read(obj)
        if text is not None and (len(text) != _PLACEHOLDER_LENGTH or text.lower() != _PLACEHOLDER):
            return text
    return None


def _actor_type(actor: Any) -> ActorType:
    kind = (_TYPE(actor) or "").replace(" ", "").lower()
    if kind in _SERVICE_TYPES:
        return ActorType.SERVICE
    return ActorType.HUMAN if kind in _HUMAN_TYPES else ActorType.UNKNOWN


def _target(targets: Any) -> tuple[Mapping[str, Any] | None, str | None]:
    """The first named target (of the event's ``target``): the user, app, group or policy
    acted on, and its name (found once: it takes up to three reads and a placeholder test).

    Sign-in events also list the authenticator used as a target; that says how,
    not what, so it is only taken when nothing else is named.
    """
    if not isinstance(targets, list):
        return None, None
    named = [(t, name) for t in targets if is_mapping(t) and (name := _name(t)) is not None]
    for item, name in named:
        if _TYPE(item) not in _DETAIL_TARGET_TYPES:
            return item, name
    return named[0] if named else (None, None)


def _attributes(
    event: Mapping[str, Any],
    result: str | None,
    outcome: Any,
    target: Mapping[str, Any] | None,
    targets: Any,
) -> dict[str, str]:
    security, debug = get(event, "securityContext"), get(get(event, "debugContext"), "debugData")
    candidates = (
        ("result", result),
        ("reason", _REASON(outcome)),
        ("session", _SESSION(event)),
        ("as_org", _AS_ORG(security)),
        ("threat_suspected", _THREAT_SUSPECTED(debug)),
        ("request_uri", _REQUEST_URI(debug)),
    )
    out = {
        key: value
        for key, value in candidates
        if value and (len(value) != _PLACEHOLDER_LENGTH or value.lower() != _PLACEHOLDER)
    }
    if target is not None and (kind := _TYPE(target)):
        out["target_type"] = kind
    proxy = _flag(get(security, "isProxy"))
    if proxy is not None:
        out["is_proxy"] = proxy
    if (mode := _factor_mode(targets)) is not None:
        out["factor_mode"] = mode
    if behaviors := _positive_behaviors(debug):
        out["behaviors"] = ",".join(behaviors)
    return out


def _factor_mode(targets: Any) -> str | None:
    """``1FA`` or ``2FA``: what the matched sign-on policy rule asked for.

    Identity Engine's ``policy.evaluate_sign_on`` names the policy rule that decided among
    its targets, with ``detailEntry.policyRuleFactorMode``; no other field says whether
    a second factor was required for the sign-in.
    """
    if not isinstance(targets, list):
        return None
    for item in targets:
        if is_mapping(item) and (mode := _FACTOR_MODE(item)):
            return mode.upper()
    return None


def _positive_behaviors(debug_data: Any) -> list[str]:
    """The names of Okta's sign-in behaviours that came out POSITIVE (``New Device``, ``New IP``).

    Okta writes them in several shapes: ``behaviors`` as ``"{New IP=POSITIVE, ...}"`` text or
    a list of ``Name=VERDICT`` items, and ``logOnlySecurityData.behaviors`` as a mapping of
    name to verdict, sometimes inside a JSON string. Rules only need which were POSITIVE.
    """
    if not is_mapping(debug_data) or _BEHAVIOR_KEYS.isdisjoint(debug_data):
        return []  # no behaviours recorded: most event types
    found: list[str] = []
    for name, verdict in _behavior_pairs(get(debug_data, "behaviors")):
        if verdict == _POSITIVE and name not in found:
            found.append(name)
    security_data = get(debug_data, "logOnlySecurityData")
    if isinstance(security_data, str):
        try:
            security_data = json.loads(security_data)
        except ValueError:
            security_data = None
    for name, verdict in _behavior_pairs(get(security_data, "behaviors")):
        if verdict == _POSITIVE and name not in found:
            found.append(name)
    return sorted(found)


def _behavior_pairs(value: Any) -> list[tuple[str, str]]:
    """``(name, VERDICT)`` pairs out of any of the shapes Okta uses for behaviours."""
    if is_mapping(value):
        # Either {"New IP": "POSITIVE"} or, as some exports have it, {"New IP=POSITIVE": null}.
        items = [k if v is None else f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, list):
        items = [item for item in value if isinstance(item, str)]
    elif isinstance(value, str):
        items = value.strip("{}[] ").split(",")
    else:
        return []
    pairs = []
    for item in items:
        name, sep, verdict = str(item).partition("=")
        if sep:
            pairs.append((name.strip(), verdict.strip().upper()))
    return pairs


def _flag(value: Any) -> str | None:
    """A boolean field as ``"true"``/``"false"`` (attributes are strings only)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str_or_none(value)
