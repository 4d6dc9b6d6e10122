"""The model families: which events each anomaly model scores, and which features it reads.

Declared here, in one place, so the scorer, training, the batch frame builder
and the docs agree. A :class:`Family` scores only the events it
:meth:`~Family.applies` to and reads only its :attr:`~Family.features` (names
of :data:`~detector.features.schema.FEATURE_NAMES`, default windows). An event
may belong to several families (a GitHub sign-in is ``auth`` and ``code``) or
to none.

- ``auth``: sign-ins from any source (category ``authentication``).
- ``code``: GitHub and GitLab audit events.
- ``infra``: Kubernetes audit and CloudTrail events.
- ``service``: every event of a service identity (bot, service account, CI
  role). Machines are scored apart from people: their routine is far
  narrower (same addresses, same agent, round the clock), so a population of
  people would hide their deviations and they would dominate it.

The first three score people (and unknown actors) only.

Changing a family's events or features bumps :data:`FAMILY_SCHEMA_VERSION`;
:func:`schema_hash` ties a trained model to both schema versions and the exact
feature list.

>>> [family.name for family in FAMILIES.values()]
['auth', 'code', 'infra', 'service']
>>> len(schema_hash(FAMILIES["auth"].features))
64
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from detector.events.model import ActorType, Category, Event
from detector.features.schema import FEATURE_NAMES, FEATURE_SCHEMA_VERSION

__all__ = [
    "FAMILIES",
    "FAMILY_SCHEMA_VERSION",
    "Family",
    "families_for",
    "members",
    "schema_hash",
]

FAMILY_SCHEMA_VERSION = "2"

CODE_SOURCES = frozenset({"github_audit", "gitlab_audit"})
INFRA_SOURCES = frozenset({"k8s_audit", "cloudtrail"})


@dataclass(frozen=True, slots=True)
class Family:
    """One anomaly model's scope: a name, the features it reads, the events it scores.

    ``features`` are feature names in vector order (a subset of
    :data:`FEATURE_NAMES`); ``applies(event)`` says whether the family scores
    the event, from its kind alone (:data:`KIND`: source, category, actor type),
    so that :func:`members` asks once per kind; ``about`` is a line for docs and
    model cards.
    """

    name: str
    features: tuple[str, ...]
    applies: Callable[[Event], bool]
    about: str

    def missing(self, names: Iterable[str]) -> tuple[str, ...]:
        """The family's features not among ``names`` (e.g. a store with other windows)."""
        present = set(names)
        return tuple(name for name in self.features if name not in present)


def schema_hash(names: Iterable[str]) -> str:
    """SHA-256 (hex) of the feature and family schema versions and ``names`` in order.

    A model records it at training; loading compares it with the hash of the
    running code's feature list, so a model never reads columns it was not
    trained on.
    """
    text = "\n".join((f"features={FEATURE_SCHEMA_VERSION}", f"families={FAMILY_SCHEMA_VERSION}"))
    text += "\n" + "\n".join(names)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


KIND = attrgetter("source", "category", "actor_type")
"""What a family's ``applies`` reads of an event: events of one kind belong to the same families."""


def members(families: Sequence[Family], events: Sequence[Event]) -> list[list[int]]:
    """For each of ``families``, the positions of the ``events`` it applies to, in order;
    each family asked once per kind of event (:data:`KIND`) rather than once per event."""
    if not events:
        return [[] for _ in families]
    kinds = list(map(KIND, events))
    number = {kind: position for position, kind in enumerate(dict.fromkeys(kinds))}
    codes = np.fromiter(map(number.__getitem__, kinds), np.intp, count=len(kinds))
    firsts = [events[kinds.index(kind)] for kind in number]  # an event of each kind
    return [
        np.flatnonzero(np.array(list(map(family.applies, firsts)), bool)[codes]).tolist()
        for family in families
    ]


def families_for(event: Event) -> tuple[Family, ...]:
    """The families that score ``event`` (possibly none), in :data:`FAMILIES` order."""
    return tuple(family for family in FAMILIES.values() if family.applies(event))


