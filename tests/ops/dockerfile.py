"""A small Dockerfile reader for tests that check an image without a container engine.

No engine runs where these tests run, so the Dockerfile is read as data: its
instructions per stage, the final stage's ENV, USER, ENTRYPOINT, CMD and
HEALTHCHECK, and which build-context paths ``.dockerignore`` leaves out.

>>> steps = parse_text('FROM a AS b\\nRUN x \\\\\\n  && y\\nFROM c\\nCMD ["run"]\\n')
>>> [(s.stage, s.keyword) for s in steps]
[(0, 'FROM'), (0, 'RUN'), (1, 'FROM'), (1, 'CMD')]
>>> cmd(steps)
['run']

Supported: parser directives (``# escape=``), line continuations, comment
lines (also inside a continuation), exec and shell forms. Not supported:
heredocs (``RUN <<EOF``), which this project does not use; they raise.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CopyArgs",
    "Healthcheck",
    "Instruction",
    "cmd",
    "copy_args",
    "entrypoint",
    "env",
    "exec_form",
    "expand",
    "final_stage",
    "from_image",
    "healthcheck",
    "ignored",
    "labels",
    "parse",
    "parse_text",
    "read_dockerignore",
    "split_flags",
    "stage_count",
    "stage_instructions",
    "user",
]

_DIRECTIVE = re.compile(r"#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``stage`` counts FROMs from 0; global ARGs before the first are -1."""

    stage: int
    keyword: str
    """Upper-cased, e.g. ``RUN``."""
    args: str
    """Everything after the keyword, continuation lines joined, comment lines dropped."""
    line: int = 0
    """1-based line where the instruction starts (for messages)."""


@dataclass(frozen=True)
class Healthcheck:
    """``HEALTHCHECK [--option=value ...] CMD <args>``."""

    options: dict[str, str]
    args: str
    """The command as written: a JSON array (exec form) or a shell command."""

    @property
    def argv(self) -> list[str]:
        """The exec-form command; ``ValueError`` for the shell form."""
        return exec_form(self.args)


@dataclass(frozen=True)
class CopyArgs:
    """``COPY``/``ADD``: ``--flags``, the sources and the destination."""

    flags: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    destination: str = ""


def parse(path: Path | str) -> list[Instruction]:
    """The instructions of the Dockerfile at ``path``."""
    return parse_text(Path(path).read_text(encoding="utf-8"))


def parse_text(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile's text (see the module docstring for what is read)."""
    lines = text.splitlines()
    escape = _escape_directive(lines)
    instructions: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        # Comment and blank lines end nothing: inside a continuation Docker drops them too.
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith(escape)
        pending.append(raw.rstrip()[:-1] if continued else raw)
        if continued:
            continue
        keyword, _, args = "".join(pending).strip().partition(" ")
        pending = []
        keyword = keyword.upper()
        if args.lstrip().startswith("<<"):
            raise ValueError(f"line {start}: heredocs are not supported")
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip(), start))
    if pending:
        raise ValueError(f"line {start}: the last instruction ends in a line continuation")
    return instructions


def _escape_directive(lines: Sequence[str]) -> str:
    # Parser directives are only read before the first instruction, comment or blank line.
    for raw in lines:
        found = _DIRECTIVE.match(raw.strip())
        if found is None:
            break
        if found.group(1).lower() == "escape":
            return found.group(2)
    return "\\"


def exec_form(args: str) -> list[str]:
    """The JSON-array (exec) form as a list; ``ValueError`` for the shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        raise ValueError(f"not in exec form (a JSON array of strings): {args!r}") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"not in exec form (a JSON array of strings): {args!r}")
    return value


def split_flags(args: str) -> tuple[dict[str, str], str]:
    """Leading ``--name=value`` (or bare ``--name``) flags, and the rest of ``args``."""
    flags: dict[str, str] = {}
    rest = args.strip()
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    return flags, rest


def stage_count(instructions: Sequence[Instruction]) -> int:
    """How many stages (FROM instructions) there are."""
    return sum(1 for step in instructions if step.keyword == "FROM")


def stage_instructions(instructions: Sequence[Instruction], stage: int) -> list[Instruction]:
    """The instructions of one stage, its FROM first; ``stage=-1`` is the last stage."""
    if stage < 0:
        stage = stage_count(instructions) - 1
    return [step for step in instructions if step.stage == stage]


def final_stage(instructions: Sequence[Instruction]) -> list[Instruction]:
    """The instructions of the last stage: what the image is."""
    return stage_instructions(instructions, -1)


def from_image(instruction: Instruction) -> tuple[str, str | None]:
    """A FROM's image reference and its ``AS`` name (or ``None``)."""
    if instruction.keyword != "FROM":
        raise ValueError(f"line {instruction.line}: not a FROM")
    _, rest = split_flags(instruction.args)
    words = rest.split()
    alias = words[2] if len(words) == 3 and words[1].lower() == "as" else None
    return words[0], alias


