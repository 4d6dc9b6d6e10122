"""The held-out organisations ``bench/detection.py`` measures detection on.

Nothing in ciwatch was tuned on these: not the rules' thresholds, not the
model features, not the bundled models (trained on seed 101, 21 days, 60
people, the default shape), not the tests' expectations. Their seeds are all
1000 or more, and their shapes (size, role mix, homes and time zones, working
hours, share of machines) differ from the default one the generator's tests and
the demo use. Keep it that way: a change tuned until these figures look good
measures nothing any more. Develop on seeds below 1000 (``bench/replay_quality.py
--seed N``, ``ciwatch generate --seed N`` with any shape); come here to measure,
and report the figures as printed.

Each organisation has two seeds: ``seed`` for the world with attacks, and
``history_seed`` for a clean history of the same shape (no attacks, the same
people and days) that the ``trained`` models learn from, as a team would train
on its own organisation's past before turning the models on.
"""

from __future__ import annotations

from dataclasses import dataclass

from detector.generator import Shape

__all__ = ["HELD_OUT", "HeldOut", "select"]


@dataclass(frozen=True, slots=True)
class HeldOut:
    """One held-out organisation: its name, the seeds, its size and shape."""

    name: str
    about: str
    seed: int
    history_seed: int
    people: int
    days: int
    shape: Shape
    quick: bool = False

    def generate_options(self) -> list[str]:
        """The ``ciwatch generate`` options that give this organisation (without seed, out)."""
        options = ["--people", str(self.people), "--days", str(self.days)]
        for name, value in self.shape.changes().items():
            text = ",".join(value) if isinstance(value, list) else str(value)
            options += [f"--{name.replace('_', '-')}", text]
        return options


HELD_OUT = (
    HeldOut(
        "startup-night-owls",
        "a 25-person startup in Berlin working 16:00 to after midnight; everyone on k8s",
        seed=1002,
        history_seed=1502,
        people=25,
        days=10,
        shape=Shape(admin_share=20, k8s_share=100, aws_share=80, homes=("berlin",), work_start=16),
        quick=True,
    ),
    HeldOut(
        "platform-team",
        "60 people in New York and Sao Paulo, most with k8s and AWS access, 20 % machines",
        seed=1004,
        history_seed=1504,
        people=60,
        days=10,
        shape=Shape(
            admin_share=25,
            k8s_share=90,
            aws_share=80,
            homes=("ny", "sao-paulo"),
            work_start=7,
            bot_share=20,
        ),
        quick=True,
    ),
    HeldOut(
        "apac-office",
        "120 people in Sydney, Tokyo and Bengaluru, 10 % machines",
        seed=1005,
        history_seed=1505,
        people=120,
        days=10,
        shape=Shape(
            k8s_share=50, aws_share=30, homes=("sydney", "tokyo", "bengaluru"), bot_share=10
        ),
    ),
    HeldOut(
        "follow-the-sun",
        "400 people in 3 time zones (San Francisco, London, Singapore), 30 % machines",
        seed=1001,
        history_seed=1501,
        people=400,
        days=10,
        shape=Shape(homes=("sf", "london", "singapore"), bot_share=30),
    ),
    HeldOut(
        "large-org",
        "2,000 people in the usual seven places over 4 days (new-country rule cannot fire yet)",
        seed=1003,
        history_seed=1503,
        people=2000,
        days=4,
        shape=Shape(admin_share=5, k8s_share=40, aws_share=25, bot_share=5),
    ),
)
"""Smallest first, so that a run cut short has measured the most organisations."""


def select(names: list[str] | None, *, quick: bool) -> list[HeldOut]:
    """The organisations named (all when none), only the quick ones with ``quick``."""
    known = {held.name: held for held in HELD_OUT}
    unknown = [name for name in names or () if name not in known]
    if unknown:
        raise SystemExit(f"unknown held-out organisation {unknown[0]!r}: {', '.join(known)}")
    chosen = [known[name] for name in names] if names else list(HELD_OUT)
    return [held for held in chosen if held.quick or not quick]
