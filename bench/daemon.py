"""End-to-end benchmark of ``ciwatch run`` through a real Kafka-protocol broker.

    python bench/daemon.py [--people 300] [--days 22] [--seed 7] [--live-seconds 60]
                           [--rate R | --latency-at 0.5 0.9] [--rounds 3]
                           [--workers N] [--partitions P]
                           [--scale] [--client kafka-python|confluent]
                           [--shipper librdkafka|kafka-python]
                           [--wall-lateness S | --shipped-lateness]

Starts the embedded broker, generates a world (300 people x 22 days ≈ 100k
records of GitHub, Okta, Kubernetes and CloudTrail audit logs) and loads it
into a topic of ``--partitions`` partitions, keyed by actor as a shipper keys
an audit topic (an actor's records share a partition; docs/daemon.md), then
prints:

1. **The floor**: a bare kafka-python consumer (the daemon's own consumer
   settings, ``poll(max_records=2000)``) that only ``orjson``-parses each
   record, over the same topic, in a fresh group: records/s from the end of
   its first batch (the group join is over) to its last record, and this
   process's CPU per record over that span. Also records/s from the same
   start to 80 % of the records (``STEADY_SHARE``): near the end one
   partition runs out before the other, and the floor's last polls then
   waited 100-500 ms each for the rest of the other. That tail took the
   floor from about 90,000 records/s to about 60,000 in most runs, and not
   in others; up to 80 % it does not show.
2. **Sustained end-to-end throughput**: ``python -m detector run
   --workers N`` as a process, with the bundled rules and models
   (``models.dir: bundled``) and a webhook sink posting to
   a receiver in this process, over the pre-loaded topic. Every 50 ms it
   asks the broker for the offsets the daemon's group committed (not the
   daemon's ``/metrics``, whose rendering at that pace cost the daemon CPU);
   they move after a batch is delivered, so the rate is
   (last - first non-zero reading) / the time between them — the group join
   and start-up are left out — and its ratio to the floor, and to 80 % of
   the records against the floor's rate to 80 % (the figure held against
   the issue's target); and the daemon's CPU per record against the floor's.
   Steps 1 and 2 run as ``--rounds`` pairs (3), one after the other, each
   daemon in a fresh group: a floor run moved by a third from one run to the
   next on two shared cores, so each daemon run is held against the floor
   run just before it, and the median of the pairs' ratios is the figure
   (with the medians of the rates and of the CPU per record). The latency
   runs take the median daemon rate over the whole runs as the sustained rate.
3. **Event-to-alert latency at each ``--latency-at`` share of that rate**
   (0.5 and 0.9 by default; or at ``--rate``): a fresh
   daemon on a fresh topic; once it is ready (``/readyz``), the world's first
   records are produced live at the fixed rate for ``--live-seconds``
   through librdkafka with ``linger.ms=5``, as a log shipper would
   (``--shipper kafka-python``: the producer of the sessions before the
   sixteenth, whose CPU the daemon shared on two cores; bench/shippers.py). The
   records keep the world's event times (rewriting the four vendors' time
   fields would test the rewrite, not the daemon; detection runs in event
   time, so compressed days behave as real ones). Their days pass in
   seconds, so the live daemons allow a record to be late by
   ``--wall-lateness`` seconds of wall clock (300, the shipped allowed
   lateness) in that event time; ``--shipped-lateness`` keeps the shipped
   lateness in event time, about a millisecond of wall clock, as the
   sessions before the sixteenth did (bench/live_replay.py). Latency is measured on
   the wall clock of this process, from the moment a record is handed to
   the producer to the moment the receiver gets the alert: every first send
   (revision 0) is mapped, through the event ids in its ``evidence``, to the
   records that caused it (the normalizer run here on the same records
   gives record → event id), and the newest of them — the one that
   completed the alert — is its start. Reported as p50/p99/max in ms over
   the alerts mapped; alerts with no evidence among the produced records
   are counted, not measured. Then the live run's alert ids are held against
   those of a single-process replay of the same records, with the daemon's
   late-event and merge counters (:mod:`live_replay` says why they differ).

``--scale`` runs the daemon with ``service.scale`` (docs/scaling.md): the
keyed stages over ``--partitions`` partitions each, every stage in the one
process (or in each of ``--workers``); a record counts as done once the last
stage (``ciwatch.<group>.by-actor``: each daemon has internal topics of its
own) has read it, so the rate is of events (and the producers' few marks)
through every stage, timed from the first batch the first stage committed
(the stages before the last work from then on: timed from the last stage's
first commit, as until the twenty-fourth session, two workers seemed to
need half the CPU per record of one). ``--client confluent`` runs the
daemon on confluent-kafka (``pip install 'ciwatch[fast]'``); the floor stays
kafka-python's.

Also prints the throughput daemon's CPU (user + system from /proc, its
children with ``--workers``) per record over the same span as its rate (on
two shared cores, less at the mercy of the other processes than the rate),
each daemon's peak RSS (``VmHWM`` from /proc before it is stopped), and the
largest backlog (records produced but not yet committed) seen during the
live run. Nothing here asserts a figure; the defaults take
about 3 minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, get_args

import httpx
import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from live_replay import compare, named, read_counters, replay_alerts
from prometheus_client.parser import text_string_to_metric_families
from shippers import SHIPPERS, ShipperName, shipper

from detector.config import load_config
from detector.demo import AlertReceiver
from detector.features.settings import DEFAULT_SOURCE_LATENESS, FeatureSettings
from detector.generator import MERGED, generate, write
from detector.normalizing import build_normalizer
from detector.scale.topology import ScaleSettings, Topology
from detector.sources.broker import EmbeddedBroker, free_ports
from detector.sources.kafka import KafkaClient, KafkaSettings
from detector.sources.record import Position, RawRecord

MAX_RECORDS = 2_000
POLL_EVERY_S = 0.05
WAIT_S = 600.0
STEADY_SHARE = 0.8
"""Each run is also timed up to this share of the records: past it one partition may have
run out before the other, and the floor's polls for the rest of the other then waited 100 to
500 ms each, which took a floor of about 90,000 records/s to about 60,000 in most runs and
not in others (docs/performance-history.md, the twenty-fourth session)."""
SHIPPED_LATENESS_S = FeatureSettings().allowed_lateness.total_seconds()


def world_records(seed: int, days: int, people: int) -> list[bytes]:
    """The generated world's records in event-time order (``all.jsonl``)."""
    with tempfile.TemporaryDirectory(prefix="ciwatch-bench-world-") as tmp:
        write(generate(seed=seed, days=days, people=people), Path(tmp))
        return (Path(tmp) / MERGED).read_bytes().splitlines()


