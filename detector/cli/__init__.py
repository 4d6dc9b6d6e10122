"""The ``ciwatch`` command line: thin — parse arguments, build the parts, run.

Errors a user can cause (a missing file, an unknown format, a bad config or
rule pack, a bad option) end in one line on stderr, never a traceback::

    ciwatch: error: pipeline.yaml: features.learning_perod: unknown setting

Exit statuses, the same for every command (docs/cli.md):

    0    done
    1    done, and the result is a failure: a rule test failed, ``validate``
         found problems, ``train`` fitted no model
    2    a usage, input or config error: a bad option, a missing or unreadable
         file, invalid YAML, an unknown or invalid setting, rule or taxonomy
    3    unreachable: the Kafka brokers (or the alerts topic's) could not be
         reached before the bootstrap timeout; the same command may work later
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from detector import __version__, collector, logs
from detector.cli.demo import add_command as add_demo
from detector.cli.generate import add_command as add_generate
from detector.cli.models import add_command as add_models
from detector.cli.normalize import add_command as add_normalize
from detector.cli.replay import add_command as add_replay
from detector.cli.rules import add_commands as add_rule_commands
from detector.cli.run import add_command as add_run
from detector.cli.sigma import add_command as add_sigma
from detector.cli.train import add_command as add_train
from detector.errors import CiwatchError, UnreachableError
from detector.events.printable import printable

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130
_MAX_ERROR = 2_000  # characters of one error line: a whole path, never a screenful
_SERVICES = frozenset({"run"})  # long-running: their logs are JSON lines unless at a terminal


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    collector.tune()
    try:
        _configure_logging(args)
        status: int = args.handler(args)
    except CiwatchError as exc:
        report_error(str(exc))
        return EXIT_UNREACHABLE if isinstance(exc, UnreachableError) else EXIT_USAGE
    except BrokenPipeError:
        # The reader (`| head`) went away: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        # A file problem no command anticipated: still one line naming the file.
        where = f"{exc.filename}: " if exc.filename is not None else ""
        report_error(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return status


def report_error(message: str) -> None:
    """``ciwatch: error: <message>`` on stderr, control characters escaped: one line."""
    print(f"ciwatch: error: {printable(message, _MAX_ERROR)}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line too (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("ciwatch").strip()
        hint = f"ciwatch {command} --help" if command else "ciwatch --help"
        where = f"{command}: " if command else ""
        report_error(f"{where}{message} (see {hint})")
        raise SystemExit(EXIT_USAGE)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ciwatch",
        description="Detects attacks on CI/CD pipelines from audit logs and login events.",
    )
    parser.add_argument("--version", action="version", version=f"ciwatch {__version__}")
    # Each command's parser is a _Parser too (argparse makes them of the parent's class).
    commands = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(title="commands", metavar="COMMAND", dest="command", required=True),
    )
    add_normalize(commands)
    add_generate(commands)
    add_replay(commands)
    add_rule_commands(commands)
    add_train(commands)
    add_models(commands)
    add_run(commands)
    add_demo(commands)
    add_sigma(commands)
    _add_log_options(parser, default=None)
    for command in {id(sub): sub for sub in commands.choices.values()}.values():
        # After the command too (`ciwatch run --log-level debug`); unset there, the
        # value given before the command stands.
        _add_log_options(command, default=argparse.SUPPRESS)
    return parser


def _add_log_options(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        type=str.lower,
        choices=list(logs.LEVELS),
        default=default,
        help="least severe log line shown (default: $CIWATCH_LOG_LEVEL or info)",
    )
    group.add_argument(
        "--log-format",
        type=str.lower,
        choices=list(logs.FORMATS),
        default=default,
        help=(
            "log lines on stderr as json or text; auto (default, or $CIWATCH_LOG_FORMAT): "
            "text at a terminal, json from `ciwatch run` otherwise"
        ),
    )


def _configure_logging(args: argparse.Namespace) -> None:
    """Logging for the command (:mod:`detector.logs`): options, then the environment."""
    level, log_format = logs.settings_from(args.log_level, args.log_format, os.environ)
    logs.configure(level, log_format, service=args.command in _SERVICES)
