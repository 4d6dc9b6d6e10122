"""The ``ciwatch`` command line: thin — parse arguments, build the parts, run.

Errors a user can cause (a missing file, an unknown format, a bad config or
rule pack) end in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from detector import __version__
from detector.cli.demo import add_command as add_demo
from detector.cli.generate import add_command as add_generate
from detector.cli.normalize import add_command as add_normalize
from detector.cli.replay import add_command as add_replay
from detector.cli.rules import add_commands as add_rule_commands
from detector.cli.run import add_command as add_run
from detector.cli.train import add_command as add_train
from detector.errors import CiwatchError

__all__ = ["main"]

_EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
    except CiwatchError as exc:
        print(f"ciwatch: error: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ciwatch",
        description="Detects attacks on CI/CD pipelines from audit logs and login events.",
    )
    parser.add_argument("--version", action="version", version=f"ciwatch {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_normalize(commands)
    add_generate(commands)
    add_replay(commands)
    add_rule_commands(commands)
    add_train(commands)
    add_run(commands)
    add_demo(commands)
    return parser
