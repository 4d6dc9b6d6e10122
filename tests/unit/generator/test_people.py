"""The roster: the same hand-picked twenty first, then as many more as asked, all distinct."""

from __future__ import annotations

from collections import Counter

import pytest

from detector.errors import ConfigError
from detector.generator import MAX_PEOPLE, MIN_PEOPLE, generate
from detector.generator.people import BASE_PEOPLE, TRAVELLER, Member, roster
from tests.unit.generator.worlds import normalized_world


def test_the_first_twenty_are_the_cast_with_two_admins_twelve_k8s_and_eight_aws_users() -> None:
    cast = roster(BASE_PEOPLE)
    assert cast[0].name == "alice.moreau" and cast[0].login == "alicem"
    assert cast[0].ip == "198.51.100.10"
    assert TRAVELLER in {m.name for m in cast}
    powers = Counter(p for m in cast for p in ("admin", "k8s", "aws") if getattr(m, p))
    assert powers == {"admin": 2, "k8s": 12, "aws": 8}


def test_a_larger_roster_starts_with_the_cast_and_keeps_everyone_distinct() -> None:
    people = roster(300)

    def identity(members: list[Member]) -> list[tuple[str, str, str, str]]:
        return [(m.name, m.login, m.ip, m.home.city) for m in members]

    assert identity(people[:BASE_PEOPLE]) == identity(roster(BASE_PEOPLE))
    for field in ("name", "login", "ip"):
        assert len({getattr(m, field) for m in people}) == 300, field
    assert len({m.home.city for m in people}) == 7
    powers = Counter(p for m in people for p in ("admin", "k8s", "aws") if getattr(m, p))
    assert powers == {"admin": 30, "k8s": 180, "aws": 120}


def test_the_most_people_are_all_distinct() -> None:
    people = roster(MAX_PEOPLE)
    assert len({m.login for m in people}) == len({m.ip for m in people}) == MAX_PEOPLE


@pytest.mark.parametrize("count", [MIN_PEOPLE - 1, MAX_PEOPLE + 1])
def test_too_few_or_too_many_people_are_refused(count: int) -> None:
    with pytest.raises(ConfigError, match=f"^people: must be from {MIN_PEOPLE} to {MAX_PEOPLE}$"):
        generate(days=3, people=count)


def test_more_people_leave_events_under_more_names_that_all_normalize() -> None:
    small, large = normalized_world(5, 3), normalized_world(5, 3, people=80)
    okta_users = [
        {e.actor for e in world.events if e.source == "okta_system_log"} for world in (small, large)
    ]
    assert len(okta_users[1]) - len(okta_users[0]) >= 55  # most of the 60 more work in 3 days
    assert large.labels["people"] == 80
    assert len(large.labels["attacks"]) == len(small.labels["attacks"]) == 21
