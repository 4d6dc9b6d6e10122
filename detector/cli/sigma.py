"""``ciwatch sigma convert``: Sigma rules in, a ciwatch rule pack out (docs/sigma.md).

Prints one line per rule that was not converted, with the reason, then
``converted N of M``. A rule is converted whole or not at all. Exit status 0 when the
pack is written (1 with ``--strict`` if any rule was not converted), 2 for bad input:
a missing path, a file that is not YAML, no Sigma files at all, an unwritable DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from detector.cli.options import output_directory
from detector.events.printable import printable
from detector.sigma import convert_paths, write_pack

__all__ = ["add_command"]

_EXIT_OK, _EXIT_FAILED = 0, 1


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sigma = commands.add_parser(
        "sigma",
        help="convert Sigma rules into ciwatch rule packs",
        description="Work with Sigma rules (https://sigmahq.io): see docs/sigma.md.",
    )
    actions = sigma.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    convert = actions.add_parser(
        "convert",
        help="convert Sigma YAML files or directories into a rule pack",
        description=(
            "Convert Sigma rules (files, or directories searched recursively) into ciwatch "
            "rules, one pack file per Sigma log source in DIR. Rules that cannot be "
            "expressed exactly are listed with the reason and left out."
        ),
    )
    convert.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    convert.add_argument("--out", type=Path, required=True, metavar="DIR", help="pack directory")
    convert.add_argument(
        "--strict", action="store_true", help="exit 1 if any rule was not converted"
    )
    convert.set_defaults(handler=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    out = output_directory(args.out, "the converted rule pack")
    conversion = convert_paths(args.paths)
    for skipped in conversion.skipped:
        line = f"not converted: {skipped.origin}: {skipped.title}: {skipped.reason}"
        print(printable(line, 2_000))
    written = write_pack(conversion.converted, out)
    for path in written:
        print(f"wrote {path}")
    print(f"converted {len(conversion.converted)} of {conversion.total}")
    return _EXIT_FAILED if args.strict and conversion.skipped else _EXIT_OK
