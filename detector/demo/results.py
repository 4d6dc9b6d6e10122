"""Which injected attacks the demo's alerts caught, by what and how fast: the closing table.

An alert is about an attack when its evidence holds one of the attack's events,
or when it names one of the attack's actors or keys within the attack's span
plus :data:`SLACK` (the matching of ``bench/replay_quality.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detector.demo.receiver import AlertReceiver
from detector.events.printable import printable

__all__ = ["FALSE_SHOWN", "SLACK", "Attack", "false_alert_lines", "match_alerts", "report"]

SLACK = timedelta(minutes=2)
"""How far outside an attack's span an alert naming its actors still counts as about it."""

FALSE_SHOWN = 20
"""How many of the alerts matching no attack the report names, one a line."""


@dataclass(frozen=True, slots=True)
class Attack:
    """One injected attack of ``labels.json``: what an alert about it may cite or name."""

    id: str
    kind: str
    names: frozenset[str]
    start: datetime
    end: datetime
    events: frozenset[str]

    @classmethod
    def from_label(cls, data: dict[str, Any]) -> Attack:
        names = frozenset([*data["actors"], *data["keys"]])
        start, end = _time(data["start"]), _time(data["end"])
        return cls(
            data["id"], data.get("kind", "rule"), names, start, end, frozenset(data["events"])
        )

    def matched_by(self, alert: dict[str, Any]) -> bool:
        """The alert cites one of its events, or names its actors or keys within its span."""
        if self.events.intersection(alert.get("evidence") or ()):
            return True
        first = _time(alert.get("first_time") or alert["time"])
        last = _time(alert.get("last_time") or alert["time"])
        if first > self.end + SLACK or last < self.start - SLACK:
            return False
        named = {
            str(alert.get("actor") or ""),
            *(str(v) for v in (alert.get("key") or {}).values()),
        }
        return bool(named & self.names)


def match_alerts(
    attacks: Sequence[Attack], alerts: Iterable[dict[str, Any]]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Matching alerts per attack id (in the order given), and the alerts matching none."""
    found: dict[str, list[dict[str, Any]]] = {attack.id: [] for attack in attacks}
    false_alerts = []
    for alert in alerts:
        hits = [attack.id for attack in attacks if attack.matched_by(alert)]
        for hit in hits:
            found[hit].append(alert)
        if not hits:
            false_alerts.append(alert)
    return found, false_alerts


def report(attacks: Sequence[Attack], receiver: AlertReceiver, sent_at: dict[str, float]) -> str:
    """The closing table: each attack, caught or not, by what, how fast; then the totals,
    and the alerts counted as false (:func:`false_alert_lines`).

    Time to detect is given twice: wall seconds from sending the attack's first
    event to the first matching alert reaching the receiver, and in event time
    from the attack's start to the alert's event time.
    """
    alerts, arrived = receiver.snapshot()
    found, false_alerts = match_alerts(attacks, alerts)
    rows = [("attack", "kind", "caught", "by", "detect", "event time")]
    for attack in attacks:
        hits = found[attack.id]
        sent = [sent_at[event] for event in attack.events if event in sent_at]
        if not hits:
            rows.append((attack.id, attack.kind, "no", "-" if sent else "(not played)", "", ""))
            continue
        by = ", ".join(sorted({str(a.get("rule") or a.get("model")) for a in hits}))
        first = min(arrived[a["id"]] for a in hits)
        wall = f"{max(0.0, first - min(sent)):.1f} s" if sent else "?"
        delay = min(_time(a["time"]) for a in hits) - attack.start
        rows.append((attack.id, attack.kind, "yes", by, wall, _span(delay)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    lines = [f"{line}  {row[-1]}".rstrip() for line, row in zip(lines, rows, strict=True)]
    lines.insert(1, "-" * max(len(line) for line in lines))
    caught = {kind: _caught(attacks, found, kind) for kind in ("rule", "behavioural")}
    total = sum(c for c, _ in caught.values()), len(attacks)
    lines.append(
        f"caught {caught['rule'][0]}/{caught['rule'][1]} rule-shaped and "
        f"{caught['behavioural'][0]}/{caught['behavioural'][1]} behavioural attacks "
        f"({total[0]}/{total[1]}); {len(alerts)} alerts, {len(false_alerts)} false "
        "(matching no attack)"
    )
    lines.extend(false_alert_lines(false_alerts))
    return "\n".join(lines) + "\n"


def false_alert_lines(
    false_alerts: Sequence[dict[str, Any]], shown: int = FALSE_SHOWN
) -> list[str]:
    """The alerts matching no attack, in event-time order: time, kind, rule or model, actor.

    At most ``shown`` lines, then a count of the rest; fields escaped for the terminal.
    """
    if not false_alerts:
        return []
    ordered = sorted(false_alerts, key=lambda alert: str(alert.get("time")))
    lines = ["false alerts (matching no attack):"]
    for alert in ordered[:shown]:
        name = alert.get("rule") or alert.get("model") or "-"
        fields = (str(alert.get("time"))[:16].replace("T", " "), alert.get("kind"), name)
        when, kind, detector = (printable(str(field), limit=80) for field in fields)
        actor = printable(str(alert.get("actor") or "-"), limit=80)
        lines.append(f"  {when}  {kind} {detector}  {actor}")
    if len(ordered) > shown:
        lines.append(f"  ... and {len(ordered) - shown} more")
    return lines


def _caught(
    attacks: Sequence[Attack], found: dict[str, list[dict[str, Any]]], kind: str
) -> tuple[int, int]:
    of_kind = [attack for attack in attacks if attack.kind == kind]
    return sum(1 for attack in of_kind if found[attack.id]), len(of_kind)


def _span(delay: timedelta) -> str:
    seconds = max(0.0, delay.total_seconds())
    return f"+{seconds:.0f} s" if seconds < 120 else f"+{seconds / 60:.0f} min"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
