"""The attack-scenario generator (detector.generator, through the bench/scenarios.py shim).

The generated world must be deterministic, every record must become an Event
through the bundled normalizer with the id labels.json gives it, and each
labeled scenario must have the shape its label claims (the attacks are what
the default rule pack is measured on, so a drifting generator would make the
benchmark lie).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import scenarios

from detector.errors import ConfigError
from detector.events.model import Category, Event, Outcome
from detector.generator.world import START, World
from detector.sources.files import FileSource
from tests.normalizing import bundled_normalizer

DAYS = 7


@dataclass(frozen=True)
class Generated:
    """The default world, written to disk, with its labels and its normalized events by id."""

    world: World
    directory: Path
    labels: dict[str, Any]
    events: dict[str, Event]

    def scenario(self, sid: str) -> dict[str, Any]:
        every = [*self.labels["attacks"], *self.labels["benign"]]
        return next(s for s in every if s["id"] == sid)

    def of(self, sid: str) -> list[Event]:
        """The events of scenario ``sid``, in time order."""
        return [self.events[event_id] for event_id in self.scenario(sid)["events"]]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    world = scenarios.generate(seed=7, days=DAYS)
    directory = tmp_path_factory.mktemp("scenarios")
    scenarios.write(world, directory)
    with FileSource([directory / scenarios.MERGED]) as source:
        records = [record for batch in source.batches(1000) for record in batch]
    normalized = bundled_normalizer().normalize_batch(records)
    assert normalized.dead_letters == []
    labels = orjson.loads((directory / "labels.json").read_bytes())
    return Generated(world, directory, labels, {e.id: e for e in normalized.events})


def span(items: list[Event]) -> timedelta:
    return max(e.time for e in items) - min(e.time for e in items)


# --- determinism and files -------------------------------------------------------------


def written(tmp: Path, seed: int, days: int) -> dict[str, bytes]:
    paths = scenarios.write(scenarios.generate(seed=seed, days=days), tmp)
    return {name: path.read_bytes() for name, path in paths.items()}


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    first = written(tmp_path / "a", seed=3, days=3)
    assert first == written(tmp_path / "b", seed=3, days=3)
    other = written(tmp_path / "c", seed=4, days=3)
    assert first["all.jsonl"] != other["all.jsonl"]


def test_every_record_normalizes_to_an_event_with_the_id_time_and_source_given(
    generated: Generated,
) -> None:
    found = generated.events
    assert len(found) == len(generated.world.records)
    for record in generated.world.records:
        event = found[record.event_id]
        assert (event.source, event.time) == (record.source, record.time)


@pytest.mark.parametrize("source", scenarios.SOURCES)
def test_each_source_file_holds_only_that_source_in_event_time_order(
    generated: Generated, source: str
) -> None:
    path = generated.directory / f"{source}.jsonl"
    with FileSource([path]) as reader:
        records = [record for batch in reader.batches(1000) for record in batch]
    normalized = bundled_normalizer().normalize_batch(records)
    assert normalized.dead_letters == []
    assert {event.source for event in normalized.events} == {source}
    assert len(normalized.events) == generated.labels["counts"][source] > 0
    times = [event.time for event in normalized.events]
    assert times == sorted(times)


def test_the_merged_file_is_in_event_time_order_and_holds_every_record(
    generated: Generated,
) -> None:
    times = [event.time for event in generated.events.values()]
    assert times == sorted(times)
    counts = generated.labels["counts"]
    assert generated.labels["events"] == len(generated.events) == sum(counts.values())


def test_too_few_days_are_refused_by_the_function_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="days: must be at least 3"):
        scenarios.generate(days=2)
    assert scenarios.main(["--out", str(tmp_path), "--days", "2"]) == 2
    assert capsys.readouterr().err.strip() == "ciwatch: error: days: must be from 3 to 365"
    assert not tmp_path.joinpath("all.jsonl").exists()


def test_cli_writes_the_files_and_says_what_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert scenarios.main(["--out", str(tmp_path), "--seed", "5", "--days", "3"]) == 0
    names = {path.name for path in tmp_path.iterdir()}
    expected = {f"{s}.jsonl" for s in scenarios.SOURCES} | {"all.jsonl", "labels.json"}
    assert names == expected
    assert "16 rule-shaped and 5 behavioural attacks" in capsys.readouterr().out


# --- labels ----------------------------------------------------------------------------


def test_every_attack_is_labeled_once_after_day_two_at_distinct_times(generated: Generated) -> None:
    attacks = generated.labels["attacks"]
    assert sorted(a["id"] for a in attacks) == sorted(scenarios.ATTACK_IDS)
    kinds = {
        kind: sorted(a["id"] for a in attacks if a["kind"] == kind)
        for kind in ("rule", "behavioural")
    }
    assert kinds == {
        "rule": sorted(scenarios.RULE_ATTACK_IDS),
        "behavioural": sorted(scenarios.BEHAVIOURAL_ATTACK_IDS),
    }
    assert (len(kinds["rule"]), len(kinds["behavioural"])) == (16, 5)
    starts = [datetime.fromisoformat(a["start"]) for a in attacks]
    ends = [datetime.fromisoformat(a["end"]) for a in attacks]
    assert min(starts) > START + timedelta(days=2)
    assert max(ends) < START + timedelta(days=DAYS)
    for end, next_start in zip(ends, starts[1:], strict=False):
        assert next_start - end > timedelta(minutes=10)


def test_labeled_events_exist_and_attacks_share_none_with_benign_scenarios(
    generated: Generated,
) -> None:
    labels = generated.labels
    attack_ids = {e for a in labels["attacks"] for e in a["events"]}
    benign_ids = {e for b in labels["benign"] for e in b["events"]}
    assert attack_ids and benign_ids
    assert attack_ids <= generated.events.keys() and benign_ids <= generated.events.keys()
    assert not attack_ids & benign_ids


def test_each_attack_names_an_actor_or_key_its_events_carry(generated: Generated) -> None:
    for attack in generated.labels["attacks"]:
        named = set(attack["actors"]) | set(attack["keys"])
        carried = {value for e in generated.of(attack["id"]) for value in (e.actor, e.ip)}
        assert attack["actor"] == attack["actors"][0]
        assert named & carried, attack["id"]
        times = [e.time for e in generated.of(attack["id"])]
        assert (min(times), max(times)) == (
            datetime.fromisoformat(attack["start"]),
            datetime.fromisoformat(attack["end"]),
        )


def test_threshold_attacks_reach_their_thresholds_inside_their_windows(
    generated: Generated,
) -> None:
    brute = generated.of("okta-brute-force")
    assert len(brute) == 15 and span(brute) <= timedelta(minutes=5)
    assert {(e.actor, e.outcome) for e in brute} == {(brute[0].actor, Outcome.FAILURE)}
    spray = generated.of("okta-password-spray")
    assert len({e.actor for e in spray}) == 12 and len({e.ip for e in spray}) == 1
    console = generated.of("aws-console-brute-force")
    assert len(console) == 12 and {e.outcome for e in console} == {Outcome.FAILURE}
    secrets = generated.of("k8s-secrets-across-namespaces")
    assert {e.category for e in secrets} == {Category.SECRET_ACCESS}
    assert len({e.attributes["namespace"] for e in secrets}) >= 6
    assert span(secrets) <= timedelta(minutes=10)
    clones = generated.of("github-mass-clone")
    assert len({e.attributes["repo"] for e in clones}) == 40
    assert span(clones) <= timedelta(minutes=30)


def test_success_after_failures_is_eight_failures_then_a_success(generated: Generated) -> None:
    found = generated.of("okta-success-after-failures")
    outcomes = [e.outcome for e in found if e.action == "user.session.start"]
    assert outcomes == [Outcome.FAILURE] * 8 + [Outcome.SUCCESS]
    assert len({e.actor for e in found}) == 1


def test_the_new_country_login_is_new_for_an_actor_with_history(generated: Generated) -> None:
    login = generated.of("okta-new-country-login")
    actor, country, start = login[0].actor, login[0].country, min(e.time for e in login)
    before = [e for e in generated.events.values() if e.actor == actor and e.time < start]
    assert len(before) > 10
    assert country not in {e.country for e in before}


def test_one_event_attacks_are_done_by_people(generated: Generated) -> None:
    for sid in (
        "github-branch-protection-removed",
        "cloudtrail-stop-logging",
        "k8s-cluster-admin-binding",
        "k8s-production-workload-change",
    ):
        assert {e.actor_type.value for e in generated.of(sid)} == {"human"}, sid
    binding = generated.of("k8s-cluster-admin-binding")[0]
    assert binding.raw["requestObject"]["roleRef"]["name"] == "cluster-admin"
    assert {e.attributes["namespace"] for e in generated.of("k8s-production-workload-change")} == {
        "production"
    }


# --- benign look-alikes ----------------------------------------------------------------


def test_ci_deploys_to_production_around_the_clock_as_machines(generated: Generated) -> None:
    deploys = generated.of("ci-deploys-around-the-clock")
    patches = [e for e in deploys if e.source == "k8s_audit" and e.action == "patch"]
    assert {e.attributes["namespace"] for e in patches} == {"production"}
    assert {e.time.hour for e in patches} == set(range(24))
    machines = [e for e in deploys if e.source in ("k8s_audit", "github_audit")]
    assert {e.actor_type.value for e in machines} == {"service"}
    role_calls = [e for e in deploys if e.attributes.get("role") == "github-actions-deploy"]
    assert role_calls and {e.actor_type.value for e in role_calls} == {"service"}


def test_password_typos_are_at_most_three_failures_before_a_success(generated: Generated) -> None:
    by_actor: dict[str, list[Event]] = defaultdict(list)
    for event in generated.of("password-typos"):
        by_actor[event.actor].append(event)
    assert by_actor
    for found in by_actor.values():
        outcomes = [e.outcome for e in found if e.action == "user.session.start"]
        assert outcomes == [Outcome.FAILURE] * 3 + [Outcome.SUCCESS]


def test_the_traveller_only_returns_to_countries_seen_in_their_first_days(
    generated: Generated,
) -> None:
    trip = generated.of("traveller-known-country")
    assert {e.country for e in trip if e.source == "okta_system_log"} == {"Japan"}
    early = START + timedelta(days=2)
    for event in trip:
        seen = {
            e.country
            for e in generated.events.values()
            if e.actor == event.actor and e.time < early
        }
        assert event.country in seen


def test_admin_adjusts_branch_protection_without_removing_it(generated: Generated) -> None:
    actions = {e.action for e in generated.of("admin-adjusts-branch-protection")}
    assert actions and all(a.startswith("protected_branch.update") for a in actions)


def test_routine_clones_are_a_few_repos_at_a_time(generated: Generated) -> None:
    per_hour: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for event in generated.of("routine-clones"):
        hour = event.time.replace(minute=0, second=0, microsecond=0)
        per_hour[(event.actor, hour)].add(event.attributes["repo"])
    assert per_hour and max(len(repos) for repos in per_hour.values()) <= 3
