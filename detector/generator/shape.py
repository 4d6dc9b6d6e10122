"""The shape of a generated organisation beyond its size: role mix, homes, hours, bots.

The default shape is the one the bundled models and the tuned thresholds were
made on; it leaves every seed's output as it always was (byte for byte). Other
shapes are for measuring detection on organisations nobody tuned for
(``bench/detection.py``'s held-out set): where people live (and so their time
zones), when their working day starts, which share of them hold admin,
Kubernetes or AWS access, and which share of all identities are machines.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from detector.errors import ConfigError

__all__ = ["DEFAULT_SHAPE", "HOME_PLACES", "SHAPE_RANGES", "Shape"]

HOME_PLACES = (
    *("sf", "ny", "sao-paulo", "london", "berlin", "warsaw"),
    *("bengaluru", "singapore", "tokyo", "sydney"),
)
"""Places people may live in (``--homes``); attackers' and the CI's places are left out."""

SHAPE_RANGES: dict[str, tuple[int, int]] = {
    "admin_share": (0, 50),
    "k8s_share": (5, 100),
    "aws_share": (0, 100),
    "work_start": (0, 23),
    "bot_share": (0, 60),
}
"""Valid ranges, inclusive: shares in percent, ``work_start`` a local hour.

Admins stay at most half (an owner must have a non-owner to promote); some
people always hold Kubernetes access (the Kubernetes attacks need one); a
machine share above 60 % would drown the people the models are about.
"""


@dataclass(frozen=True, slots=True)
class Shape:
    """Role mix in percent of people, homes, local start of the working day, machine share.

    ``homes`` empty keeps the hand-picked cast's homes and then the seven usual
    places in turn; otherwise everyone, the cast included, lives in these in
    turn. ``bot_share`` is the share (percent) of all identities that are
    machines; 0 adds none to the organisation's usual few.

    >>> Shape(homes=("sf", "london", "singapore"), bot_share=30).describe()
    'homes sf,london,singapore; bots 30 %'
    """

    admin_share: int = 10
    k8s_share: int = 60
    aws_share: int = 40
    homes: tuple[str, ...] = ()
    work_start: int = 8
    bot_share: int = 0

    def __post_init__(self) -> None:
        for name, (low, high) in SHAPE_RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"must be from {low} to {high}", where=name.replace("_", "-"))
        unknown = [home for home in self.homes if home not in HOME_PLACES]
        if unknown:
            known = ", ".join(HOME_PLACES)
            raise ConfigError(f"unknown place {unknown[0]!r} (known: {known})", where="homes")

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_SHAPE

    def changes(self) -> dict[str, Any]:
        """The fields that differ from the default shape, for labels.json."""
        found: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value != getattr(DEFAULT_SHAPE, item.name):
                found[item.name] = list(value) if isinstance(value, tuple) else value
        return found

    def describe(self) -> str:
        """The changes in a few words, for tables; ``default`` when there are none."""
        words = {
            "admin_share": "admins {} %",
            "k8s_share": "k8s {} %",
            "aws_share": "aws {} %",
            "homes": "homes {}",
            "work_start": "day starts {}:00",
            "bot_share": "bots {} %",
        }
        parts = [
            words[name].format(",".join(value) if isinstance(value, list) else value)
            for name, value in self.changes().items()
        ]
        return "; ".join(parts) or "default"


DEFAULT_SHAPE = Shape()
