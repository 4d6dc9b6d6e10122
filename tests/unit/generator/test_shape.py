"""Organisation shapes: the default changes nothing, a bad value is one line, a shape shows.

The held-out organisations of ``bench/detection.py`` are generated with these
knobs; if a knob did not change what it says, the benchmark would measure the
default organisation again under another name.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from detector.cli import main
from detector.errors import ConfigError
from detector.events.model import Outcome
from detector.generator import (
    MAX_PEOPLE,
    MERGED,
    SHAPE_RANGES,
    Shape,
    World,
    generate,
    labels,
)
from detector.generator.bots import SERVICE_BOTS, bot_count
from detector.generator.people import PLACES, TRAVELLER, roster
from tests.unit.generator.worlds import normalize

# Digests of worlds made before shapes existed: the default shape must keep every seed's
# output byte for byte (the tests, the demo and the bundled models' card depend on it).
BEFORE_SHAPES = {
    (7, 3, 20): "d316f038322062a2801c5ec5d9fffb8393845d16bb214bbbe8628faab209e965",
    (5, 3, 80): "6be0f04ce9588e94d31b0087eefd3d011fe16e194c0f30b93835032267dabacc",
}
ROSTER_BEFORE_SHAPES = "8e9f6c105794cd38715a85e750bffc1aef319a3ac247ec8285ba7b366ad37259"


def digest(world: World) -> str:
    found = hashlib.sha256()
    for record in world.records:
        found.update(orjson.dumps(record.doc))
    found.update(orjson.dumps(labels(world)))
    return found.hexdigest()


@pytest.mark.parametrize(("seed", "days", "people"), sorted(BEFORE_SHAPES))
def test_the_default_shape_gives_the_same_bytes_as_before_shapes(
    seed: int, days: int, people: int
) -> None:
    world = generate(seed, days, people)
    assert digest(world) == BEFORE_SHAPES[seed, days, people]
    assert "shape" not in labels(world)


def test_the_first_740_people_are_those_of_before_and_2000_are_all_distinct() -> None:
    people = roster(MAX_PEOPLE)
    before = [(m.name, m.login, m.ip, m.home.city, m.admin, m.k8s, m.aws) for m in roster(740)]
    assert hashlib.sha256(orjson.dumps(before)).hexdigest() == ROSTER_BEFORE_SHAPES
    assert MAX_PEOPLE == 2000
    for field in ("name", "login", "ip"):
        assert len({getattr(m, field) for m in people}) == MAX_PEOPLE, field


@pytest.mark.parametrize(("name", "low", "high"), [(n, *r) for n, r in SHAPE_RANGES.items()])
def test_a_value_out_of_its_range_is_refused_naming_the_option(
    name: str, low: int, high: int
) -> None:
    option = name.replace("_", "-")
    for bad in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=f"^{option}: must be from {low} to {high}$"):
            Shape(**value(name, bad))
    assert getattr(Shape(**value(name, low)), name) == low
    assert getattr(Shape(**value(name, high)), name) == high


def value(name: str, number: int) -> dict[str, Any]:
    return {name: number}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--bot-share", "61"], "bot-share: must be from 0 to 60"),
        (["--work-start", "24"], "work-start: must be from 0 to 23"),
        (["--homes", "sf,mars"], "homes: unknown place 'mars' (known: sf, ny,"),
        (["--homes", "sf,,london"], "homes: an empty place in the list"),
        (["--admin-share", "51"], "admin-share: must be from 0 to 50"),
    ],
)
def test_a_bad_shape_option_is_one_line_exit_status_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], error: str
) -> None:
    assert main(["generate", "--out", str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ciwatch: error: {error}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_help_shows_every_shape_option_with_its_range(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, (low, high) in SHAPE_RANGES.items():
        assert f"--{name.replace('_', '-')}" in text
        assert f"{low} to {high}" in text
    assert "sf, ny, sao-paulo, london, berlin, warsaw, bengaluru, singapore, tokyo, sydney" in text


SHAPED = [
    "--seed", "1234", "--days", "3", "--people", "30", "--homes", "sydney,singapore",
    "--work-start", "13", "--bot-share", "25", "--k8s-share", "90",
]  # fmt: skip


def test_a_shape_is_deterministic_labeled_and_differs_from_the_default(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["generate", "--out", str(tmp_path / name), *SHAPED]) == 0
    assert main(["generate", "--out", str(tmp_path / "plain"), *SHAPED[:6]]) == 0
    first, second = (tmp_path / "a" / MERGED).read_bytes(), (tmp_path / "b" / MERGED).read_bytes()
    assert first == second != (tmp_path / "plain" / MERGED).read_bytes()
    found = orjson.loads((tmp_path / "a" / "labels.json").read_bytes())
    assert found["shape"] == {
        "k8s_share": 90,
        "homes": ["sydney", "singapore"],
        "work_start": 13,
        "bot_share": 25,
    }


@pytest.mark.parametrize(("people", "share"), [(40, 30), (120, 40), (30, 25), (60, 0)])
def test_the_share_of_machines_measured_in_the_events_is_the_one_asked_for(
    people: int, share: int
) -> None:
    shape = Shape(bot_share=share)
    events = normalize(generate(1234, 3, people, attacks=False, shape=shape))
    humans = {n for m in roster(people, shape) for n in (m.login, f"{m.name}@acme.example")}
    machines = {e.actor for e in events} - humans
    bots = {actor for actor in machines if "svc-" in actor}
    assert len(bots) == bot_count(people, share)
    measured = 100 * len(machines) / (len(machines) + people)
    if bots:
        assert abs(measured - share) <= 3, measured
    else:  # the organisation's own CI and operators are share enough: no bots added
        assert measured >= share, measured


def test_service_bots_are_one_benign_look_alike_acting_around_the_clock() -> None:
    world = generate(1234, 3, 30, shape=Shape(bot_share=40))
    bots = world.scenarios[SERVICE_BOTS]
    assert bots.label == "benign" and len(bots.actors) == bot_count(30, 40)
    hours = Counter(record.time.hour for record in bots.records)
    assert set(hours) == set(range(24))


def test_people_start_work_at_the_asked_local_hour_in_their_new_time_zones() -> None:
    shape = Shape(homes=("sydney", "singapore"), work_start=13)
    world = generate(1234, 4, 30, attacks=False, shape=shape)
    typos = {r.event_id for r in world.scenarios["password-typos"].records}
    # The traveller works from Tokyo on some days, on Tokyo's clock.
    homes = {f"{m.name}@acme.example": m.home for m in roster(30, shape) if m.name != TRAVELLER}
    starts = [
        e
        for e in normalize(world)
        if e.action == "user.session.start" and e.outcome == Outcome.SUCCESS
        if e.actor in homes and e.id not in typos
    ]
    assert {homes[e.actor].city for e in starts} == {"Sydney", "Singapore"}
    for event in starts:
        local = event.time + timedelta(hours=homes[event.actor].offset)
        assert 13 <= local.hour < 15, (event.actor, local)
    assert PLACES["sydney"].offset == 11  # January: daylight saving time in Sydney


def test_the_role_mix_sets_who_holds_which_access_and_what_they_do() -> None:
    shape = Shape(admin_share=30, k8s_share=90, aws_share=0)
    members = roster(100, shape)
    powers = Counter(p for m in members for p in ("admin", "k8s", "aws") if getattr(m, p))
    assert powers == {"admin": 30, "k8s": 90}
    events = normalize(generate(1234, 3, 40, attacks=False, shape=shape))
    people = {f"{m.name}@acme.example" for m in roster(40, shape)}
    aws_people = {e.actor for e in events if e.source == "cloudtrail" and e.actor in people}
    k8s_people = {e.actor for e in events if e.source == "k8s_audit" and e.actor in people}
    assert aws_people == set() and len(k8s_people) >= 30  # 36 hold access; most work in 3 days


def test_an_organisation_without_americans_still_gets_every_attack() -> None:
    world = generate(1234, 3, 20, shape=Shape(homes=("berlin",)))
    assert len(labels(world)["attacks"]) == 21
