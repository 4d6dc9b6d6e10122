"""FeatureStore: windowed counts, distinct counts, first-seen values, profile, bounds, lateness."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detector.events.model import Outcome
from detector.features.schema import FEATURE_NAMES
from detector.features.settings import FeatureSettings
from detector.features.store import FeatureStore
from tests.unit.features.helpers import at, event

WEEK = 7 * 86_400.0


def store(**settings: object) -> FeatureStore:
    return FeatureStore(FeatureSettings.model_validate(settings))


def test_every_observation_carries_the_same_names_in_order() -> None:
    features = store()
    observations = [
        features.observe(event(0)),
        features.observe(event(10, ip=None, target=None, country=None, attributes={})),
        features.observe(event(20, actor="bob", outcome=Outcome.FAILURE)),
        features.observe(event(20 - 3600, actor="carol")),  # late
    ]
    assert features.feature_names == FEATURE_NAMES
    for observation in observations:
        assert tuple(observation.features) == FEATURE_NAMES
        assert len(observation.features.vector()) == len(FEATURE_NAMES)  # type: ignore[attr-defined]


def test_feature_names_follow_the_settings() -> None:
    names = store(windows=["10m", "2h"], tracked=["country"]).feature_names
    assert "actor.events.10m" in names and "ip.distinct_actors.2h" in names
    assert "actor.new.country" in names and "actor.new.ip" not in names
    assert not any(name.endswith(".5m") for name in names)


def test_counts_events_failures_and_privileged_actions_per_window() -> None:
    features = store()
    features.observe(event(0))
    features.observe(event(30, outcome=Outcome.FAILURE))
    third = features.observe(event(90, privileged=True)).features
    assert (third["actor.events.5m"], third["actor.failures.5m"]) == (3, 1)
    assert third["actor.privileged.5m"] == 1
    assert (third["ip.events.5m"], third["ip.failures.5m"]) == (3, 1)
    assert third["event.privileged"] == 1 and third["event.failure"] == 0
    later = features.observe(event(600)).features
    assert (later["actor.events.5m"], later["actor.events.1h"]) == (1, 4)
    assert (later["actor.failures.5m"], later["actor.failures.1h"]) == (0, 1)


def test_events_without_ip_or_target_count_zero_for_those_keys() -> None:
    features = store()
    features.observe(event(0))
    bare = features.observe(event(5, ip=None, target=None)).features
    assert bare["actor.events.5m"] == 2
    assert bare["ip.events.5m"] == 0 and bare["target.distinct_actors.1h"] == 0


def test_out_of_order_event_within_lateness_counts_in_its_own_bucket() -> None:
    features = store()
    features.observe(event(600))
    late_arrival = features.observe(event(400))  # 200 s behind the watermark, lateness 300 s
    assert not late_arrival.late
    assert late_arrival.features["actor.events.5m"] == 2
    # The 5m window holds the 60 buckets of 5 s ending at the newest time: the
    # event of t=400 leaves it when the newest time reaches 700, not with t=600's.
    assert features.observe(event(695)).features["actor.events.5m"] == 3
    assert features.observe(event(700)).features["actor.events.5m"] == 3
    assert features.observe(event(700)).features["actor.events.1h"] == 5


def test_events_beyond_the_lateness_are_late_counted_and_left_out() -> None:
    features = store()
    features.observe(event(1000))
    late = features.observe(event(1000 - 301, country="FR", ip="203.0.113.9"))
    assert late.late and features.late_events == 1
    assert late.new_values == {}
    assert late.features["actor.events.5m"] == 1  # the state as it is, without the late event
    assert features.observe(event(1001)).features["actor.events.5m"] == 2
    assert features.known_values("alice", "ip") == ("198.51.100.7",)
    stranger = features.observe(event(0, actor="mallory", ip="192.0.2.1", target="acme/x"))
    assert stranger.late and stranger.learning
    assert stranger.features["actor.events.24h"] == 0
    assert features.key_counts == {"actor": 1, "ip": 1, "target": 1}


def test_zero_lateness_makes_any_older_event_late() -> None:
    features = store(allowed_lateness="0s")
    features.observe(event(100))
    assert not features.observe(event(100)).late
    assert features.observe(event(99)).late


def test_distinct_counts_per_window() -> None:
    features = store()
    for offset, ip in enumerate(["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.3"]):
        observation = features.observe(event(offset * 10, ip=ip))
    assert observation.features["actor.distinct_ips.5m"] == 3
    later = features.observe(event(400, ip="10.0.0.3")).features
    assert (later["actor.distinct_ips.5m"], later["actor.distinct_ips.1h"]) == (1, 3)


def test_distinct_actors_per_ip_and_per_target() -> None:
    features = store()
    for index, actor in enumerate(["a", "b", "c", "b", "d"]):
        observation = features.observe(event(index, actor=actor, ip="203.0.113.5"))
    assert observation.features["ip.distinct_actors.5m"] == 4
    assert observation.features["target.distinct_actors.1h"] == 4
    other = features.observe(event(10, actor="a", ip="203.0.113.6", target="acme/web"))
    assert other.features["ip.distinct_actors.5m"] == 1
    assert other.features["target.distinct_actors.5m"] == 1


def test_distinct_repos_and_namespaces_come_from_attributes() -> None:
    features = store()
    for index, (repo, namespace) in enumerate([("a", "prod"), ("b", "prod"), ("c", "dev")]):
        observation = features.observe(
            event(index, attributes={"repo": repo, "namespace": namespace})
        )
    assert observation.features["actor.distinct_repos.1h"] == 3
    assert observation.features["actor.distinct_namespaces.1h"] == 2


def test_new_values_are_reported_only_after_the_learning_period() -> None:
    features = store(learning_period="1h")
    first = features.observe(event(0, country="DE"))
    assert first.learning and first.new_values == {}
    travelling = features.observe(event(1800, country="FR"))
    assert travelling.learning and travelling.new_values == {}
    new = features.observe(event(3600, country="US"))
    assert not new.learning
    assert new.new_values == {"country": "US"}
    assert new.features["actor.new.country"] == 1 and new.features["actor.new.ip"] == 0
    assert features.observe(event(3700, country="US")).new_values == {}
    assert features.observe(event(3800, country="FR")).new_values == {}  # learned while learning


@pytest.mark.usefixtures("counter_form")
def test_a_batch_observes_as_event_by_event_with_known_values_at_each_event() -> None:
    events = [event(0, country="DE"), event(4000, country="US"), event(4100, country="FR")]
    events += [event(4200 + 7 * number, ip=f"192.0.2.{number % 3}") for number in range(40)]
    one_by_one = store(learning_period="1h")
    expected = [one_by_one.observe(item) for item in events]
    batched = store(learning_period="1h").observe_batch(events)
    assert [dict(found.features) for found in batched] == [
        dict(found.features) for found in expected
    ]
    assert [found.new_values for found in batched] == [found.new_values for found in expected]
    assert batched[1].known_values == {"country": ("US", "DE")}  # not yet FR, seen later
    assert batched[2].known_values == {"country": ("FR", "US", "DE")}
    assert batched[3].known_values == {"ip": ("192.0.2.0", "198.51.100.7")}
    assert batched[-1].known_values == {}  # nothing new


def test_first_sightings_reach_the_models_during_the_learning_period_too() -> None:
    features = store(learning_period="1d")
    features.observe(event(0, country="DE", user_agent="git/2.43"))
    same = features.observe(event(60, country="DE", user_agent="git/2.43"))
    assert same.features["actor.novel.1h"] == 1  # the first event: everything was new
    travelling = features.observe(event(120, country="FR", user_agent="Firefox/121"))
    assert travelling.learning and travelling.new_values == {}  # rules wait for learning
    assert travelling.features["actor.new.country"] == 1
    assert travelling.features["actor.new.user_agent"] == 1
    assert travelling.features["actor.novel.5m"] == 2  # events with a first sighting
    assert features.observe(event(180, country="FR")).features["actor.novel.5m"] == 2


def test_values_unseen_for_forget_after_are_new_again() -> None:
    features = store(windows=["5m", "1h"], learning_period="1h", forget_after="3h")
    features.observe(event(0, country="DE"))
    for hour in range(1, 4):
        features.observe(event(hour * 3600, country="FR"))
    assert features.observe(event(3 * 3600 + 60, country="DE")).new_values == {"country": "DE"}
    assert features.observe(event(3 * 3600 + 120, country="FR")).new_values == {}


def test_hour_of_week_share_describes_the_actors_routine() -> None:
    features = store()
    for week in range(3):
        features.observe(event(week * WEEK))  # Mondays 10:00
    usual = features.observe(event(3 * WEEK + 1800)).features  # Monday 10:30
    assert usual["actor.hour_of_week_share"] == 1.0
    assert usual["actor.active_hours_of_week"] == 1
    unusual = features.observe(event(3 * WEEK + 6 * 86_400 - 7 * 3600)).features  # Sunday 03:00
    assert unusual["actor.hour_of_week_share"] == 0.0
    assert features.baseline("alice")["active_hours_of_week"] == 2


def test_idle_keys_are_evicted_and_start_afresh() -> None:
    features = store(evict_idle_after="1h", learning_period="30m")
    features.observe(event(0, actor="bob", ip="192.0.2.9", target="acme/old"))
    features.observe(event(3000))
    assert features.key_counts["actor"] == 2
    features.observe(event(4000))  # bob's keys have been idle for more than an hour
    assert features.key_counts == {"actor": 1, "ip": 1, "target": 1}
    assert features.evicted_keys == 3
    back = features.observe(event(4010, actor="bob"))
    assert back.learning and back.features["actor.age_days"] == 0.0


def test_max_keys_keeps_the_most_recently_active_keys() -> None:
    features = store(max_keys=10)
    for index in range(12):
        features.observe(event(index, actor=f"user{index}", ip=None, target=None))
    assert features.key_counts["actor"] <= 10
    assert features.evicted_keys >= 2
    assert features.baseline("user11") and not features.baseline("user0")


def test_remembered_values_per_actor_are_capped_and_counts_stay_exact() -> None:
    features = store(max_values_per_set=8)
    for index in range(20):
        observation = features.observe(event(index, ip=f"10.0.0.{index}", target=None))
    remembered = features.baseline("alice")["known.ip"]
    assert remembered <= 8
    assert observation.features["actor.distinct_ips.24h"] == remembered
    assert len(features.known_values("alice", "ip", limit=100)) == remembered


def test_baseline_and_known_values_describe_the_actor() -> None:
    features = store(learning_period="1h")
    for hour in range(4):
        features.observe(event(hour * 3600, ip=f"10.0.0.{hour % 2}"))
    baseline = features.baseline("alice")
    assert baseline["events_per_hour"] == pytest.approx(4 / 3)
    assert baseline["known.ip"] == 2 and baseline["known.country"] == 1
    assert baseline["age_days"] == pytest.approx(3 / 24)
    assert baseline["learning"] == 0
    assert features.known_values("alice", "ip") == ("10.0.0.1", "10.0.0.0")
    assert features.baseline("nobody") == {} and features.known_values("nobody", "ip") == ()


def test_watermark_is_the_newest_event_time() -> None:
    features = store()
    assert features.watermark is None
    features.observe(event(50))
    features.observe(event(20))
    assert features.watermark == at(50)


def test_feature_vector_is_a_read_only_mapping() -> None:
    features = store().observe(event(0)).features
    assert features["actor.events.1h"] == 1
    assert "actor.events.1h" in features and "nope" not in features
    with pytest.raises(KeyError):
        features["nope"]
    assert features.to_dict() == dict(features)  # type: ignore[attr-defined]
    assert features.vector() == list(dict(features).values())  # type: ignore[attr-defined]


def test_age_and_learning_flags() -> None:
    features = store(learning_period=timedelta(days=1))
    features.observe(event(0))
    observation = features.observe(event(36 * 3600))
    assert observation.features["actor.age_days"] == 1.5
    assert observation.features["actor.learning"] == 0 and not observation.learning
