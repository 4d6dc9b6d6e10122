"""`ciwatch demo` as a process: it catches the injected attacks, reports them, and Ctrl-C ends it.

The demo starts its own broker, so these tests do not use the session broker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from detector.demo import AlertReceiver, Attack, match_alerts
from detector.generator import generate, labels

pytestmark = pytest.mark.integration

WORLD = ["--days", "10", "--people", "20", "--seed", "7"]
DEMO = [sys.executable, "-m", "detector", "demo"]


@pytest.fixture(scope="module")
def attacks() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = labels(generate(seed=7, days=10, people=20))["attacks"]
    return found


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The final table's rows by attack id (its first column)."""
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_demo_catches_every_rule_shaped_attack(attacks: list[dict[str, Any]]) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [*DEMO, "--duration", "20s", *WORLD], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - started < 60, "the demo overran its --duration"
    rows = table_rows(done.stdout)
    assert {attack["id"] for attack in attacks} <= rows.keys(), done.stdout
    caught = {sid for sid, row in rows.items() if row[2:3] == ["yes"]}
    rule_shaped = {attack["id"] for attack in attacks if attack["kind"] == "rule"}
    assert len(rule_shaped) == 16
    assert rule_shaped <= caught, done.stdout
    assert len(caught & {attack["id"] for attack in attacks}) >= 0.75 * len(attacks)
    assert "caught 16/16 rule-shaped" in done.stdout
    assert re.search(r"metrics at http://127\.0\.0\.1:\d+/metrics", done.stderr)
    assert "ALERT" in done.stderr


def test_ctrl_c_ends_the_demo_cleanly_with_the_table(
    tmp_path: Path, attacks: list[dict[str, Any]]
) -> None:
    err = tmp_path / "stderr.log"
    with err.open("wb") as handle:
        process = subprocess.Popen(
            [*DEMO, "--duration", "2m", *WORLD], stdout=subprocess.PIPE, stderr=handle
        )
        try:
            deadline = time.monotonic() + 60
            # A progress line: the daemon is consuming and records are being played.
            while "produced" not in err.read_text():
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "no progress line within 60 s"
                time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            out, _ = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err.read_text()[-3000:]
    assert time.monotonic() - interrupted < 10
    assert "stopped (SIGINT)" in err.read_text()
    assert {attack["id"] for attack in attacks} <= table_rows(out.decode()).keys()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:g} s"
        time.sleep(0.1)  # a poll interval inside the deadline, not a wait for the result


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``: their command lines by pid (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_to_the_whole_process_group_ends_the_demo_with_the_table_and_no_broker(
    tmp_path: Path, attacks: list[dict[str, Any]]
) -> None:
    """Ctrl-C at a terminal signals its foreground process group, not one process.

    The demo runs as the leader of a group of its own here, and SIGINT goes to
    the whole group (``killpg``), as a terminal sends it. The embedded broker
    must not be in that group: killed under the daemon, it made the daemon hang
    for minutes and end without the table.
    """
    err = tmp_path / "stderr.log"
    broker: list[int] = []
    with err.open("wb") as handle:
        process = subprocess.Popen(
            [*DEMO, "--duration", "2m", *WORLD],
            stdout=subprocess.PIPE,
            stderr=handle,
            start_new_session=True,
        )
        try:
            wait_for(lambda: "produced" in err.read_text() or process.poll() is not None,
                     60, "progress line")  # fmt: skip
            assert process.poll() is None, err.read_text()
            broker = [pid for pid, cmd in children(process.pid).items() if " broker " in cmd]
            assert len(broker) == 1, children(process.pid)
            os.killpg(process.pid, signal.SIGINT)
            interrupted = time.monotonic()
            out, _ = process.communicate(timeout=30)
            took = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            survivors = [pid for pid in broker if running(pid)]
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)  # no stray broker; the failure is asserted below
    assert process.returncode == 0, err.read_text()[-3000:]
    assert took < 20, f"the demo took {took:.0f} s to end after Ctrl-C"
    assert "stopped (SIGINT)" in err.read_text()
    assert {attack["id"] for attack in attacks} <= table_rows(out.decode()).keys()
    assert survivors == [], "the embedded broker outlived the demo"


def test_receiver_keeps_each_alert_once_at_its_highest_revision() -> None:
    alert = {"id": "a1", "revision": 0, "time": "2026-01-08T03:16:00Z", "actor": "nikosp"}
    with AlertReceiver() as receiver:
        for revision in (0, 1, 0):
            body = orjson.dumps([{**alert, "revision": revision}])
            assert httpx.post(receiver.url, content=body).status_code == 200
        assert httpx.post(receiver.url, content=b"{broken").status_code == 400
    alerts, arrived = receiver.snapshot()
    assert [a["revision"] for a in alerts] == [1]
    assert list(arrived) == ["a1"] and receiver.arrivals.qsize() == 1


def test_alerts_match_attacks_by_evidence_or_by_name_within_the_span() -> None:
    attack = Attack.from_label(
        {"id": "mass-clone", "kind": "rule", "actors": ["nikosp"], "keys": ["10.0.0.1"],
         "start": "2026-01-08T03:00:00Z", "end": "2026-01-08T03:10:00Z",
         "events": ["github_audit:e1"]}
    )  # fmt: skip
    cited = {"id": "1", "time": "2026-01-09T00:00:00Z", "evidence": ["github_audit:e1"]}
    named = {"id": "2", "time": "2026-01-08T03:11:30Z", "actor": "x", "key": {"ip": "10.0.0.1"}}
    later = {"id": "3", "time": "2026-01-08T03:13:00Z", "actor": "nikosp"}
    found, false_alerts = match_alerts([attack], [cited, named, later])
    assert [a["id"] for a in found["mass-clone"]] == ["1", "2"]
    assert false_alerts == [later]
