"""``ciwatch demo``: the whole daemon on one machine, against attacks it has never seen.

Starts the embedded broker, generates an organisation's audit logs with
labeled attacks (:mod:`detector.generator`), and plays them into Kafka in
event-time order on an accelerated clock, so that days of activity pass in a
couple of minutes. The daemon (:class:`~detector.daemon.Daemon`, the same code
as ``ciwatch run``) consumes them and posts its alerts to a local webhook
receiver standing in for a SIEM. A progress view on stderr shows events per
second produced and consumed and each alert as it arrives; at the end a table
says which injected attack was caught, by what and how fast, and how many
alerts matched no attack.

The daemon installs signal handlers, so it runs in the calling (main) thread;
the player and the progress view run beside it and stop it by setting
``daemon.signals.stop``.
"""

from __future__ import annotations

from detector.demo.play import TOPIC
from detector.demo.receiver import AlertReceiver
from detector.demo.results import SLACK, Attack, match_alerts, report
from detector.demo.run import DemoOptions, demo_config, run_demo

__all__ = [
    "SLACK",
    "TOPIC",
    "AlertReceiver",
    "Attack",
    "DemoOptions",
    "demo_config",
    "match_alerts",
    "report",
    "run_demo",
]
