"""Every command, given bad input, ends in one line naming the file or key: no traceback.

The matrix is commands by bad inputs (a missing file, a directory where a file
belongs, non-UTF-8 text, invalid YAML, an unknown key, a bad value, an option out
of range, a file no one can open, an empty file). Each case asserts the exit
status of the documented table (:mod:`detector.cli`, docs/cli.md), exactly one
``ciwatch: error:`` line on stderr naming where, and no traceback. Most run
``main()`` in-process; the entry point itself (``python -m detector``) and
``ciwatch run`` against a closed port run as real processes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from detector.cli import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, main

GOOD_RULE = """\
- id: many-failures
  title: Many failed sign-ins
  kind: threshold
  severity: high
  description: Many failed sign-ins for one user.
  where: {source: okta_system_log, outcome: failure}
  threshold: {window: 10m, count: 10}
"""

# What each YAML-reading role calls an unknown key and a bad value, and what the
# error must then name.
BAD_CONTENT: dict[str, dict[str, tuple[str, list[str]]]] = {
    "config": {
        "unknown_key": ("features:\n  learning_perod: 1d\n", ["features.learning_perod"]),
        "bad_value": ("normalizer:\n  max_record_bytes: -5\n", ["normalizer.max_record_bytes"]),
    },
    "pack": {
        "unknown_key": (
            "rules:\n" + textwrap.indent(GOOD_RULE + "  colour: red\n", "  "),
            ["rule many-failures: colour", "unknown key"],
        ),
        "bad_value": (
            "rules:\n" + textwrap.indent(GOOD_RULE.replace("10m", "10x"), "  "),
            ["rule many-failures: threshold.window", "invalid duration '10x'"],
        ),
    },
    "taxonomy": {
        "unknown_key": ("source: vcs\nactoins: {repo.create: other}\n", ["actoins"]),
        "bad_value": ("source: vcs\nactions: {repo.create: codeaccess}\n", ["repo.create"]),
    },
}
BAD_YAML = "first: 1\nsecond: [unclosed\n"  # the parser finds the problem on line 3


@dataclass
class Case:
    argv: list[str]
    names: list[str]  # what the error line must contain (file, line, key, option)
    status: int = EXIT_USAGE


@dataclass
class Files:
    """A place for test files, and a JSONL file of one valid event."""

    root: Path

    @property
    def events(self) -> Path:
        path = self.root / "events.jsonl"
        if not path.exists():
            path.write_text('{"eventType": "user.session.start"}\n', encoding="utf-8")
        return path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


@pytest.fixture
def unopenable() -> Iterator[Path]:
    """A file no one can open: mode 000 for an ordinary user. For root (as in CI),
    whom file modes do not stop, a UNIX socket, which ``open()`` refuses everyone."""
    # A short directory: a socket's path is limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="cw") as directory:
        path = Path(directory) / "locked.yaml"
        if os.geteuid() != 0:
            path.write_text("features: {}\n", encoding="utf-8")
            path.chmod(0)
        else:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.bind(str(path))
        yield path
        if path.is_file():
            path.chmod(0o600)


def bad_file(files: Files, role: str, kind: str, *, under: str = "") -> tuple[Path, list[str]]:
    """A bad file of ``kind`` for a YAML-reading ``role`` (in the folder ``under``), and
    what its error must name."""
    if under:
        files.directory(under)
    suffix = f"{role}.yaml"
    kind_name = f"{under}/{kind}" if under else kind
    if kind == "missing":
        path = files.root / f"{kind_name}-{suffix}"
        return path, [str(path)]
    if kind == "directory":
        path = files.directory(f"{kind_name}-{suffix}")
        return path, [str(path)]
    if kind == "not_utf8":
        path = files.write(f"{kind_name}-{suffix}", "# café\n".encode("latin-1"))
        return path, [str(path), "not UTF-8"]
    if kind == "bad_yaml":
        path = files.write(f"{kind_name}-{suffix}", BAD_YAML)
        return path, [f"{path}:3: not valid YAML"]
    content, names = BAD_CONTENT[role][kind]
    path = files.write(f"{kind_name}-{suffix}", content)
    return path, [str(path), *names]


CONFIG_KINDS = ["missing", "directory", "not_utf8", "bad_yaml", "unknown_key", "bad_value"]


def config_argv(command: str, config: Path, files: Files) -> list[str]:
    out = files.root / "out"
    return {
        "replay": ["replay", str(files.events), "--alerts-out", str(out), "--config", str(config)],
        "train": ["train", str(files.events), "--out", str(out), "--config", str(config)],
        "validate": ["validate", "--config", str(config)],
        "test-rules": ["test-rules", "--config", str(config)],
        "run": ["run", "--config", str(config)],  # fails at the config, before any broker
    }[command]


CONFIG_COMMANDS = ["replay", "train", "validate", "test-rules", "run"]


def invoke(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``main(argv)``'s exit status (argparse's SystemExit included) and its stderr."""
    try:
        status = main(argv)
    except SystemExit as done:
        status = int(done.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out
    return status, err


def assert_one_error_line(err: str, names: list[str]) -> str:
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("ciwatch: error: ")]
    assert len(errors) == 1, err
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def check(case: Case, capsys: pytest.CaptureFixture[str]) -> str:
    status, err = invoke(case.argv, capsys)
    line = assert_one_error_line(err, case.names)
    assert status == case.status, err
    assert err.splitlines() == [line], "nothing but the error line"
    return line


