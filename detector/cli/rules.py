"""``ciwatch test-rules`` and ``ciwatch validate``: check rule packs and config before deploying.

Both exit 1 when what they check fails (a rule test, a problem found) and 2 when
they cannot check at all (a missing or invalid file, an unknown rule id).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from detector.assembly import configured_rules
from detector.cli.options import add_rules_option, with_rule_packs
from detector.cli.report import table
from detector.cli.run import service_problems
from detector.config import load_config
from detector.errors import CiwatchError, ConfigError
from detector.pipeline import Pipeline
from detector.rules.loader import load_rules
from detector.ruletests import failure_report, run_rule_tests
from detector.service_settings import redact_url

__all__ = ["add_commands"]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    test = commands.add_parser(
        "test-rules",
        help="run the tests embedded in rule packs",
        description=(
            "Run every test embedded in the given rule files or directories (default: the "
            "packs the config loads) through the real pipeline. Exits 1 if any test fails."
        ),
    )
    test.add_argument("packs", nargs="*", type=Path, metavar="PACK")
    test.add_argument("--config", type=Path, metavar="FILE", help="pipeline YAML")
    test.add_argument("--rule", action="append", default=[], metavar="ID", help="only this rule")
    test.add_argument("-v", "--verbose", action="store_true", help="all tests, every reason")
    add_rules_option(test)
    test.set_defaults(handler=_run_test_rules)

    validate = commands.add_parser(
        "validate",
        help="check a pipeline config, its taxonomy and rule packs",
        description="Load the config, taxonomy and rules as the daemon would; report problems.",
    )
    validate.add_argument("--config", type=Path, metavar="FILE", help="pipeline YAML")
    add_rules_option(validate)
    validate.set_defaults(handler=_run_validate)


def _run_test_rules(args: argparse.Namespace) -> int:
    config = with_rule_packs(load_config(args.config), args.rules)
    tracked = config.features.tracked
    packs = [*args.packs, *args.rules]
    rules = load_rules(packs, tracked=tracked) if args.packs else configured_rules(config)
    if not rules:
        # Nothing tested is not a pass: a wrong path or an empty pack, say so.
        raise ConfigError("no rules here", where=", ".join(map(str, args.packs)) or "--config")
    if args.rule:
        unknown = sorted(set(args.rule) - {rule.id for rule in rules})
        if unknown:
            raise ConfigError(f"no such rule: {', '.join(unknown)}", where="--rule")
        rules = [rule for rule in rules if rule.id in set(args.rule)]
    results = run_rule_tests(rules, config)
    failed = [r for r in results if not r.passed]
    if args.verbose:
        rows = [
            [r.rule, r.test, str(r.expected), str(r.alerts), "ok" if r.passed else "FAIL"]
            for r in results
        ]
        print(table(["rule", "test", "expected", "alerts", "result"], rows))
    for result in failed:
        print("\n".join(failure_report(result, verbose=args.verbose)), file=sys.stderr)
    print(f"{len(results) - len(failed)} of {len(results)} rule tests passed ({len(rules)} rules)")
    return 1 if failed else 0


def _run_validate(args: argparse.Namespace) -> int:
    config = with_rule_packs(load_config(args.config, environ=os.environ), args.rules)
    problems = service_problems(config)
    try:
        pipeline = Pipeline.from_config(config)
    except CiwatchError as exc:
        problems.insert(0, str(exc))
    for problem in problems:
        print(f"ciwatch: error: {problem}", file=sys.stderr)
    if problems:
        return 1
    rules, sources = len(pipeline.rules.rules), len(pipeline.normalizer.taxonomy.sources)
    models = len(list(pipeline.scorer.describe())) if pipeline.scorer is not None else 0
    print(f"ok: {rules} rules enabled, {sources} log types classified, {models} models loaded")
    if (hook := config.service.webhook) is not None:
        print(f"webhook: {hook.format} to {redact_url(hook.url)}")
    return 0
