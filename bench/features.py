"""Feature-store throughput and memory over generated events.

    python bench/features.py [--events 300000] [--actors 10000] [--compiled]
                             [--arena-mib 128 32 ...]

Prints FeatureStore.observe_batch throughput (batches of 500 events, as the
pipeline hands them over; events/s, one core, CPU time, best of three; the
plain form, or with ``--compiled`` the kernels compiled first as a daemon does,
its hot counters in arenas of each ``--arena-mib``) over a generated mix — many people, five
busy CI bots, IPs, countries, repos, namespaces, failures, slightly
out-of-order times and a few late events, every event carrying an IP, a
target, a repo and a namespace — and the memory the store holds per 10k
actors (tracemalloc, after ~20 events per actor over two days). Nothing here asserts timings.

Compiled, a run whose people outnumber the actor arena's slots (13.7 KB each:
9,811 at the default 128 MiB) brings a cold actor back at most of its
events; the run prints the arena's slots beside its throughput, and no memory
figure (``bench/memory.py`` measures a daemon's, arenas and all).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from detector.events.model import ActorType, Category, Event, Outcome
from detector.features.settings import FeatureSettings
from detector.features.state import ActorState
from detector.features.store import FeatureStore
from detector.jit import compile_all

BASE = datetime(2026, 1, 5, tzinfo=UTC)
BATCH = 500
CATEGORIES = list(Category)


def generate(count: int, actors: int, seed: int = 7) -> list[Event]:
    """``count`` events over ``actors`` people and five busy CI bots, ~1 event/s of event time.

    People keep to a few IPs, one country (rarely another), a few repos and
    namespaces; the bots (30% of events) touch hundreds of repos. 5% of events
    arrive up to 2 minutes out of order, 0.1% an hour late.
    """
    rng = random.Random(seed)
    repos = [f"acme/repo-{index}" for index in range(2000)]
    namespaces = [f"team-{index}" for index in range(40)]
    countries = ["US", "DE", "FR", "GB", "IN", "BR", "JP"]
    people = [
        (
            f"user{index}@acme.example",
            [f"10.{index % 250}.{rng.randrange(250)}.{rng.randrange(250)}" for _ in range(2)],
            rng.choice(countries),
            rng.sample(repos, rng.randint(2, 8)),
            rng.sample(namespaces, rng.randint(1, 3)),
        )
        for index in range(actors)
    ]
    bots = [
        (f"ci-bot-{index}", [f"192.0.2.{index}"], "US", rng.sample(repos, 400), namespaces)
        for index in range(5)
    ]
    events = []
    clock = 0.0
    for number in range(count):
        clock += rng.expovariate(1.0)
        actor, ips, country, their_repos, their_namespaces = (
            rng.choice(bots) if rng.random() < 0.3 else rng.choice(people)
        )
        jitter = -rng.uniform(0, 120) if rng.random() < 0.05 else 0.0  # out of order
        jitter = -3600.0 if rng.random() < 0.001 else jitter  # late
        repo = rng.choice(their_repos)
        events.append(
            Event(
                time=BASE + timedelta(seconds=clock + jitter),
                source="github_audit",
                action="git.clone",
                category=rng.choice(CATEGORIES),
                outcome=Outcome.FAILURE if rng.random() < 0.05 else Outcome.SUCCESS,
                actor=actor,
                actor_type=ActorType.SERVICE if actor.startswith("ci-") else ActorType.HUMAN,
                id=f"bench:{number}",
                ip=rng.choice(ips),
                country=country if rng.random() < 0.99 else rng.choice(countries),
                user_agent="git/2.43",
                target=repo,
                privileged=rng.random() < 0.02,
                attributes={"repo": repo, "namespace": rng.choice(their_namespaces)},
            )
        )
    return events


def bench_throughput(
    events: list[Event], label: str, settings: FeatureSettings | None = None
) -> None:
    """Best of three runs, CPU time of this process (other processes do not count)."""
    settings = settings or FeatureSettings()
    best = float("inf")
    for _ in range(3):
        store = FeatureStore(settings)
        started = time.process_time()
        for start in range(0, len(events), BATCH):  # as the pipeline hands them over
            store.observe_batch(events[start : start + BATCH])
        best = min(best, time.process_time() - started)
    arena = store._spec.arenas.get(ActorState)
    form = "plain" if arena is None else f"actor arena {arena.limit:,} slots"
    print(
        f"observe, {label}, {form}: {len(events):,} events in {best:.2f} s"
        f" = {len(events) / best:,.0f} events/s, {best / len(events) * 1e6:.1f} µs/event"
        f" (late: {store.late_events}, keys: {store.key_counts})"
    )


def bench_memory(actors: int) -> None:
    """Every actor active ~20 times over one simulated day, then the store's size."""
    events = generate(actors * 20, actors, seed=11)
    span = events[-1].time - events[0].time
    gc.collect()
    tracemalloc.start()
    store = FeatureStore(FeatureSettings())
    for event in events:
        store.observe(event)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_10k = current / store.key_counts["actor"] * 10_000
    print(
        f"memory: {current / 2**20:.1f} MiB held for {store.key_counts} over {span}"
        f" (peak {peak / 2**20:.1f} MiB) = {per_10k / 2**20:.1f} MiB per 10k actors"
        " (incl. their IP and target keys; key strings not counted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--actors", type=int, default=10_000)
    parser.add_argument("--compiled", action="store_true", help="compile the kernels first")
    parser.add_argument(
        "--arena-mib", type=int, nargs="+", default=[128], help="features.arena_bytes, MiB"
    )
    args = parser.parse_args()
    if args.compiled:
        compile_all()
    for people in (args.actors, args.actors // 10):
        events = generate(args.events, people)
        for mib in args.arena_mib if args.compiled else [None]:
            settings = None if mib is None else FeatureSettings(arena_bytes=mib << 20)
            bench_throughput(events, f"{people:,} people + 5 bots", settings)
    if not args.compiled:  # compiled, the arenas' fixed bytes would count as the actors'
        bench_memory(args.actors)


if __name__ == "__main__":
    main()
