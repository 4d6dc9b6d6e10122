"""Dedup and suppression: one alert per detector and key per suppression period.

The first firing for a (detector, key) opens an alert, sent at once. Firings
within the alert's suppression period fold into it — its count, last time and
evidence grow — instead of being dropped. When event time passes the end of
the period (or the pipeline finishes), an alert that folded more firings since
it was last sent is sent again with the same id and a higher ``revision``, so a
receiver that deduplicates on the id ends with the full count.

Anomaly detections carry their evidence window as ``suppress`` (the longest
window of the features that made them unusual). A folded anomaly keeps its
alert open until its own evidence window has passed: a burst that stays in a
24 h window for a day is one alert, revised, not one alert per hour.

An anomaly whose only evidence is sign-in failures, about an actor a rule
alert named as a target within ``link_for`` (the accounts a password spray
tried, the user a brute force aimed at), is linked to that rule alert instead
of raised: the victims of a spray are in the spray's alert, not alerts of
their own. Such anomalies are counted per rule in ``linked``.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from detector.alerts.model import Alert, alert_id
from detector.alerts.state import detection_from_state, detection_to_state
from detector.detections import Detection, DetectorKind

__all__ = ["Suppressor"]

_STATE_VERSION = 1
Clock = Callable[[Detection], datetime]


Slot = tuple[str, str, tuple[tuple[str, str], ...]]
"""(detector kind, rule or model, group key): what one open alert stands for."""


@dataclass(slots=True)
class _Open:
    alert: Alert
    closes_at: datetime
    sent_count: int
    order: int
    """When it was opened, among all alerts: re-sends keep that order."""


_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def _period_end(start: datetime, period: timedelta) -> datetime:
    """``start + period``, held at the last representable time rather than overflowing.

    Event times stop at 2200 (:data:`detector.events.fields.LATEST_TIME`), but a
    rule's ``suppress`` is not bounded: an alert open "forever" stays open, not crashed.
    """
    try:
        return start + period
    except OverflowError:
        return _END_OF_TIME


class Suppressor:
    """Turns detections into alerts, folding repeats.

    ``clock`` gives ``detected_at`` for a detection; by default its event time,
    which keeps replays deterministic (the daemon passes the wall clock).
    ``max_open`` bounds memory: beyond it the alert closing soonest is closed
    early (and sent again if it folded firings).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_evidence: int = 50,
        max_open: int = 100_000,
        link_for: timedelta = timedelta(hours=24),
    ) -> None:
        self._clock = clock or (lambda detection: detection.time)
        self._max_evidence = max_evidence
        self._max_open = max_open
        self._open: dict[Slot, _Open] = {}
        # Closing times in a heap and open slots by actor, so that a detection costs
        # the same with 100,000 open alerts as with ten. Heap entries of slots since
        # closed or reopened are skipped when they surface.
        self._closing: list[tuple[datetime, int, Slot]] = []
        self._by_actor: dict[str, dict[Slot, None]] = {}
        self._opened = 0
        self.folded = 0
        # Actors named as targets by rule alerts: actor → (rule, alert id, until), and the
        # order they expire in (entries refreshed since are skipped when they surface).
        self._link_for = link_for
        self._targets: dict[str, tuple[str, str, datetime]] = {}
        self._expiring: deque[tuple[datetime, str]] = deque()
        self.linked: Counter[str] = Counter()
        """Per rule: anomalies linked to its alerts instead of raised."""
        self.linked_anomalies: Counter[str] = Counter()
        self.on_target: Callable[[str, str, str, datetime, datetime], None] | None = None
        """Hears every actor a rule alert names (scale-out carries them to the actor's stage)."""
        """Per anomaly model: the same anomalies, counted by the model that found them."""

    def process(self, detections: Iterable[Detection]) -> list[Alert]:
        """New alerts for new situations, and re-sends of alerts whose period ended."""
        out: list[Alert] = []
        for detection in detections:
            out.extend(self.advance(detection.time))
            if self._is_linked(detection):
                continue
            slot = (detection.kind.value, detection.name, detection.key)
            current = self._open.get(slot)
            if current is not None and detection.time < current.closes_at:
                current.alert = self._fold(current.alert, detection)
                self.folded += 1
                if detection.kind is DetectorKind.ANOMALY:
                    self._extend(slot, current, _period_end(detection.time, detection.suppress))
                self._note_targets(detection, current.alert.id)
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
            self._add(slot, alert, _period_end(detection.time, detection.suppress), 1)
            self._note_targets(detection, alert.id)
            out.append(alert)
            if len(self._open) > self._max_open:
                out.extend(self._close(self._pop_soonest()))
        return out

    def advance(self, now: datetime) -> list[Alert]:
        """Close the alerts whose suppression period ended before event time ``now``."""
        ended = []
        while self._closing and self._closing[0][0] <= now:
            closes_at, order, slot = heapq.heappop(self._closing)
            item = self._open.get(slot)
            if item is not None and item.order == order and item.closes_at == closes_at:
                ended.append((order, slot))
        while self._expiring and self._expiring[0][0] <= now:
            until, actor = self._expiring.popleft()
            target = self._targets.get(actor)
            if target is not None and target[2] == until:
                del self._targets[actor]
        return [alert for _, slot in sorted(ended) for alert in self._close(slot)]

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
        slots = self._by_actor.get(detection.actor, {})
        others = sorted(
            (self._open[slot].order, self._open[slot].alert.id)
            for slot in slots
            if slot[0] != detection.kind.value
        )
        return tuple(alert_id for _, alert_id in others)

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

    def _extend(self, slot: Slot, item: _Open, closes_at: datetime) -> None:
        """Keep an open alert open until ``closes_at`` (never shorten it)."""
        if closes_at > item.closes_at:
            item.closes_at = closes_at
            heapq.heappush(self._closing, (closes_at, item.order, slot))

    def _note_targets(self, detection: Detection, alert_id: str) -> None:
        """Remember the actors a rule detection names: its actor, and a distinct-actor list."""
        if detection.kind is not DetectorKind.RULE:
            return
        named = [detection.actor] if detection.actor else []
        if detection.explanation.get("field") == "actor":
            named.extend(str(v) for v in detection.explanation.get("distinct_values", ()))
        until = _period_end(detection.time, self._link_for)
        for actor in named:
            self.note_target(actor, detection.name, alert_id, until)
            if self.on_target is not None:
                self.on_target(actor, detection.name, alert_id, detection.time, until)

    def note_target(self, actor: str, rule: str, alert_id: str, until: datetime) -> None:
        """``actor`` was named by rule alert ``alert_id``: link its failure anomalies until then.

        Called for this suppressor's own rule alerts, and in scale-out for those a
        stage keyed by IP raised (:mod:`detector.scale`), which it hears through
        ``on_target``.
        """
        self._targets[actor] = (rule, alert_id, until)
        self._expiring.append((until, actor))

    def _is_linked(self, detection: Detection) -> bool:
        """An anomaly with failures as its only evidence, about an actor a rule alert targeted."""
        if detection.kind is not DetectorKind.ANOMALY or detection.actor is None:
            return False
        target = self._targets.get(detection.actor)
        evidence = detection.explanation.get("evidence", ())
        if target is None or detection.time >= target[2] or not evidence:
            return False
        if not all("failure" in str(feature) for feature in evidence):
            return False
        self.linked[target[0]] += 1
        self.linked_anomalies[detection.name] += 1
        return True

    def _add(self, slot: Slot, alert: Alert, closes_at: datetime, sent_count: int) -> None:
        self._opened += 1
        self._open[slot] = _Open(alert, closes_at, sent_count, self._opened)
        heapq.heappush(self._closing, (closes_at, self._opened, slot))
        actor = alert.detection.actor
        if actor is not None:
            self._by_actor.setdefault(actor, {})[slot] = None

    def _pop_soonest(self) -> Slot:
        """The open slot closing first (the earliest opened among ties)."""
        while True:
            closes_at, order, slot = heapq.heappop(self._closing)
            item = self._open.get(slot)
            if item is not None and item.order == order and item.closes_at == closes_at:
                return slot

    def _close(self, slot: Slot) -> list[Alert]:
        item = self._open.pop(slot, None)
        if item is None:
            return []
        actor = item.alert.detection.actor
        if actor is not None:
            slots = self._by_actor[actor]
            del slots[slot]
            if not slots:
                del self._by_actor[actor]
        if item.alert.count == item.sent_count:
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
            "targets": [
                [actor, rule, alert_id, until.isoformat()]
                for actor, (rule, alert_id, until) in self._targets.items()
            ],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` returned, replacing the current state."""
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported suppression state version {state.get('version')!r}")
        self._open.clear()
        self._closing.clear()
        self._by_actor.clear()
        self._targets.clear()
        self._expiring.clear()
        self.folded = int(state["folded"])
        for actor, rule, opened, until in state.get("targets", ()):
            self._targets[actor] = (rule, opened, datetime.fromisoformat(until))
        self._expiring.extend(
            sorted((until, actor) for actor, (_, _, until) in self._targets.items())
        )
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
            self._add(slot, alert, closes_at, row["sent_count"])