@pytest.mark.parametrize("kind", CONFIG_KINDS)
@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_a_bad_config_file_is_one_line_naming_it(
    command: str, kind: str, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    config, names = bad_file(files, "config", kind)
    check(Case(config_argv(command, config, files), names), capsys)


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_an_unopenable_config_file_is_one_line_naming_it(
    command: str, files: Files, unopenable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = config_argv(command, unopenable, files)
    check(Case(argv, [str(unopenable), "cannot read config"]), capsys)


def data_argv(command: str, path: Path, files: Files) -> list[str]:
    out = str(files.root / "out")
    return {
        "normalize": ["normalize", str(path)],
        "replay": ["replay", str(path), "--alerts-out", out, "--no-models"],
        "train": ["train", str(path), "--out", out],
    }[command]


@pytest.mark.parametrize("kind", ["missing", "empty_directory", "unopenable"])
@pytest.mark.parametrize("command", ["normalize", "replay", "train"])
def test_a_bad_input_file_is_one_line_naming_it(
    command: str,
    kind: str,
    files: Files,
    unopenable: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = {
        "missing": files.root / "missing.jsonl",
        "empty_directory": files.directory("no-logs-here"),
        "unopenable": unopenable,
    }[kind]
    check(Case(data_argv(command, path, files), [str(path)]), capsys)


@pytest.mark.parametrize(
    "kind", [*CONFIG_KINDS, "empty", "empty_directory", "unopenable", "unknown_rule"]
)
def test_a_bad_rule_pack_is_one_line_naming_it(
    kind: str, files: Files, unopenable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "empty":
        pack, names = files.write("empty.yaml", ""), ["empty.yaml", "no rules"]
    elif kind == "empty_directory":
        pack = files.directory("no-packs")
        names = [str(pack), "no rules"]
    elif kind == "unopenable":
        pack, names = unopenable, [str(unopenable)]
    elif kind == "unknown_rule":
        pack = files.write("good.yaml", "rules:\n" + textwrap.indent(GOOD_RULE, "  "))
        check(Case(["test-rules", str(pack), "--rule", "nope"], ["--rule", "nope"]), capsys)
        return
    else:
        pack, names = bad_file(files, "pack", kind)
    check(Case(["test-rules", str(pack)], names), capsys)


@pytest.mark.parametrize("kind", ["missing", "not_utf8", "bad_yaml", "unknown_key", "bad_value"])
def test_a_bad_pack_named_in_the_config_is_one_line_naming_the_pack(
    kind: str, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, names = bad_file(files, "pack", kind)
    config = files.write("pipeline.yaml", f"rules:\n  packs: ['{pack}']\n")
    argv = ["replay", str(files.events), "--alerts-out", str(files.root / "a"), "--no-models"]
    check(Case([*argv, "--config", str(config)], names), capsys)


@pytest.mark.parametrize(
    "kind", ["missing", "a_file", "not_utf8", "bad_yaml", "unknown_key", "bad_value", "empty"]
)
def test_a_bad_taxonomy_is_one_line_naming_it(
    kind: str, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = files.directory("taxonomy")
    if kind == "missing":
        directory, names = files.root / "no-taxonomy", [str(files.root / "no-taxonomy")]
    elif kind == "a_file":
        directory, names = files.events, [str(files.events), "not a directory"]
    elif kind == "empty":
        path = files.write("taxonomy/empty.yaml", "")
        names = [str(path), "expected a mapping"]
    else:
        _, names = bad_file(files, "taxonomy", kind, under="taxonomy")
    check(Case(["normalize", str(files.events), "--taxonomy", str(directory)], names), capsys)


def output_cases(files: Files) -> dict[str, Case]:
    taken = files.events  # a file where a directory should be created
    folder = files.directory("a-folder")  # a directory where a file should be written
    replay = ["replay", str(files.events), "--no-models"]
    return {
        "replay_alerts_into_a_directory": Case(
            [*replay, "--alerts-out", str(folder)], [str(folder)]
        ),
        "normalize_dead_letters_into_a_directory": Case(
            ["normalize", str(files.events), "--dead-letters", str(folder)], [str(folder)]
        ),
        "train_models_over_a_file": Case(
            ["train", str(files.events), "--out", str(taken)], [str(taken)]
        ),
        "generate_over_a_file": Case(["generate", "--out", str(taken)], [str(taken)]),
        "generate_under_a_file": Case(
            ["generate", "--out", str(taken / "logs")], [str(taken / "logs")]
        ),
    }


OUTPUTS = [
    "replay_alerts_into_a_directory",
    "normalize_dead_letters_into_a_directory",
    "train_models_over_a_file",
    "generate_over_a_file",
    "generate_under_a_file",
]


@pytest.mark.parametrize("name", OUTPUTS)
def test_an_output_that_cannot_be_written_is_one_line_naming_it(
    name: str, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    check(output_cases(files)[name], capsys)


OPTIONS: dict[str, tuple[Callable[[Files], list[str]], list[str]]] = {
    "replay_sort_memory_zero": (
        lambda f: ["replay", str(f.events), "--alerts-out", "a", "--sort-memory", "0"],
        ["replay: argument --sort-memory", "'0'"],
    ),
    "normalize_max_record_bytes_zero": (
        lambda f: ["normalize", str(f.events), "--max-record-bytes", "0"],
        ["normalize: argument --max-record-bytes", "at least 1"],
    ),
    "normalize_unknown_format": (
        lambda f: ["normalize", str(f.events), "--format", "nope"],
        ["argument --format", "'nope'"],
    ),
    "train_alert_rate_too_high": (
        lambda f: ["train", str(f.events), "--out", "m", "--target-alert-rate", "0.7"],
        ["train: argument --target-alert-rate", "below 0.5"],
    ),
    "train_alert_rate_not_a_number": (
        lambda f: ["train", str(f.events), "--out", "m", "--target-alert-rate", "nan"],
        ["argument --target-alert-rate"],
    ),
    "train_negative_seed": (
        lambda f: ["train", str(f.events), "--out", "m", "--seed", "-1"],
        ["train: argument --seed", "from 0 to"],
    ),
    "train_unknown_detector": (
        lambda f: ["train", str(f.events), "--out", str(f.root / "m"), "--detector", "nope"],
        ["detector", "unknown detector 'nope'"],
    ),
    "generate_days_out_of_range": (
        lambda f: ["generate", "--out", str(f.root / "g"), "--days", "0"],
        ["days: must be from"],
    ),
    "demo_speed_zero": (lambda f: ["demo", "--speed", "0"], ["demo: argument --speed"]),
    "demo_duration_zero": (
        lambda f: ["demo", "--duration", "0s"],
        ["demo: argument --duration", "greater than zero"],
    ),
    "unknown_command": (lambda f: ["nonsense"], ["invalid choice: 'nonsense'"]),
    "missing_required_option": (
        lambda f: ["replay", str(f.events)],
        ["replay: the following arguments are required: --alerts-out"],
    ),
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_a_bad_option_is_one_line_naming_it(
    name: str, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, names = OPTIONS[name]
    check(Case(argv(files), names), capsys)


def test_an_empty_config_means_every_default(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not an error: an empty pipeline file is the defaults (the brief's "empty file").
    config = files.write("empty.yaml", "")
    assert main(["validate", "--config", str(config)]) == 0
    assert capsys.readouterr().err == ""


def test_validate_exits_1_for_what_it_found_and_2_when_it_cannot_start(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    config = files.write("pipeline.yaml", f"models:\n  dir: '{files.directory('models')}'\n")
    assert main(["validate", "--config", str(config)]) == EXIT_FAILED
    assert_one_error_line(capsys.readouterr().err, [str(files.root / "models")])


def test_control_characters_in_a_file_name_cannot_break_the_line(
    files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    config = files.root / "evil\n\x1b[2Jname.yaml"
    line = check(Case(["validate", "--config", str(config)], ["\\x0a\\x1b[2Jname.yaml"]), capsys)
    assert "\x1b" not in line


def run_process(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    # No CIWATCH_* variable from the caller's environment may redirect the command.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIWATCH_")}
    return subprocess.run(
        [sys.executable, "-m", "detector", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


def test_the_entry_point_prints_one_line_and_no_traceback(files: Files) -> None:
    config, names = bad_file(files, "config", "bad_yaml")
    done = run_process(config_argv("replay", config, files), timeout_s=60)
    assert done.returncode == EXIT_USAGE
    assert done.stderr == f"ciwatch: error: {names[0]}: did not find expected ',' or ']'\n"


def closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_run_without_a_broker_ends_in_one_line_and_exit_3(files: Files) -> None:
    port = closed_port()
    config = files.write(
        "pipeline.yaml",
        "service:\n  http_port: 0\n  kafka:\n"
        f"    bootstrap_servers: ['127.0.0.1:{port}']\n    topics: [audit]\n"
        "    bootstrap_timeout_ms: 1000\n",
    )
    started = time.monotonic()
    done = run_process(["run", "--config", str(config), "--log-level", "error"], timeout_s=60)
    elapsed = time.monotonic() - started
    assert done.returncode == EXIT_UNREACHABLE, done.stderr
    # kafka-python logs each refused attempt (JSON lines); the last line is ours.
    line = assert_one_error_line(done.stderr, [f"127.0.0.1:{port}", "cannot connect"])
    assert done.stderr.splitlines()[-1] == line
    # The bootstrap timeout bounds it: 1 s of retries plus the start-up.
    assert elapsed < 30, elapsed