class WorldIndex:
    """What the bench needs of each record's events, from one normalizing pass (default config).

    ``keys``: each record's message key, its actor, as a shipper keys an audit
    topic (docs/daemon.md): an actor's records share a partition and each
    worker keeps whole actors; spread record by record instead, every worker
    would see every actor with half its events (other state, more work per
    event, other alerts). ``records``: event id → index of its record. ``times``: each
    record's event time (epoch seconds; None for a record without an event). ``sources``:
    each record's log type (None likewise).
    """

    def __init__(self, values: list[bytes]) -> None:
        normalizer = build_normalizer(load_config(None))
        self.keys: list[bytes | None] = [None] * len(values)
        self.records: dict[str, int] = {}
        self.times: list[float | None] = [None] * len(values)
        self.sources: list[str | None] = [None] * len(values)
        for start in range(0, len(values), 5_000):
            chunk = values[start : start + 5_000]
            records = [RawRecord(v, Position("world", start + i)) for i, v in enumerate(chunk)]
            for event in normalizer.normalize_batch(records).events:
                if event.position is not None:
                    self.keys[event.position.offset] = event.actor.encode()
                    self.records[event.id] = event.position.offset
                    self.times[event.position.offset] = event.time.timestamp()
                    self.sources[event.position.offset] = event.source

    def lateness(self, wall_s: float, count: int, rate: float) -> str:
        """The allowed lateness, as a config duration, that gives the first ``count`` records
        sent at ``rate`` records/s the tolerance of ``wall_s`` seconds of wall clock: the bench
        plays their event times faster than the wall clock by their span over the send."""
        times = [moment for moment in self.times[:count] if moment is not None]
        speed = (max(times) - min(times)) / (count / rate)
        return f"{max(1, round(wall_s * speed))}s"


