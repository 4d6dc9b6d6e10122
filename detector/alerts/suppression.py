"""Dedup and suppression: one alert per detector and key per suppression period.

The first firing for a (detector, key) opens an alert, sent at once. Firings
within the alert's suppression period fold into it — its count, last time and
evidence grow — instead of being dropped. When event time passes the end of
the period (or the pipeline finishes), an alert that folded more firings since
it was last sent is sent again with the same id and a higher ``revision``, so a
receiver that deduplicates on the id ends with the full count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from detector.alerts.model import Alert, alert_id
from detector.alerts.state import detection_from_state, detection_to_state
from detector.detections import Detection

__all__ = ["Suppressor"]

_STATE_VERSION = 1
Clock = Callable[[Detection], datetime]


@dataclass(slots=True)
class _Open:
    alert: Alert
    closes_at: datetime
    sent_count: int


class Suppressor:
    """Turns detections into alerts, folding repeats.

    ``clock`` gives ``detected_at`` for a detection; by default its event time,
    which keeps replays deterministic (the daemon passes the wall clock).
    ``max_open`` bounds memory: beyond it the alert closing soonest is closed
    early (and sent again if it folded firings).
    """

    def __init__(
        self, *, clock: Clock | None = None, max_evidence: int = 50, max_open: int = 100_000
    ) -> None:
        self._clock = clock or (lambda detection: detection.time)
        self._max_evidence = max_evidence
        self._max_open = max_open
        self._open: dict[tuple[str, str, tuple[tuple[str, str], ...]], _Open] = {}
        self.folded = 0

    def process(self, detections: Iterable[Detection]) -> list[Alert]:
        """New alerts for new situations, and re-sends of alerts whose period ended."""
        out: list[Alert] = []
        for detection in detections:
            out.extend(self.advance(detection.time))
            slot = (detection.kind.value, detection.name, detection.key)
            current = self._open.get(slot)
            if current is not None and detection.time < current.closes_at:
                current.alert = self._fold(current.alert, detection)
                self.folded += 1
                continue
            out.extend(self._close(slot))
            alert = Alert(
                id=alert_id(detection),
                detection=detection,
                detected_at=self._clock(detection),
                first_time=detection.time,
                last_time=detection.time,
                evidence=detection.evidence[-self._max_evidence :],
                related=self._related(detection),
            )
            self._open[slot] = _Open(alert, detection.time + detection.suppress, 1)
            out.append(alert)
            if len(self._open) > self._max_open:
                out.extend(self._close(min(self._open, key=lambda s: self._open[s].closes_at)))
        return out

    def advance(self, now: datetime) -> list[Alert]:
        """Close the alerts whose suppression period ended before event time ``now``."""
        ended = [slot for slot, item in self._open.items() if item.closes_at <= now]
        return [alert for slot in ended for alert in self._close(slot)]

    def flush(self) -> list[Alert]:
        """Re-send every open alert that folded firings since it was sent; keep them open."""
        out = []
        for item in self._open.values():
            if item.alert.count > item.sent_count:
                item.alert = replace(item.alert, revision=item.alert.revision + 1)
                item.sent_count = item.alert.count
                out.append(item.alert)
        return out

    def _related(self, detection: Detection) -> tuple[str, ...]:
        """Open alerts of the other detector kind about the same actor.

        When a rule and a model fire on one actor within a suppression period,
        the second alert names the first instead of arriving as an unrelated one.
        """
        if detection.actor is None:
            return ()
        return tuple(
            item.alert.id
            for (kind, _, _), item in self._open.items()
            if kind != detection.kind.value and item.alert.detection.actor == detection.actor
        )

    @property
    def open_alerts(self) -> int:
        return len(self._open)

    def _fold(self, alert: Alert, detection: Detection) -> Alert:
        evidence = dict.fromkeys(alert.evidence)
        evidence.update(dict.fromkeys(detection.evidence))
        return replace(
            alert,
            count=alert.count + 1,
            last_time=max(alert.last_time or detection.time, detection.time),
            evidence=tuple(evidence)[-self._max_evidence :],
        )

    def _close(self, slot: tuple[str, str, tuple[tuple[str, str], ...]]) -> list[Alert]:
        item = self._open.pop(slot, None)
        if item is None or item.alert.count == item.sent_count:
            return []
        return [replace(item.alert, revision=item.alert.revision + 1)]

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-ready state: the open alerts, so a restart keeps folding into them."""
        return {
            "version": _STATE_VERSION,
            "folded": self.folded,
            "open": [
                {
                    "id": item.alert.id,
                    "detection": detection_to_state(item.alert.detection),
                    "detected_at": item.alert.detected_at.isoformat(),
                    "count": item.alert.count,
                    "sent_count": item.sent_count,
                    "revision": item.alert.revision,
                    "last_time": (item.alert.last_time or item.alert.time).isoformat(),
                    "evidence": list(item.alert.evidence),
                    "related": list(item.alert.related),
                    "closes_at": item.closes_at.isoformat(),
                }
                for item in self._open.values()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` returned, replacing the current state."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported suppression state version {state.get('version')!r}")
        self._open.clear()
        self.folded = int(state["folded"])
        for row in state["open"]:
            detection = detection_from_state(row["detection"])
            alert = Alert(
                id=row["id"],
                detection=detection,
                detected_at=datetime.fromisoformat(row["detected_at"]),
                count=row["count"],
                first_time=detection.time,
                last_time=datetime.fromisoformat(row["last_time"]),
                evidence=tuple(row["evidence"]),
                revision=row["revision"],
                related=tuple(row.get("related", ())),
            )
            slot = (detection.kind.value, detection.name, detection.key)
            closes_at = datetime.fromisoformat(row["closes_at"])
            self._open[slot] = _Open(alert, closes_at, row["sent_count"])
