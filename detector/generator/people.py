"""Who works at the generated organisation: places, names, addresses and powers.

The first twenty people are always the same hand-picked cast (the look-alikes
name some of them: the traveller, the break-glass user's owner). A larger
organisation adds people with names made from two fixed lists, at the same
seven home places in turn, so the roster never depends on the seed. A
:class:`~detector.generator.shape.Shape` may put everyone elsewhere and change
the shares of admins, Kubernetes and AWS users.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

from detector.generator.shape import DEFAULT_SHAPE, Shape
from detector.generator.world import Place

__all__ = [
    "BASE_PEOPLE",
    "MAX_PEOPLE",
    "PLACES",
    "TRAVELLER",
    "Member",
    "roster",
]

PLACES = {
    "sf": Place("US", "United States", "San Francisco", -8, "Comcast Cable"),
    "ny": Place("US", "United States", "New York", -5, "Verizon Business"),
    "london": Place("GB", "United Kingdom", "London", 0, "British Telecommunications"),
    "berlin": Place("DE", "Germany", "Berlin", 1, "Deutsche Telekom AG"),
    "warsaw": Place("PL", "Poland", "Warsaw", 1, "Orange Polska"),
    "bengaluru": Place("IN", "India", "Bengaluru", 5.5, "Bharti Airtel"),
    "sao-paulo": Place("BR", "Brazil", "Sao Paulo", -3, "Claro S.A."),
    "tokyo": Place("JP", "Japan", "Tokyo", 9, "NTT Communications"),
    "amsterdam": Place("NL", "Netherlands", "Amsterdam", 1, "DigitalOcean, LLC"),
    "ashburn": Place("US", "United States", "Ashburn", -5, "Amazon.com, Inc."),
    "hanoi": Place("VN", "Vietnam", "Hanoi", 7, "Viettel Group"),
    "singapore": Place("SG", "Singapore", "Singapore", 8, "Singtel"),
    "sydney": Place("AU", "Australia", "Sydney", 11, "Telstra"),
}
HOMES = ("sf", "ny", "london", "berlin", "warsaw", "bengaluru", "sao-paulo")
# name@home of the hand-picked cast.
CAST = (
    *("alice.moreau@sf", "bruno.costa@sao-paulo", "chen.wei@sf", "dana.kowalski@warsaw"),
    *("elif.demir@berlin", "farah.khan@london", "gita.rao@bengaluru", "hugo.lang@berlin"),
    *("ines.silva@sao-paulo", "jonas.berg@berlin", "kate.obrien@ny", "liam.walsh@london"),
    *("maya.patel@ny", "nikos.pappas@london", "olga.nowak@warsaw", "priya.nair@bengaluru"),
    *("quinn.baker@sf", "ravi.menon@ny", "sara.lind@sf", "tom.hughes@sf"),
)
BASE_PEOPLE = len(CAST)
TRAVELLER = "quinn.baker"
FIRST_NAMES = (
    *("ada", "ben", "carla", "dev", "emma", "felix", "grace", "henrik", "iris", "jamal"),
    *("kofi", "lena", "marco", "nora", "omar", "paula", "rui", "sofia", "tariq", "uma"),
    *("victor", "wen", "xenia", "yusuf", "zara", "anton", "bea", "cyril", "dalia", "eitan"),
)
LAST_NAMES = (
    *("adams", "brandt", "castro", "dubois", "eriksen", "fischer", "garcia", "hansen"),
    *("ivanova", "jensen", "kim", "lopez", "muller", "novak", "okafor", "park"),
    *("quint", "rossi", "sato", "tanaka", "ueda", "varga", "weber", "young"),
)
# Beyond the first lists' 720 pairs, names pair up with these too (after them, so that a
# smaller organisation's roster stays as it was).
MORE_FIRST_NAMES = (
    *("aiko", "bruna", "cem", "dimitri", "esra", "fatima", "goran", "hana", "ivo", "jin"),
    *("kasia", "luca", "mei", "nadia", "oskar", "pedro", "rania", "stefan", "tomas", "ulla"),
    *("vera", "wiktor", "yara", "zeno", "amara", "boris", "chloe", "daniel", "elena", "femi"),
)
MORE_LAST_NAMES = (
    *("almeida", "bianchi", "chowdhury", "dahl", "evans", "farouk", "gomez", "holm"),
    *("ito", "jovanovic", "kowalczyk", "lindgren", "mendes", "nguyen", "oliveira", "petrov"),
    *("qureshi", "ruiz", "svensson", "torres", "usman", "vidal", "wagner", "xu", "yilmaz"),
    *("zimmer",),
)
MAX_PEOPLE = 2000
# The shares of the organisation with each power come from the shape (by default 10, 60 and 40 %,
# as in the hand-picked cast: 2, 12 and 8 of 20); the first people of the roster hold them.


@dataclass(frozen=True, slots=True)
class Member:
    """One roster entry: ``first.last`` name, GitHub login, home, office address, powers."""

    name: str
    login: str
    home: Place
    ip: str
    admin: bool
    k8s: bool
    aws: bool


def roster(count: int, shape: Shape = DEFAULT_SHAPE) -> list[Member]:
    """The first ``count`` people (at most :data:`MAX_PEOPLE`), always in the same order."""
    if count > MAX_PEOPLE:
        raise ValueError(f"at most {MAX_PEOPLE} people")
    entries = [entry.partition("@")[::2] for entry in CAST]
    extra = (f"{first}.{last}" for first, last in _name_pairs())
    while len(entries) < count:
        entries.append((next(extra), HOMES[len(entries) % len(HOMES)]))
    if shape.homes:
        entries = [(name, shape.homes[i % len(shape.homes)]) for i, (name, _) in enumerate(entries)]
    # 10 / 100 is the same float as 0.1: the default shape rounds exactly as it always did.
    admins = max(2, round(count * (shape.admin_share / 100)))
    k8s_users = max(2, round(count * (shape.k8s_share / 100)))
    aws_users = round(count * (shape.aws_share / 100))
    members: list[Member] = []
    logins: set[str] = set()
    for index, (name, home) in enumerate(entries[:count]):
        login = _login(name, logins)
        logins.add(login)
        powers = {"admin": index < admins, "k8s": index < k8s_users, "aws": index < aws_users}
        members.append(Member(name, login, PLACES[home], _office_ip(index), **powers))
    return members


def _name_pairs() -> Iterator[tuple[str, str]]:
    """First and last names, the original lists' pairs first."""
    yield from product(FIRST_NAMES, LAST_NAMES)
    yield from product(FIRST_NAMES, MORE_LAST_NAMES)
    yield from product(MORE_FIRST_NAMES, (*LAST_NAMES, *MORE_LAST_NAMES))


def _login(name: str, taken: set[str]) -> str:
    """``first`` plus the last name's initial, longer (then numbered) when that is taken."""
    first, _, last = name.partition(".")
    for length in range(1, len(last) + 1):
        if (login := f"{first}{last[:length]}") not in taken:
            return login
    number = 2
    while f"{first}{last}{number}" in taken:
        number += 1
    return f"{first}{last}{number}"


def _office_ip(index: int) -> str:
    """The cast in TEST-NET-2 as before; everyone else in the benchmarking range 198.18/15."""
    if index < BASE_PEOPLE:
        return f"198.51.100.{10 + index}"
    host = index - BASE_PEOPLE
    return f"198.18.{host // 250}.{host % 250 + 1}"