def kafka_settings(
    broker: EmbeddedBroker,
    topic: str | list[str],
    group: str,
    client: KafkaClient = "kafka-python",
) -> KafkaSettings:
    # This broker makes a group join take half the session timeout: keep it short.
    topics = [topic] if isinstance(topic, str) else topic
    return KafkaSettings(
        client=client, bootstrap_servers=[broker.bootstrap], topics=topics, group_id=group,
        session_timeout_ms=6000, heartbeat_interval_ms=1000,
    )  # fmt: skip


def preload(
    broker: EmbeddedBroker, topics: list[str], values: list[bytes], keys: list[bytes | None]
) -> None:
    """Each record to its topic (``topics[i]`` for ``values[i]``), keyed as given."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, batch_size=1 << 18)
    for topic, value, key in zip(topics, values, keys, strict=True):
        producer.send(topic, value, key=key)
    producer.flush()
    producer.close()


def bench_topics(world: WorldIndex, per_log_type: bool) -> tuple[list[str], dict[str, str]]:
    """Each record's topic: ``bench``, or with ``per_log_type`` ``bench-<log type>`` as a
    deployment ships each vendor's audit log to a topic of its own; and the formats the
    daemon is told those topics hold (``normalizer.formats``: no auto-detection, and typed
    decoding where the log type's parser declares its reads)."""
    if not per_log_type:
        return ["bench"] * len(world.sources), {}
    topics = [f"bench-{source or 'unknown'}" for source in world.sources]
    formats = {f"bench-{source}": source for source in set(world.sources) if source}
    return topics, formats


class Run(NamedTuple):
    """One timed pass over the topic: records/s, and CPU µs per record over the same span;
    ``steady``: records/s up to :data:`STEADY_SHARE` of the records."""

    rate: float
    cpu_us: float
    steady: float


class Readings:
    """A run's readings of (records read, wall clock, CPU seconds): the first, the first at
    :data:`STEADY_SHARE` of ``count`` records, and the last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.first: tuple[int, float, float] | None = None
        self.steady: tuple[int, float, float] | None = None
        self.last = (0, 0.0, 0.0)

    def note(self, records: int, now: float, cpu: float) -> None:
        if self.first is None:
            self.first = (records, now, cpu)
        elif self.steady is None and records >= STEADY_SHARE * self.count:
            self.steady = (records, now, cpu)
        self.last = (records, now, cpu)

    @property
    def untimed(self) -> int:
        """Records read before the span starts (the first reading's)."""
        return self.first[0] if self.first else 0

    @property
    def timed(self) -> tuple[int, float]:
        """Records read over the span, and its seconds."""
        assert self.first is not None
        return self.last[0] - self.first[0], self.last[1] - self.first[1]

    def run(self) -> Run:
        assert self.first is not None
        records, elapsed = self.timed
        steady = self.steady or self.last
        steady_rate = (steady[0] - self.first[0]) / (steady[1] - self.first[1])
        cpu_us = (self.last[2] - self.first[2]) / records * 1e6
        return Run(records / elapsed, cpu_us, steady_rate)


def floor_run(broker: EmbeddedBroker, topics: list[str], count: int, group: str) -> Run:
    """kafka-python consume + orjson parse of ``count`` records by a fresh consumer group,
    timed after the join (its CPU is this process's: every thread of the consumer)."""
    settings = kafka_settings(broker, topics, group)
    consumer = KafkaConsumer(enable_auto_commit=False, **settings.consumer_config())
    consumer.subscribe(topics)
    readings, seen = Readings(count), 0
    while seen < count:
        fetched = consumer.poll(timeout_ms=1000, max_records=MAX_RECORDS)
        batch = [message for messages in fetched.values() for message in messages]
        for message in batch:
            orjson.loads(message.value)
        seen += len(batch)
        if batch:
            # As for the daemon: timed from the end of the first batch (after the join).
            readings.note(seen, time.perf_counter(), time.process_time())
    consumer.close()
    run = readings.run()
    records, elapsed = readings.timed
    print(f"floor (kafka-python poll + orjson): {records:,} records in {elapsed:.1f} s"
          f" = {run.rate:,.0f} records/s, {run.steady:,.0f} to {STEADY_SHARE:.0%} of the"
          f" records; {run.cpu_us:.1f} µs of CPU per record"
          f" (first batch of {readings.untimed:,} not timed)")  # fmt: skip
    return run


def bench_throughput(
    broker: EmbeddedBroker,
    topics: list[str],
    count: int,
    rounds: int,
    daemon_of: Callable[[int, str], DaemonProcess],
) -> float:
    """``rounds`` pairs of a floor run and a daemon run (``daemon_of(round, webhook url)``)
    over the pre-loaded topic; prints each pair's ratio and the medians; the daemon's median
    rate. A floor run moved by a third from one run to the next on the two shared cores:
    pairs taken one after the other share the machine's state, and the median of their
    ratios is the figure."""
    pairs: list[tuple[Run, Run]] = []
    for number in range(rounds):
        print(f"round {number + 1} of {rounds}:")
        floor = floor_run(broker, topics, count, f"bench-floor-{number}")
        with AlertReceiver() as receiver:
            daemon = daemon_of(number, receiver.url)
            ran = bench_end_to_end(daemon, count, floor.rate, floor.cpu_us, floor.steady)
            pairs.append((floor, ran))
    print(rounds_summary(pairs))
    return statistics.median(daemon.rate for _, daemon in pairs)


def rounds_summary(pairs: list[tuple[Run, Run]]) -> str:
    """The line of :func:`bench_throughput`: the medians (and ranges) of the pairs' ratios
    (up to :data:`STEADY_SHARE` of the records, then over the whole runs), of the daemon's
    and the floor's rates and of their CPU per record."""
    floors, daemons = [floor for floor, _ in pairs], [daemon for _, daemon in pairs]
    steady = [daemon.steady / floor.steady for floor, daemon in pairs]
    whole = [daemon.rate / floor.rate for floor, daemon in pairs]
    return (
        f"throughput over {len(pairs)} rounds: {_median(steady, '.2f')} of the floor to"
        f" {STEADY_SHARE:.0%} of the records, {_median(whole, '.2f')} over the whole runs;"
        f" daemon {_median([d.steady for d in daemons], ',.0f')} records/s to {STEADY_SHARE:.0%}"
        f" ({_median([d.rate for d in daemons], ',.0f')} whole) at"
        f" {_median([d.cpu_us for d in daemons], '.1f')} µs of CPU per record;"
        f" floor {_median([f.steady for f in floors], ',.0f')} records/s to {STEADY_SHARE:.0%}"
        f" ({_median([f.rate for f in floors], ',.0f')} whole) at"
        f" {_median([f.cpu_us for f in floors], '.1f')} µs"
    )


def _median(values: list[float], spec: str) -> str:
    """``median (min to max)``, each formatted with ``spec``."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:{spec}} ({low:{spec}} to {high:{spec}})"


class DaemonProcess:
    """``python -m detector run`` on a config of its own, with its log, /readyz and group."""

    def __init__(
        self,
        work: Path,
        settings: KafkaSettings,
        webhook: str,
        *,
        workers: int = 1,
        scale: int | None = None,
        lateness: str | None = None,
        formats: dict[str, str] | None = None,
    ) -> None:
        work.mkdir(parents=True)
        self.port = free_ports(workers + 1)  # the workers take the ports after it
        self.config = config = work / "ciwatch.yaml"
        kafka = orjson.dumps(settings.model_dump(mode="json", exclude_defaults=True)).decode()
        # Scaled (``service.scale``), a record is done when the last stage has read it.
        # Each daemon's internal topics its own: a later daemon on the same broker reading
        # an earlier one's would take its records for the live ones.
        prefix = f"{ScaleSettings().topic_prefix}.{settings.group_id}"
        stages = (
            f"  scale: {{enabled: true, partitions: {scale}, topic_prefix: {prefix}}}\n"
            if scale
            else ""
        )
        # Every source's allowed lateness: the shipped per-source ones replaced too.
        shipped = dict.fromkeys(DEFAULT_SOURCE_LATENESS, lateness)
        late = {"allowed_lateness": lateness, "source_lateness": shipped}
        features = f"features: {orjson.dumps(late).decode()}\n" if lateness else ""
        declared = f"normalizer: {{formats: {orjson.dumps(formats).decode()}}}\n" if formats else ""
        last_stage = Topology(prefix, ("actor",), 1).topic("actor")
        self.group, self.vendors = settings.group_id, frozenset(settings.topics)
        self.counted = frozenset({last_stage}) if scale else self.vendors
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        config.write_text(
            f"service:\n  kafka: {kafka}\n  http_host: 127.0.0.1\n  http_port: {self.port}\n"
            f"  state_dir: '{work / 'state'}'\n{stages}"
            f"  webhook: {{url: '{webhook}', min_severity: info, max_backoff: 1s}}\n"
            f"models: {{dir: bundled}}\n{features}{declared}"
        )
        command = [sys.executable, "-m", "detector", "run", "--config", str(config)]
        self.log = work / "daemon.log"
        # One client for every probe of /readyz (``httpx.get`` builds a client, TLS
        # context included, per call, on the cores the daemon uses).
        self.client = httpx.Client(timeout=5.0)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--workers", str(workers)],
                stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    def check_alive(self) -> None:
        """``SystemExit`` with the end of the daemon's log if it has exited."""
        if self.process.poll() is not None:
            tail = self.log.read_text()[-2000:]
            raise SystemExit(f"the daemon exited with {self.process.returncode}:\n{tail}")

    def get(self, path: str) -> httpx.Response | None:
        self.check_alive()
        try:
            return self.client.get(f"http://127.0.0.1:{self.port}{path}")
        except httpx.TransportError:
            return None  # not listening yet

    def consumed(self) -> int:
        """Records the daemon's group has committed on the counted topic (0 before any).

        Read from the broker, not the daemon's ``/metrics``: scraping every
        50 ms cost the daemon CPU it would not spend under a real scrape
        interval, and more with ``--workers`` (the parent scrapes each
        worker). Offsets are committed after a batch is delivered, so this is
        what went through. Scaled, the counted topic is the last stage's: its
        records are the events (and the producers' marks) through every stage.
        """
        return self.progress()[1]

    def progress(self) -> tuple[int, int]:
        """Records committed on the vendor topics and on the counted ones (:meth:`consumed`),
        from one request: scaled, the first moves as soon as the first stage has handed a
        batch on, long before the last stage commits anything."""
        self.check_alive()
        offsets = self.admin.list_group_offsets(self.group).get(self.group, {})
        vendors = counted = 0
        for part, at in offsets.items():
            vendors += at.offset if part.topic in self.vendors else 0
            counted += at.offset if part.topic in self.counted else 0
        return vendors, counted

    def ready(self) -> bool:
        response = self.get("/readyz")
        return response is not None and response.status_code == 200

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU of the daemon and its direct children (``--workers`` N) so far."""
        pids = [self.process.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """SIGTERM and wait; the peak RSS (MiB) read just before."""
        peak = self.peak_rss_mib()
        self.client.close()
        self.admin.close()
        self.process.send_signal(signal.SIGTERM)
        if self.process.wait(timeout=60) != 0:
            print(f"daemon exited {self.process.returncode}; see {self.log}", file=sys.stderr)
        return peak


def wait_for(condition: Callable[[], bool], what: str, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every_s)


def loop_cpu_line(daemon: DaemonProcess, records: int) -> str:
    """The daemon's own account of its loop thread's CPU per record, by stage
    (``ciwatch_loop_cpu_seconds_total``, summed over workers), read once at the end."""
    response = daemon.get("/metrics?name[]=ciwatch_loop_cpu_seconds_total")
    if response is None:
        return "loop thread CPU by stage: not read"
    by_stage: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "ciwatch_loop_cpu_seconds_total":
                stage = sample.labels["stage"]
                by_stage[stage] = by_stage.get(stage, 0.0) + sample.value
    shown = ", ".join(
        f"{stage} {seconds / records * 1e6:.1f}" for stage, seconds in by_stage.items() if seconds
    )
    whole = sum(by_stage.values()) / records * 1e6
    return (
        f"loop thread CPU by stage (the daemon's ciwatch_loop_cpu_seconds_total, all"
        f" {records:,} records): {shown}; {whole:.1f} µs per record in all"
    )


def bench_end_to_end(
    daemon: DaemonProcess,
    count: int,
    floor: float,
    floor_cpu_us: float | None = None,
    floor_steady: float | None = None,
) -> Run:
    """Records/s from the first batch committed on the vendor topic to the last record
    committed on the counted one (and to :data:`STEADY_SHARE` of the records), and the
    daemon's CPU per record over the whole span, each against the floor's (its peak RSS
    printed)."""
    readings = Readings(count)
    deadline = time.monotonic() + WAIT_S
    while readings.last[0] < count:
        if time.monotonic() > deadline:
            tail = daemon.log.read_text()[-2000:]
            consumed = readings.last[0]
            raise SystemExit(f"timed out: {consumed:,} of {count:,} records consumed; log:\n{tail}")
        started, consumed = daemon.progress()
        if readings.first is None and started:
            # Timed from the first batch handed on: scaled, the first stage's, since the
            # stages before the last work from then on (and would be left out otherwise).
            readings.note(started, time.monotonic(), daemon.cpu_seconds())
        elif readings.first is not None and consumed and consumed != readings.last[0]:
            # The CPU is read only when records moved: the span ends at the last batch.
            readings.note(consumed, time.monotonic(), daemon.cpu_seconds())
        time.sleep(POLL_EVERY_S)
    run, (records, elapsed) = readings.run(), readings.timed
    print(loop_cpu_line(daemon, count))
    peak = daemon.stop()
    steady = ""
    if floor_steady is not None:
        steady = f"; {run.steady:,.0f} to {STEADY_SHARE:.0%}: {run.steady / floor_steady:.2f}"
    print(f"end-to-end: {records:,} records in {elapsed:.1f} s = {run.rate:,.0f}"
          f" records/s ({run.rate / floor:.2f} of the floor{steady};"
          f" first batch of {readings.untimed:,} not timed)")  # fmt: skip
    against = ""
    if floor_cpu_us is not None:
        against = f" (the floor's is {floor_cpu_us / run.cpu_us:.2f} of it)"
    print(f"daemon CPU (user + system, end-to-end run, same span):"
          f" {run.cpu_us:,.1f} µs/record{against}")  # fmt: skip
    print(f"daemon peak RSS (end-to-end run): {peak:.0f} MiB")
    return run


def produce_live(
    broker: EmbeddedBroker,
    topic: str,
    values: list[bytes],
    keys: list[bytes | None],
    rate: float,
    sent: list[float],
    through: ShipperName,
) -> None:
    """Send ``values`` at ``rate`` records/s ``through`` a shipper's client; each one's send
    time (monotonic) into ``sent``."""
    # The shipper's linger (up to 5 ms) counts in the latency, as send times are taken first.
    producer = shipper(through, broker.bootstrap)
    start = time.monotonic()
    for number, value in enumerate(values):
        ahead = start + number / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        sent[number] = time.monotonic()
        producer.send(topic, value, keys[number])
    producer.close()
    achieved = len(values) / (time.monotonic() - start)
    print(
        f"live: produced {len(values):,} records at {achieved:,.0f} records/s (asked {rate:,.0f})"
        f" through {through}"
    )


def latencies(
    receiver: AlertReceiver, sent: list[float], index: dict[str, int]
) -> tuple[dict[str, list[float]], int]:
    """Milliseconds from the newest evidence record's send to arrival, per alert kind; unmapped."""
    measured: dict[str, list[float]] = {}
    unmapped = 0
    _, arrived = receiver.snapshot()
    firsts = []  # each alert as it first arrived (its first send, with that send's evidence)
    while not receiver.arrivals.empty():
        firsts.append(receiver.arrivals.get_nowait())
    for alert in firsts:
        found = [index[e] for e in alert["evidence"] if index.get(e, len(sent)) < len(sent)]
        if not found:
            unmapped += 1
            continue
        latency = (arrived[alert["id"]] - max(sent[i] for i in found)) * 1000
        measured.setdefault(str(alert["kind"]), []).append(latency)
    return measured, unmapped


def describe(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered):,.0f} ms, p99 {p99:,.0f} ms, max {ordered[-1]:,.0f} ms"
        f" over {len(ordered):,} alerts"
    )


