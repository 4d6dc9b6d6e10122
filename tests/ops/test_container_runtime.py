"""The image's runtime contract, without a container engine: bubblewrap stands in for one.

The Dockerfile's own ENTRYPOINT + CMD run with its final-stage ENV, as uid/gid
10001, on a read-only root with a tmpfs /tmp and one writable bind mount (the
state volume), as PID 1 of its own PID namespace, as in a container. The
``ciwatch`` console script of this environment stands in for the image's venv.
The network namespace is shared so that loopback reaches a real broker.
Checked: readiness with environment-only configuration, consuming and
checkpointing into the state dir, the HEALTHCHECK command (in a second
sandbox, as ``docker exec`` would run it), and a clean exit 0 on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import orjson
import pytest

from detector.generator import MERGED, generate, write
from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import metrics, produce, total, wait_for
from tests.ops import REPO_ROOT, dockerfile

pytestmark = pytest.mark.integration

UID = "10001"
HOME = "/nonexistent"
"""What Docker sets HOME to for the image's user (its passwd entry); it does not exist."""
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the python:3.11-slim base, which the Dockerfile's ENV PATH extends."""
TOPIC = "ciwatch-container"
WAIT_S = 45.0
"""The broker's group join takes half the default 45 s session timeout (not settable by env)."""
STOP_S = 30.0


def code_under_tmp() -> list[str]:
    """Read-only binds for this interpreter and checkout when they live under /tmp.

    The image carries its code in /opt/ciwatch; here it is wherever the test
    runs from, which a fresh tmpfs on /tmp would otherwise hide.
    """
    places = {Path(sys.prefix), Path(sys.base_prefix), REPO_ROOT}
    inside = sorted(str(p.resolve()) for p in places if p.resolve().is_relative_to("/tmp"))
    return [arg for place in inside for arg in ("--ro-bind", place, place)]


def sandbox(state: Path, command: Sequence[str], *, extra: Sequence[str] = ()) -> list[str]:
    """``command`` under bwrap as the image runs: read-only root, tmpfs /tmp, state writable."""
    return [
        "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        *code_under_tmp(), "--bind", str(state), str(state),
        "--unshare-user", "--uid", UID, "--gid", UID, "--die-with-parent", *extra, "--", *command,
    ]  # fmt: skip


def image_environment(state: Path, overrides: Mapping[str, str]) -> dict[str, str]:
    """The Dockerfile's final-stage ENV; this interpreter's bin first on PATH, state in ``state``.

    HOME is what Docker would set; the image has none, so nothing may need one.
    """
    written = dockerfile.env(dockerfile.parse(REPO_ROOT / "Dockerfile"))
    environment = {
        name: dockerfile.expand(value, {"PATH": BASE_PATH}) for name, value in written.items()
    }
    environment["PATH"] = f"{Path(sys.executable).parent}:{environment['PATH']}"
    environment.update(HOME=HOME, CIWATCH_STATE_DIR=str(state), **overrides)
    return environment


class Container:
    """The image's ENTRYPOINT + CMD as PID 1 of a bwrap sandbox, its output in ``log``."""

    def __init__(self, state: Path, environment: Mapping[str, str], log: Path) -> None:
        steps = dockerfile.parse(REPO_ROOT / "Dockerfile")
        self.command = [*dockerfile.entrypoint(steps), *dockerfile.cmd(steps)]
        self.state, self.environment, self.log = state, dict(environment), log
        self.healthcheck = dockerfile.healthcheck(steps)
        self.port = int(environment["CIWATCH_HTTP_PORT"])
        reader, writer = os.pipe()
        extra = ["--unshare-pid", "--as-pid-1", "--info-fd", str(writer)]
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                sandbox(state, self.command, extra=extra),
                env=self.environment, stdout=handle, stderr=handle, pass_fds=(writer,),
            )  # fmt: skip
        os.close(writer)
        with os.fdopen(reader, "rb") as info:
            # bwrap writes the child's pid (outside the sandbox) once the sandbox is set up.
            self.pid = int(json.loads(info.read())["child-pid"])

    def run_healthcheck(self) -> int:
        """The Dockerfile's HEALTHCHECK command in a second sandbox; its exit code."""
        assert self.healthcheck is not None, "no HEALTHCHECK"
        done = subprocess.run(
            sandbox(self.state, self.healthcheck.argv), env=self.environment,
            capture_output=True, timeout=15, check=False,
        )  # fmt: skip
        return done.returncode

    def stop(self) -> tuple[int, float]:
        """SIGTERM to the entrypoint, as ``docker stop`` sends it; (exit code, seconds taken)."""
        started = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        code = self.process.wait(timeout=STOP_S)
        return code, time.monotonic() - started