def _in_order(*names: str) -> tuple[str, ...]:
    """``names`` in vector order; an unknown name is a programming error, caught at import."""
    unknown = [name for name in names if name not in FEATURE_NAMES]
    if unknown:
        raise ValueError(f"family features not in FEATURE_NAMES: {', '.join(unknown)}")
    wanted = set(names)
    return tuple(name for name in FEATURE_NAMES if name in wanted)


def _windowed(channels: Iterable[str], windows: Iterable[str] = ("5m", "1h", "24h")) -> list[str]:
    return [f"{channel}.{window}" for channel in channels for window in windows]


def _is_person(event: Event) -> bool:
    return event.actor_type is not ActorType.SERVICE


def _is_auth(event: Event) -> bool:
    return event.category is Category.AUTHENTICATION and _is_person(event)


def _is_code(event: Event) -> bool:
    return event.source in CODE_SOURCES and _is_person(event)


def _is_infra(event: Event) -> bool:
    return event.source in INFRA_SOURCES and _is_person(event)


def _is_service(event: Event) -> bool:
    return event.actor_type is ActorType.SERVICE


_ROUTINE = ("actor.hour_of_week_rarity", "actor.active_hours_of_week")

_AUTH = Family(
    name="auth",
    features=_in_order(
        # Failures are counted once per window (not again per IP and as ratios), so that
        # a run of password typos does not outweigh every other kind of oddity.
        *_windowed(
            (
                "actor.failures",
                "actor.distinct_ips",
                "actor.distinct_countries",
                "actor.distinct_user_agents",
                "actor.novel",
            )
        ),
        "actor.events.1h",
        "ip.distinct_actors.1h",
        "actor.failure_ratio.1h",
        "actor.events_vs_baseline.1h",
        *_ROUTINE,
        "actor.new.ip",
        "actor.new.country",
        "actor.new.user_agent",
        "event.failure",
    ),
    applies=_is_auth,
    about="sign-ins from any source: failures, spread of IPs, countries and user agents, "
    "new values, unusual hours",
)

_CODE = Family(
    name="code",
    features=_in_order(
        *_windowed(
            (
                "actor.events",
                "actor.distinct_repos",
                "actor.code_access",
                "actor.privileged",
                "actor.config_change",
                "actor.secret_access",
                "actor.pipeline",
                "actor.novel",
            )
        ),
        "actor.events_vs_baseline.1h",
        "actor.events_vs_baseline.24h",
        *_ROUTINE,
        "actor.new.repo",
        "actor.new.ip",
        "event.privileged",
        "event.mutating",
    ),
    applies=_is_code,
    about="GitHub and GitLab: repositories read and downloaded, privileged and settings "
    "changes, secrets, runners and workflows, unusual hours",
)

_INFRA = Family(
    name="infra",
    features=_in_order(
        *_windowed(
            (
                "actor.events",
                "actor.infrastructure_change",
                "actor.privilege_change",
                "actor.secret_access",
                "actor.production",
                "actor.distinct_namespaces",
                "actor.distinct_targets",
                "actor.novel",
            )
        ),
        "actor.events_vs_baseline.1h",
        "actor.events_vs_baseline.24h",
        *_ROUTINE,
        "actor.new.namespace",
        "actor.new.ip",
        "event.mutating",
        "event.production",
    ),
    applies=_is_infra,
    about="Kubernetes and CloudTrail: changes to infrastructure and permissions, secrets, "
    "production namespaces, spread of namespaces and targets, unusual hours",
)

_SERVICE = Family(
    name="service",
    features=_in_order(
        *_windowed(("actor.distinct_user_agents",)),
        "actor.events_vs_baseline.1h",
        *_ROUTINE,
        "actor.new.user_agent",
        "actor.new.repo",
        "actor.new.namespace",
        "event.failure",
        "event.mutating",
    ),
    applies=_is_service,
    about="bots, service accounts and CI roles, from every source: new user agents, "
    "repositories and namespaces, reach and volume beyond their routine (not addresses: "
    "CI runners rotate them)",
)

FAMILIES: Mapping[str, Family] = {
    family.name: family for family in (_AUTH, _CODE, _INFRA, _SERVICE)
}
"""Family name → :class:`Family`; the registry the scorer and training look names up in."""