def bench_latency(
    broker: EmbeddedBroker, daemon: DaemonProcess, receiver: AlertReceiver,
    values: list[bytes], world: WorldIndex, rate: float, topic: str, through: ShipperName,
) -> None:  # fmt: skip
    """Produce live once the daemon is ready, wait until all is committed, print latencies."""
    wait_for(daemon.ready, "the live daemon to be ready (group joined, models loaded)")
    backlog = [0]
    done = threading.Event()
    sent = [0.0] * len(values)

    def sample() -> None:  # how far behind the daemon falls while records arrive
        while not done.wait(0.5):
            produced = sum(1 for moment in sent if moment)
            backlog[0] = max(backlog[0], produced - daemon.consumed())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    produce_live(broker, topic, values, world.keys, rate, sent, through)
    done.set()
    sampler.join()
    print(f"live: largest backlog seen (produced - committed, every 0.5 s): {backlog[0]:,} records")
    wait_for(lambda: daemon.consumed() >= len(values), "the live records to be committed", 0.1)
    counters = read_counters(daemon.get)
    peak = daemon.stop()
    measured, unmapped = latencies(receiver, sent, world.records)
    every = [value for values in measured.values() for value in values]
    if every:
        print(f"event-to-alert at {rate:,.0f} records/s: {describe(every)}")
        for kind, per_kind in sorted(measured.items()):
            print(f"  {kind} alerts: {describe(per_kind)}")
    else:
        print("event-to-alert: no alerts raised over the live records")
    if unmapped:
        print(f"  {unmapped} alerts not measured (no evidence among the produced records)")
    print(f"daemon peak RSS (live run): {peak:.0f} MiB")
    live = named(receiver.snapshot()[0])
    print("\n".join(compare(live, replay_alerts(values, daemon.config), counters)))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--days", type=int, default=22)
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, help="live records/s (instead of --latency-at)")
    parser.add_argument("--latency-at", type=float, nargs="+", default=[0.5, 0.9],
                        help="live rates as shares of the sustained rate")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="pairs of floor and daemon runs")
    parser.add_argument("--workers", type=int, default=1, help="ciwatch run --workers N")
    parser.add_argument("--partitions", type=int, default=1, help="partitions of the topics")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="service.scale: the keyed stages, over --partitions each",
    )
    parser.add_argument(
        "--client",
        choices=get_args(KafkaClient),
        default="kafka-python",
        help="the daemon's Kafka client (the floor is kafka-python's)",
    )
    parser.add_argument(
        "--topic-per-log-type",
        action="store_true",
        help="the throughput runs' records on a topic per log type, declared in the config",
    )
    parser.add_argument(
        "--shipper",
        choices=SHIPPERS,
        default="librdkafka",
        help="the live runs' producer (bench/shippers.py: kafka-python costs the daemon CPU)",
    )
    parser.add_argument(
        "--wall-lateness",
        type=float,
        default=SHIPPED_LATENESS_S,
        help="wall-clock seconds a live record may be late (bench/live_replay.py)",
    )
    parser.add_argument(
        "--shipped-lateness",
        action="store_true",
        help="the live daemons keep the shipped lateness in the bench's event time",
    )
    args = parser.parse_args()
    values = world_records(args.seed, args.days, args.people)
    print(f"world: seed {args.seed}, {args.people} people x {args.days} days"
          f" = {len(values):,} records; {args.partitions} partitions,"
          f" {args.workers} workers, {args.client}{', scaled' if args.scale else ''}"
          f"{', a topic per log type' if args.topic_per_log_type else ''}")  # fmt: skip
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="ciwatch-bench-") as tmp:
        rates = [args.rate] if args.rate else args.latency_at
        scale = args.partitions if args.scale else None
        lives = [f"live-{number}" for number in range(len(rates))]
        world = WorldIndex(values)
        record_topics, formats = bench_topics(world, args.topic_per_log_type)
        topics = sorted(set(record_topics))
        broker.create_topics([*topics, *lives], partitions=args.partitions)
        preload(broker, record_topics, values, world.keys)

        def throughput_daemon(number: int, url: str) -> DaemonProcess:
            settings = kafka_settings(broker, topics, f"bench-daemon-{number}", args.client)
            work = Path(tmp) / f"throughput-{number}"
            return DaemonProcess(
                work, settings, url, workers=args.workers, scale=scale, formats=formats
            )

        sustained = bench_throughput(broker, topics, len(values), args.rounds, throughput_daemon)
        for topic, share in zip(lives, rates, strict=True):
            rate = share if args.rate else sustained * share
            live = values[: int(rate * args.live_seconds)]
            if not live:  # --live-seconds 0: the throughput runs only
                continue
            wall = None if args.shipped_lateness else args.wall_lateness
            lateness = None if wall is None else world.lateness(wall, len(live), rate)
            if lateness:
                print(f"live: allowed lateness {lateness} of event time = {wall:g} s of wall clock")
            with AlertReceiver() as receiver:
                settings = kafka_settings(broker, topic, f"{topic}-daemon", args.client)
                work = Path(tmp) / topic
                daemon = DaemonProcess(
                    work, settings, receiver.url, workers=args.workers, scale=scale,
                    lateness=lateness,
                )  # fmt: skip
                bench_latency(broker, daemon, receiver, live, world, rate, topic, args.shipper)


if __name__ == "__main__":
    main()