def _pairs(instruction: Instruction) -> dict[str, str]:
    """ENV/LABEL ``key=value ...`` pairs, or the legacy ``ENV key value`` form."""
    words = shlex.split(instruction.args)
    if words and "=" not in words[0]:
        key, _, value = instruction.args.strip().partition(" ")
        return {key: value.strip()}
    pairs: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"line {instruction.line}: {word!r} is not key=value")
        pairs[key] = value
    return pairs


def env(instructions: Sequence[Instruction]) -> dict[str, str]:
    """The final stage's ENV as written (``$PATH`` left unexpanded; see :func:`expand`).

    Only the final stage's own ENVs: an image inherits those of its base too,
    which a Dockerfile does not show.
    """
    found: dict[str, str] = {}
    for step in final_stage(instructions):
        if step.keyword == "ENV":
            found.update(_pairs(step))
    return found


def labels(instructions: Sequence[Instruction]) -> dict[str, str]:
    """The final stage's LABELs as written (ARG references unexpanded)."""
    found: dict[str, str] = {}
    for step in final_stage(instructions):
        if step.keyword == "LABEL":
            found.update(_pairs(step))
    return found


def _last(instructions: Sequence[Instruction], keyword: str) -> Instruction | None:
    matching = [step for step in final_stage(instructions) if step.keyword == keyword]
    return matching[-1] if matching else None


def user(instructions: Sequence[Instruction]) -> str | None:
    """The final stage's last USER (``None``: the base image's, usually root)."""
    step = _last(instructions, "USER")
    return step.args if step is not None else None


def entrypoint(instructions: Sequence[Instruction]) -> list[str]:
    """The final stage's ENTRYPOINT in exec form ([] if none; ``ValueError`` for shell form)."""
    step = _last(instructions, "ENTRYPOINT")
    return exec_form(step.args) if step is not None else []


def cmd(instructions: Sequence[Instruction]) -> list[str]:
    """The final stage's CMD in exec form ([] if none; ``ValueError`` for shell form)."""
    step = _last(instructions, "CMD")
    return exec_form(step.args) if step is not None else []


def healthcheck(instructions: Sequence[Instruction]) -> Healthcheck | None:
    """The final stage's HEALTHCHECK; ``None`` if absent or ``HEALTHCHECK NONE``."""
    step = _last(instructions, "HEALTHCHECK")
    if step is None or step.args.strip().upper() == "NONE":
        return None
    options, rest = split_flags(step.args)
    keyword, _, command = rest.partition(" ")
    if keyword.upper() != "CMD":
        raise ValueError(f"line {step.line}: HEALTHCHECK without CMD")
    return Healthcheck(options, command.strip())


def copy_args(instruction: Instruction) -> CopyArgs:
    """A COPY's or ADD's flags, sources and destination (exec or whitespace form)."""
    if instruction.keyword not in {"COPY", "ADD"}:
        raise ValueError(f"line {instruction.line}: not a COPY or ADD")
    flags, rest = split_flags(instruction.args)
    words = exec_form(rest) if rest.startswith("[") else rest.split()
    if len(words) < 2:
        raise ValueError(f"line {instruction.line}: COPY needs a source and a destination")
    return CopyArgs(flags, words[:-1], words[-1])


_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::-([^}]*))?\}|(\w+))")


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Docker's ``$VAR``, ``${VAR}`` and ``${VAR:-default}`` substitution (unset: empty)."""

    def substitute(found: re.Match[str]) -> str:
        name = found.group(1) or found.group(3)
        default = found.group(2)
        known = variables.get(name, "")
        return known if known or default is None else default

    return _VARIABLE.sub(substitute, value)


def read_dockerignore(path: Path | str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, comments and blank lines dropped."""
    patterns = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def ignored(relative: str, patterns: Sequence[str]) -> bool:
    """Whether ``.dockerignore`` patterns leave the context path ``relative`` out.

    Docker's rules: the last matching pattern wins, ``!`` re-includes, and a
    pattern matching a parent directory matches everything below it.
    """
    parts = [part for part in relative.strip("/").split("/") if part not in {"", "."}]
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").strip().strip("/").removeprefix("./"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    at = 0
    while at < len(pattern):
        if pattern.startswith("**/", at):
            out.append("(?:.*/)?")
            at += 3
        elif pattern.startswith("**", at):
            out.append(".*")
            at += 2
        elif pattern[at] == "*":
            out.append("[^/]*")
            at += 1
        elif pattern[at] == "?":
            out.append("[^/]")
            at += 1
        elif pattern[at] == "[" and "]" in pattern[at + 1 :]:
            end = pattern.index("]", at + 1)
            body = pattern[at + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            at = end + 1
        else:
            out.append(re.escape(pattern[at]))
            at += 1
    return re.compile("".join(out))
