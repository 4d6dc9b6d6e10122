"""Human summaries printed at the end of a command (stderr, plain text tables)."""

from __future__ import annotations

from collections import Counter

from detector.detections import Severity
from detector.outcomes import RunStats
from detector.pipeline import Pipeline

__all__ = ["learning_summary", "replay_summary", "table"]


def table(header: list[str], rows: list[list[str]]) -> str:
    """A left-aligned text table; numeric columns (all digits) are right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = [
        all(not r[i] or r[i].replace(",", "").isdigit() for r in rows) for i in range(len(header))
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def replay_summary(stats: RunStats, elapsed_s: float) -> str:
    """Events, dead letters, alerts by rule and severity, throughput."""
    dead = stats.dead_letters.total()
    lines = [
        f"records      {stats.records:,}",
        f"events       {stats.events:,}" + _in_brackets(_event_notes(stats)),
        f"dead letters {dead:,}" + _in_brackets(_by_count(stats.dead_letters)),
        *(
            [f"skipped      {stats.skipped.total():,}" + _in_brackets(_by_count(stats.skipped))]
            if stats.skipped
            else []
        ),
        f"alerts       {stats.alerts.total():,}"
        + (f" (+{stats.folded:,} repeats folded into them)" if stats.folded else ""),
        f"throughput   {stats.events / max(elapsed_s, 1e-9):,.0f} events/s ({elapsed_s:.2f} s)",
    ]
    if stats.alerts:
        lines += ["", _alert_table(stats.alerts)]
    return "\n".join(lines)


def _event_notes(stats: RunStats) -> str:
    notes = []
    if stats.late_events:
        notes.append(f"{stats.late_events:,} late")
    if stats.duplicates:
        notes.append(f"{stats.duplicates.total():,} duplicates")
    return ", ".join(notes)


def _by_count(counts: Counter[str]) -> str:
    return ", ".join(f"{reason}: {n:,}" for reason, n in counts.most_common())


def _in_brackets(text: str) -> str:
    return f" ({text})" if text else ""


def _alert_table(alerts: Counter[tuple[str, str]]) -> str:
    by_rule: dict[str, Counter[str]] = {}
    for (rule, severity), count in alerts.items():
        by_rule.setdefault(rule, Counter())[severity] += count
    severities = [s for s in reversed(Severity) if any(s.value in c for c in by_rule.values())]
    order = sorted(by_rule, key=lambda r: (-max(Severity(s).rank for s in by_rule[r]), r))
    rows = [
        [rule, *(str(by_rule[rule][s.value] or "") for s in severities), str(by_rule[rule].total())]
        for rule in order
    ]
    return table(["rule", *(s.value for s in severities), "total"], rows)


def learning_summary(pipeline: Pipeline) -> str:
    """What ``--learn`` did: the generations published, the checks, the learning period."""
    learner, scorer = pipeline.learner, pipeline.scorer
    if learner is None:
        return ""
    generations = learner.store.generations()
    held = sum(scorer.in_learning.values()) if scorer is not None else 0
    start = learner.alert_from
    lines = [
        "",
        f"learning     alerts from {start.isoformat() if start else 'never (no rows)'}; "
        f"{held:,} anomalies scored in the learning period, not alerted",
        f"generations  {len(generations):,} kept"
        + (f", current {learner.generation.number}" if learner.generation else ", none yet"),
    ]
    rows = [
        [
            str(g.number),
            g.trained_until.isoformat() if g.trained_until else "",
            f"{sum(g.rows.values()):,}",
            ",".join(g.families),
            ",".join(g.carried) or "-",
        ]
        for g in generations
    ]
    if rows:
        lines += ["", table(["generation", "trained until", "rows", "families", "carried"], rows)]
    return "\n".join(lines)
