"""The normalized Event and the dead letter: the contracts every later layer reads.

An :class:`Event` is one vendor audit record reduced to the fields of docs/architecture.md;
a :class:`DeadLetter` is a record that could not become one, with a reason code
from the small fixed set in :class:`DeadLetterReason`. Both are frozen
dataclasses with slots (cheap per event) and serialize with ``orjson`` as is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from detector.errors import CiwatchError
from detector.frozen import quick_builder, quick_init
from detector.sources.record import Position

__all__ = [
    "ActorType",
    "Category",
    "DeadLetter",
    "DeadLetterReason",
    "Event",
    "Outcome",
    "ParseError",
    "Position",
    "SkipReason",
    "Skipped",
    "isoformat",
    "new_event",
]


def isoformat(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z``: how every timestamp ciwatch writes looks."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Category(StrEnum):
    """What kind of activity an action is; set by the taxonomy, never by parsers."""

    AUTHENTICATION = "authentication"
    PRIVILEGE_CHANGE = "privilege_change"
    INFRASTRUCTURE_CHANGE = "infrastructure_change"
    SECRET_ACCESS = "secret_access"
    CODE_ACCESS = "code_access"
    PIPELINE = "pipeline"
    CONFIG_CHANGE = "config_change"
    OTHER = "other"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


class ActorType(StrEnum):
    HUMAN = "human"
    SERVICE = "service"
    UNKNOWN = "unknown"


class DeadLetterReason(StrEnum):
    """Why a record did not become an Event. A small fixed set: safe as a metric label."""

    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    TOO_DEEP = "too_deep"
    UNKNOWN_FORMAT = "unknown_format"
    MISSING_TIME = "missing_time"
    INVALID_TIME = "invalid_time"
    MISSING_ACTOR = "missing_actor"
    PARSER_ERROR = "parser_error"
    JSON_FRAGMENT = "json_fragment"
    """A piece of a JSON document (one line of pretty-printed JSON sent as a record)."""
    BAD_ENVELOPE = "bad_envelope"
    """A shipper's envelope whose payload cannot be opened (bad base64, gzip or JSON)."""
    FUTURE_TIME = "future_time"
    """Event time further ahead of the daemon's wall clock than ``normalizer.max_future_skew``."""


class SkipReason(StrEnum):
    """Known non-events, counted and dropped on purpose (never dead letters)."""

    CLOUDTRAIL_DIGEST = "cloudtrail_digest"
    HEARTBEAT = "heartbeat"
    EMPTY_BATCH = "empty_batch"


class ParseError(CiwatchError):
    """Raised by a parser for a record it recognises but cannot normalize."""

    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@quick_init
@dataclass(frozen=True, slots=True)
class Event:
    """One normalized audit event (the contract in docs/architecture.md).

    ``time`` is UTC and comes from the event itself; ``action`` is the vendor's
    action verbatim; ``attributes`` holds a few normalized extras a parser knows
    (``repo``, ``org``, ``namespace``, ``resource``, ``account`` ...) and ``raw``
    the vendor object, for rules on vendor fields. ``raw`` is not serialized by
    :meth:`to_dict` unless asked for.
    """

    time: datetime
    source: str
    action: str
    category: Category
    outcome: Outcome
    actor: str
    actor_type: ActorType
    id: str
    position: Position | None = None
    ip: str | None = None
    country: str | None = None
    user_agent: str | None = None
    target: str | None = None
    privileged: bool = False
    attributes: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self, *, with_raw: bool = False) -> dict[str, Any]:
        """The event as plain JSON-ready data, ``time`` in ISO 8601 with ``Z``."""
        out: dict[str, Any] = {
            "time": isoformat(self.time),
            "source": self.source,
            "action": self.action,
            "category": self.category.value,
            "outcome": self.outcome.value,
            "actor": self.actor,
            "actor_type": self.actor_type.value,
            "ip": self.ip,
            "country": self.country,
            "user_agent": self.user_agent,
            "target": self.target,
            "privileged": self.privileged,
            "id": self.id,
            "position": str(self.position) if self.position else None,
            "attributes": dict(self.attributes),
        }
        if with_raw:  # a document kept as its text (RawDocument) is decoded
            out["raw"] = self.raw if type(self.raw) is dict else dict(self.raw)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, position: Position | None = None) -> Event:
        """The event :meth:`to_dict` described (``with_raw=True`` keeps ``raw``).

        ``position`` is given apart: the string form in ``data`` does not parse back.
        """
        return cls(
            time=datetime.fromisoformat(data["time"]).astimezone(UTC),
            source=data["source"],
            action=data["action"],
            category=Category(data["category"]),
            outcome=Outcome(data["outcome"]),
            actor=data["actor"],
            actor_type=ActorType(data["actor_type"]),
            id=data["id"],
            position=position,
            ip=data["ip"],
            country=data["country"],
            user_agent=data["user_agent"],
            target=data["target"],
            privileged=data["privileged"],
            attributes=data["attributes"],
            raw=data.get("raw", {}),
        )


new_event = quick_builder(Event)
"""``Event(*fields)``, every field given positionally in field order: about half the time of
the class's own call (:func:`~detector.frozen.quick_builder`), for code that builds an event
per record (the normalizer, the internal topics' reader)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that did not become an Event, with why and where.

    ``excerpt`` is the start of the record (at most a few hundred characters) so
    an operator can see what arrived without the dead-letter store holding
    megabytes per entry.
    """

    reason: DeadLetterReason
    detail: str
    position: Position | None
    excerpt: str
    format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "position": str(self.position) if self.position else None,
            "format": self.format,
            "excerpt": self.excerpt,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that is known not to be an event (a CloudTrail digest, a heartbeat).

    Counted by reason, never dead-lettered: it is not an error.
    """

    reason: SkipReason
    position: Position | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "skipped": self.reason.value,
            "position": str(self.position) if self.position else None,
        }
