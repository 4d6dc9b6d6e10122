"""When each attack happens: one slot each from the world's first attack day, new-country last.

Attacks fall on day ``World.attacks_from`` (counted from 0; two by default, so
after day two) or later, up to two hours before the end: the days before are
clean history, for example the learning period of models trained as events
come in.

Every attack is over within 30 minutes and each gets a slot of its own, at a
random time inside it at least :data:`SLOT_MARGIN` before the slot ends, so
the next one starts at least 15 minutes later. The new-country login comes
last so that it falls as late as possible after its actor's first events (the
learning period). Rule-shaped attacks are built first: the behavioural ones
then cast people who took no part in a rule-shaped attack nearby, so that no
rule sees their events together.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from detector.generator import behavioural as _behavioural  # noqa: F401  (registers them)
from detector.generator.attacks import ATTACK, ATTACKS, NEW_COUNTRY, RULE
from detector.generator.org import Org
from detector.generator.world import START, World

__all__ = ["SLOT_MARGIN", "inject"]

SLOT_MARGIN = timedelta(minutes=45)


def inject(w: World, org: Org) -> None:
    """Every registered attack, shuffled, in distinct slots from ``w.attacks_from`` on."""
    order = [sid for sid in ATTACKS if sid != NEW_COUNTRY]
    w.rng.shuffle(order)
    order.append(NEW_COUNTRY)
    first = START + timedelta(days=w.attacks_from, hours=1)
    last = w.end - timedelta(hours=2)
    slot = (last - first) / len(order)
    moments: dict[str, datetime] = {}
    for index, sid in enumerate(order):
        moments[sid] = first + slot * index + (slot - SLOT_MARGIN) * w.rng.random()
    rule_shaped = [sid for sid in order if ATTACKS[sid].kind == RULE]
    for sid in [*rule_shaped, *(sid for sid in order if sid not in rule_shaped)]:
        spec = ATTACKS[sid]
        with w.scenario(sid, ATTACK, spec.about, ()) as scenario:
            actors, keys = spec.build(w, org, moments[sid])
        scenario.actors, scenario.keys, scenario.kind = tuple(actors), tuple(keys), spec.kind