def status(port: int, path: str) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2.0).status_code
    except httpx.TransportError:
        return 0


def checkpoint_offsets(state: Path) -> int:
    """The sum of the offsets in the state dir's checkpoint (0: none yet)."""
    path = state / "checkpoint.json"
    if not path.exists():
        return 0
    index = orjson.loads(path.read_bytes().splitlines()[-1])  # the last line: offsets, sections
    return sum(int(item["offset"]) for item in index["offsets"])


@pytest.fixture(scope="module")
def records(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    directory = tmp_path_factory.mktemp("world")
    write(generate(seed=7, days=3, people=20), directory)
    values = (directory / MERGED).read_bytes().splitlines()
    broker.create_topics([TOPIC], partitions=1)
    produce(broker, TOPIC, values)
    return values


@pytest.fixture(scope="module")
def container(
    broker: EmbeddedBroker, records: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    state = tmp_path_factory.mktemp("state")
    settings = {
        "CIWATCH_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CIWATCH_TOPICS": TOPIC,
        "CIWATCH_GROUP_ID": "ciwatch-container",
        "CIWATCH_HTTP_PORT": str(free_port()),
    }
    running = Container(state, image_environment(state, settings), state.parent / "ciwatch.log")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)


def test_sandbox_runs_as_uid_10001_and_only_the_state_dir_and_tmp_are_writable(
    tmp_path: Path,
) -> None:
    environment = image_environment(tmp_path, {})
    script = (
        "import os, pathlib, sys\n"
        "print(os.getuid(), os.getgid())\n"
        "for place in sys.argv[1:]:\n"
        "    try:\n"
        "        (pathlib.Path(place) / 'probe').write_text('x')\n"
        "        print(place, 'writable')\n"
        "    except OSError as exc:\n"
        "        print(place, exc.errno)\n"
    )
    places = ["/", "/usr", "/etc", str(tmp_path), "/tmp"]
    done = subprocess.run(
        sandbox(tmp_path, ["python", "-c", script, *places]), env=environment,
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0] == f"{UID} {UID}"
    verdicts = dict(line.rsplit(" ", 1) for line in lines[1:])
    assert verdicts == {"/": "30", "/usr": "30", "/etc": "30", str(tmp_path): "writable",
                        "/tmp": "writable"}  # fmt: skip
    ids = subprocess.run(
        sandbox(tmp_path, ["id", "-u"]), env=environment,
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert ids.stdout.strip() == UID


def test_entrypoint_and_cmd_become_ready_from_environment_alone(container: Container) -> None:
    assert container.command == ["ciwatch", "run"]
    wait_for(lambda: status(container.port, "/readyz") == 200, "/readyz 200", timeout=WAIT_S)
    assert status(container.port, "/healthz") == 200


def test_consumes_the_events_and_checkpoints_into_the_state_dir(
    container: Container, records: list[bytes]
) -> None:
    def consumed() -> float:
        return total(metrics(container.port), "ciwatch_records_consumed")

    wait_for(lambda: consumed() == len(records), "every record consumed", timeout=WAIT_S)
    wait_for(lambda: checkpoint_offsets(container.state) > 0, "a checkpoint", timeout=WAIT_S)
    assert (container.state / "checkpoint.json").is_file()


def test_healthcheck_command_passes_while_it_runs(container: Container) -> None:
    wait_for(lambda: status(container.port, "/healthz") == 200, "/healthz 200", timeout=WAIT_S)
    assert container.run_healthcheck() == 0


def test_sigterm_stops_it_with_exit_0_and_the_healthcheck_fails_after(
    container: Container, records: list[bytes]
) -> None:
    wait_for(lambda: status(container.port, "/readyz") == 200, "/readyz 200", timeout=WAIT_S)
    code, seconds = container.stop()
    assert code == 0
    assert seconds < STOP_S
    assert container.run_healthcheck() != 0
    # The final checkpoint reflects every record: state was written where it may be.
    assert checkpoint_offsets(container.state) == len(records)
    log = container.log.read_text(encoding="utf-8", errors="replace")
    assert "stopped (SIGTERM)" in log
    assert "Read-only file system" not in log
    assert "Traceback" not in log
