"""``ciwatch normalize``: vendor audit events (JSON files) → normalized events (JSONL)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from pathlib import Path
from typing import IO

import orjson

from detector.cli.options import int_option
from detector.errors import ConfigError
from detector.events.model import DeadLetter
from detector.events.normalizer import AUTO, Limits, Normalizer
from detector.events.parsers import PARSERS
from detector.events.taxonomy import Taxonomy, bundled_taxonomy_dir
from detector.sources.files import FileSource

__all__ = ["add_command", "dead_letter_file", "dead_letter_summary", "write_dead_letter"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    normalize = commands.add_parser(
        "normalize",
        help="vendor audit events (JSON files) → normalized events (JSONL) on stdout",
        description=(
            "Read files, directories (recursively, in sorted path order, hidden names "
            "skipped) and '-' for stdin, in the order given; each file may be gzip or zstd "
            "compressed, and JSON Lines, a JSON array of events, concatenated objects or one "
            "pretty-printed document (detected per file). Write one normalized event per line "
            "to stdout, dead letters to --dead-letters or stderr, and a summary line on stderr."
        ),
    )
    normalize.add_argument(
        "files", nargs="+", metavar="FILE", help="a file, a directory, or '-' for stdin"
    )
    normalize.add_argument(
        "--format",
        default=AUTO,
        choices=[AUTO, *sorted(PARSERS)],
        help="log type of every input (default: detect per event)",
    )
    normalize.add_argument(
        "--dead-letters", metavar="FILE", type=Path, help="write dead letters here as JSONL"
    )
    normalize.add_argument(
        "--taxonomy",
        metavar="DIR",
        type=Path,
        action="append",
        default=[],
        help="extra taxonomy directory, loaded after the bundled one (repeatable)",
    )
    normalize.add_argument(
        "--max-record-bytes",
        type=int_option(1),
        default=Limits().max_record_bytes,
        metavar="N",
        help="longest record read; longer ones are dead letters (default 1 MiB)",
    )
    normalize.add_argument("--with-raw", action="store_true", help="include the vendor object")
    normalize.set_defaults(handler=_run_normalize)


def _run_normalize(args: argparse.Namespace) -> int:
    taxonomy = Taxonomy.from_dirs([bundled_taxonomy_dir(), *args.taxonomy])
    limits = Limits(max_record_bytes=args.max_record_bytes)
    normalizer = Normalizer(taxonomy, default_format=args.format, limits=limits)
    out = sys.stdout.buffer
    events = 0
    reasons: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    with (
        FileSource(args.files, max_record_bytes=limits.max_record_bytes) as source,
        dead_letter_file(args.dead_letters) as dead_file,
    ):
        for batch in source.batches():
            result = normalizer.normalize_batch(batch)
            out.write(b"".join(_line(e.to_dict(with_raw=args.with_raw)) for e in result.events))
            for dead in result.dead_letters:
                write_dead_letter(dead, dead_file)
                reasons[dead.reason.value] += 1
            skipped.update(item.reason.value for item in result.skipped)
            events += len(result.events)
    out.flush()
    print(dead_letter_summary(events, reasons, skipped), file=sys.stderr)
    return 0


def dead_letter_summary(
    events: int, reasons: Counter[str], skipped: Counter[str] | None = None
) -> str:
    """``N events, M dead letters (reason: n, ...)``, then known non-events skipped, if any."""
    summary = f"{events} events, {reasons.total()} dead letters" + _detail(reasons)
    if skipped:
        summary += f", {skipped.total()} skipped" + _detail(skipped)
    return summary


def _detail(counts: Counter[str]) -> str:
    detail = ", ".join(f"{reason}: {count}" for reason, count in counts.most_common())
    return f" ({detail})" if detail else ""


def _line(data: object) -> bytes:
    return orjson.dumps(data) + b"\n"


def dead_letter_file(path: Path | None) -> contextlib.AbstractContextManager[IO[bytes] | None]:
    if path is None:
        return contextlib.nullcontext()
    try:
        return path.open("wb")
    except OSError as exc:
        raise ConfigError(f"cannot write dead letters: {exc.strerror}", where=str(path)) from None


def write_dead_letter(dead: DeadLetter, dead_file: IO[bytes] | None) -> None:
    if dead_file is not None:
        dead_file.write(_line(dead.to_dict()))
    else:
        print(
            f"dead letter: {dead.reason.value} at {dead.position}: {dead.detail}", file=sys.stderr
        )
