"""The issue's bar on real vendor events: coverage, correctness of detection, taxonomy coverage.

For each of the six vendor log types, at least 95 % of the published events
that carry a timestamp become Events of that log type, and every vendor action
they contain is classified by the taxonomy explicitly (never only by its default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from detector.events.envelopes import unwrap
from detector.events.model import Event
from detector.events.normalizer import Normalizer
from detector.events.parsers import PARSERS
from detector.events.taxonomy import Taxonomy
from detector.sources.record import Position, RawRecord
from tests.samples import load_samples

VENDOR_FILES = {
    "github_audit": "github_audit",
    "gitlab_audit": "gitlab_audit",
    "k8s_audit": "k8s_audit",
    "okta_system_log": "okta_system_log",
    "cloudtrail": "cloudtrail",
    "azure_entra_id": "azure_entra_id",
    "m365_audit": "m365_audit",
    "gcp_audit": "gcp_audit",
    "azure_activity": "azure_activity",
    # AKS kube-audit records from the same Azure Monitor stream are Kubernetes audit.
    "azure_activity_kube_audit": "k8s_audit",
}
# Log types that also carry another's events: GKE's Kubernetes audit in GCP audit logs.
ALSO_SOURCES = {"gcp_audit": {"k8s_audit"}}
TIME_KEYS = {
    "@timestamp", "at_sign_timestamp", "created_at", "published", "eventTime", "eventtime",
    "requestReceivedTimestamp", "stageTimestamp", "time", "createdDateTime", "activityDateTime",
    "p_event_time", "timestamp", "CreationTime",
}  # fmt: skip
NORMALIZER = Normalizer(Taxonomy.bundled())


def carries_time(event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    docs = [d for d in unwrap(event) if isinstance(d, Mapping)]
    return any(TIME_KEYS & {*d, *(d.get("properties") or {})} for d in docs)


def normalize(event: Any) -> list[Any]:
    return NORMALIZER.normalize(RawRecord(json.dumps(event).encode(), Position("sample", 1)))


@pytest.mark.parametrize(("name", "source"), VENDOR_FILES.items())
def test_timestamped_samples_become_events_of_their_log_type(name: str, source: str) -> None:
    timestamped = [s.event for s in load_samples(name) if carries_time(s.event)]
    results = [r for event in timestamped for r in normalize(event)]
    events = [r for r in results if isinstance(r, Event)]
    assert len(events) >= 0.95 * len(timestamped), f"{len(events)}/{len(timestamped)}"
    sources = {e.source for e in events}
    assert source in sources
    assert sources <= {source, *ALSO_SOURCES.get(source, ())}


@pytest.mark.parametrize(("name", "source"), VENDOR_FILES.items())
def test_every_sample_action_is_classified_explicitly(name: str, source: str) -> None:
    taxonomy = NORMALIZER.taxonomy
    parser = PARSERS[source]()
    unclassified = set()
    for item in load_samples(name):
        for result in normalize(item.event):
            if isinstance(result, Event):
                key = parser.parse(result.raw).taxonomy_key or result.action
                if not taxonomy.covers(result.source, key):
                    unclassified.add(key)
    assert not unclassified, sorted(unclassified)
