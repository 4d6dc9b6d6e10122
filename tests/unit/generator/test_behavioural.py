"""The behavioural attacks: unusual for who does them, and invisible to every rule.

Each must have the shape its description claims (so the models have something
real to find) and raise no rule alert when the whole world runs through the
rules-only pipeline: a rule alert on one would mean the attack is rule-shaped
after all, and the anomaly models' measurements would credit the wrong part.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.config import load_config
from detector.detections import DetectorKind
from detector.events.model import ActorType, Category, Event, Outcome
from detector.generator import BEHAVIOURAL_ATTACK_IDS
from detector.generator.people import roster
from detector.generator.world import DOMAIN
from detector.pipeline import Pipeline
from tests.unit.generator.worlds import Normalized, normalized_world, span

SEED, DAYS = 7, 4
WORK_STARTS, WORK_ENDS = 8.0, 19.5  # local hours: the latest start is 10:00, the longest day 9.5 h


@pytest.fixture(scope="module")
def world() -> Normalized:
    return normalized_world(SEED, DAYS)


def local_hour(world: Normalized, actor: str, event: Event) -> float:
    people = roster(world.world.people)
    person = next(p for p in people if actor in (p.login, f"{p.name}@{DOMAIN}"))
    moment = event.time + timedelta(hours=person.home.offset)
    return moment.hour + moment.minute / 60


def assert_at_night(world: Normalized, sid: str) -> None:
    found = world.of(sid)
    actor = world.attack(sid)["actor"]
    hours = [local_hour(world, actor, event) for event in found]
    assert all(not WORK_STARTS <= hour <= WORK_ENDS for hour in hours), (sid, hours)


def test_the_night_sweep_downloads_15_strange_repos_under_the_clone_rule(
    world: Normalized,
) -> None:
    sweep = world.of("github-night-repo-sweep")
    repos = {e.attributes["repo"] for e in sweep}
    assert len(repos) == len(sweep) == 15
    assert {e.action for e in sweep} == {"git.clone", "repo.download_zip"}
    assert {e.category for e in sweep} == {Category.CODE_ACCESS}
    assert span(sweep) < timedelta(minutes=30)
    dev = sweep[0].actor
    own = {e.attributes.get("repo") for e in world.before(dev, sweep[0].time)}
    assert not repos & own
    assert_at_night(world, "github-night-repo-sweep")


def test_secrets_are_read_in_four_namespaces_at_night(world: Normalized) -> None:
    found = world.of("k8s-secrets-few-namespaces")
    assert {e.category for e in found} == {Category.SECRET_ACCESS}
    assert len({e.attributes["namespace"] for e in found}) == 4
    assert {e.action for e in found} == {"list", "get"}
    assert_at_night(world, "k8s-secrets-few-namespaces")


def test_aws_recon_is_a_burst_of_reads_by_someone_with_no_aws_history(world: Normalized) -> None:
    recon = world.of("aws-recon-burst")
    actor = recon[0].actor
    assert {e.actor for e in recon} == {actor} and {e.source for e in recon} == {"cloudtrail"}
    assert len(recon) >= 25 and span(recon) < timedelta(minutes=10)
    assert all(e.action.startswith(("Describe", "List", "Get")) for e in recon)
    assert len({e.raw["eventSource"] for e in recon}) >= 10
    history = world.before(actor, recon[0].time)
    assert history and {e.source for e in history} == {"okta_system_log"}


def test_okta_sign_ins_come_from_three_new_browsers_and_a_new_address(world: Normalized) -> None:
    found = world.of("okta-new-browsers-at-night")
    actor = found[0].actor
    history = world.before(actor, found[0].time)
    assert {e.outcome for e in found} == {Outcome.SUCCESS}
    browsers = {e.user_agent for e in found}
    assert len(browsers) == 3 and not browsers & {e.user_agent for e in history}
    assert len({e.ip for e in found}) == 1 and not {e.ip for e in found} & {e.ip for e in history}
    # The same country as ever: the new-country rule has nothing to say.
    assert {e.country for e in found} <= {e.country for e in history}
    assert_at_night(world, "okta-new-browsers-at-night")


def test_the_bot_token_is_used_from_a_persons_address_and_tools(world: Normalized) -> None:
    found = world.of("ci-bot-token-from-laptop")
    assert {e.actor for e in found} == {"deploy-bot[bot]"}
    assert {e.actor_type for e in found} == {ActorType.SERVICE}
    history = world.before("deploy-bot[bot]", found[0].time)
    assert history
    offices = {member.ip for member in roster(20)}
    assert {e.ip for e in found} <= offices and not {e.ip for e in history} & offices
    assert not {e.user_agent for e in found} & {e.user_agent for e in history}


@pytest.mark.parametrize("seed", [SEED, 11])
def test_no_rule_alerts_on_behavioural_attacks(seed: int) -> None:
    world = normalized_world(seed, DAYS)
    pipeline = Pipeline.from_config(load_config())
    alerts = [*pipeline.process_events(world.events), *pipeline.finish()]
    alerts = [a for a in alerts if a.detection.kind is DetectorKind.RULE]
    assert alerts  # the rule-shaped attacks are in the same world
    slack = timedelta(minutes=2)
    for sid in BEHAVIOURAL_ATTACK_IDS:
        attack = world.attack(sid)
        events, names = set(attack["events"]), {*attack["actors"], *attack["keys"]}
        found = world.of(sid)
        start, end = found[0].time - slack, found[-1].time + slack
        for alert in alerts:
            assert not events & set(alert.evidence), (sid, alert.detection.name)
            first = alert.first_time or alert.detection.time
            last = alert.last_time or first
            named = {alert.detection.actor, *(str(v) for _, v in alert.detection.key)}
            overlaps = first <= end and last >= start
            assert not (overlaps and named & names), (sid, alert.detection.name)
