"""`ciwatch run` counts the regex bounds its rules hit on its /metrics, against a real broker."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from detector.sources.broker import EmbeddedBroker, free_port
from tests.integration.running import Daemon, produce, scrape, wait_for, write_config
from tests.receiver import Receiver
from tests.samples import load_samples, sample_bytes

pytestmark = pytest.mark.integration

PACK = """\
rules:
  - id: long-github-actions
    title: A regex that only reads two characters of a value
    kind: match
    severity: low
    description: Every GitHub action is longer than two characters, so each is cut short.
    where:
      source: github_audit
      action: {regex: {pattern: "^zz", max_length: 2}}
"""
SERIES = 'ciwatch_rule_regex_limits_total{reason="too_long",rule="long-github-actions"} 1.0'


def test_the_daemon_exports_regex_limits_per_rule(
    broker: EmbeddedBroker, topic: str, tmp_path: Path, receiver: Receiver
) -> None:
    port = free_port()
    config = write_config(tmp_path / "ciwatch.yaml", broker, topic, port, receiver.url)
    pack = tmp_path / "pack.yaml"
    pack.write_text(PACK)
    with config.open("a") as handle:
        handle.write(f"models: {{enabled: false}}\nrules: {{bundled: false, packs: ['{pack}']}}\n")
    first = load_samples("github_audit")[0].case
    daemon = Daemon(config)
    try:
        produce(broker, topic, [sample_bytes("github_audit", first)])

        def counted() -> bool:
            try:
                _, text = scrape(port)
            except httpx.TransportError:  # the daemon is still starting
                return False
            return SERIES in text

        wait_for(counted, "a too_long regex limit on /metrics")
    finally:
        assert daemon.stop() == 0
    text = (tmp_path / "daemon.log").read_text()
    assert "Traceback" not in text
