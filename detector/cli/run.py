"""``ciwatch run``: the daemon (see :mod:`detector.daemon`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from detector import logs
from detector.cli.options import add_rules_option, int_option, with_rule_packs
from detector.config import PipelineConfig, load_config
from detector.daemon import Daemon
from detector.errors import CiwatchError, ConfigError
from detector.metrics import Metrics
from detector.pipeline import Pipeline
from detector.scale.stage import ScaledDaemon
from detector.secrets import read_secret
from detector.sinks.base import Sink
from detector.sinks.file import JsonlFileSink
from detector.sinks.kafka_topic import open_topic_sink
from detector.sinks.webhook import WebhookSink, tls_context
from detector.sinks.webhook_format import FORMATS
from detector.sources.factory import require_client
from detector.workers import MAX_WORKERS, Supervisor

__all__ = ["add_command", "build_sinks", "run_daemon", "service_problems"]


def add_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="consume Kafka, detect, deliver alerts (the daemon)",
        description=(
            "Consume the configured Kafka topics in a consumer group, detect with the rules "
            "and models, deliver alerts to the configured sinks and commit offsets only "
            "after delivery. SIGTERM stops cleanly; SIGHUP reloads the models. "
            "CIWATCH_* environment variables override the file (see docs)."
        ),
    )
    run.add_argument("--config", type=Path, metavar="FILE", help="pipeline YAML")
    add_rules_option(run)
    run.add_argument(
        "--workers",
        type=int_option(1, MAX_WORKERS),
        default=1,
        metavar="N",
        help="consumer processes of the group in this pod, supervised by this one "
        "(default 1: this process consumes; see docs/daemon.md#workers)",
    )
    run.set_defaults(handler=_run)


def build_sinks(config: PipelineConfig, metrics: Metrics) -> list[Sink]:
    """The sinks the ``service`` section asks for (the webhook spools under ``state_dir``)."""
    service = config.service
    sinks: list[Sink] = []
    if service.alerts_file is not None:
        sinks.append(JsonlFileSink(service.alerts_file, metrics=metrics))
    if service.webhook is not None:
        if service.state_dir is None:
            message = "the webhook spool needs a state directory"
            raise ConfigError(message, where="service.state_dir")
        spool = service.state_dir / "spool-webhook"
        sinks.append(WebhookSink(service.webhook, spool_dir=spool, metrics=metrics))
    if service.alerts_topic is not None:
        topic, severity = service.alerts_topic.topic, service.alerts_topic.min_severity
        sinks.append(open_topic_sink(service.kafka, topic, min_severity=severity))
    return sinks


def service_problems(config: PipelineConfig) -> list[str]:
    """What would stop ``ciwatch run`` starting its outputs, one line each (no side effects)."""
    problems = []
    try:
        require_client(config.service.kafka)  # confluent chosen but not installed
    except ConfigError as exc:
        problems.append(str(exc))
    hook = config.service.webhook
    if hook is None:
        return problems
    if config.service.state_dir is None:
        problems.append("service.state_dir: the webhook spool needs a state directory")
    checks: list[Callable[[], object]] = [
        lambda: read_secret(hook.token_file, hook.token_env, name="service.webhook.token_file"),
        *(
            partial(read_secret, path, None, name="service.webhook.signing_key_files")
            for path in hook.signing_key_files
        ),
        partial(tls_context, hook),
    ]
    for check in checks:
        try:
            check()
        except CiwatchError as exc:
            problems.append(str(exc))
    if FORMATS[hook.format].requires_token and hook.token_file is None and hook.token_env is None:
        problems.append(f"service.webhook: the {hook.format} format needs token_file or token_env")
    return problems


def _run(args: argparse.Namespace) -> int:
    config = with_rule_packs(load_config(args.config, environ=os.environ), args.rules)
    if args.workers == 1:
        return run_daemon(config)
    log_settings = logs.settings_from(args.log_level, args.log_format, os.environ)
    supervisor = Supervisor(config, args.workers, run_daemon, log_settings=log_settings)
    # Checked once, here, as the daemon would: a bad pack or secret is one line, no worker.
    if problems := service_problems(config):
        raise ConfigError(problems[0])
    Pipeline.from_config(config, bundled_fallback=False)
    return supervisor.run()


def run_daemon(config: PipelineConfig) -> int:
    """One consumer of the group in this process: ``ciwatch run``, or one of its ``--workers``."""
    require_client(config.service.kafka)  # one line before anything starts, not a traceback
    kind = Daemon
    if config.service.scale.enabled:  # keyed stages over internal topics (detector.scale.stage)
        kind = ScaledDaemon
    metrics = Metrics()
    return kind(config, build_sinks(config, metrics), metrics=metrics).run()
