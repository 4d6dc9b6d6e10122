"""Read the Grafana dashboards in grafana/dashboards and the PromQL inside them.

The dashboards are tested twice: statically (tests/ops/test_dashboards.py) and by
running every panel query against a real Prometheus that scrapes a live daemon.
Both need the same things: the panels (including those tucked into collapsed
rows), each target's expression with Grafana's template variables replaced by
values Prometheus accepts, and the metric names an expression reads.

Example::

    for query in panel_queries(load(DASHBOARDS[0])):
        prometheus.query(query.expr)  # no `$` left; unknown variables raised earlier
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ops import REPO_ROOT

__all__ = [
    "DASHBOARDS",
    "DASHBOARD_DIR",
    "PanelQuery",
    "load",
    "panel_queries",
    "panels",
    "substitute",
    "variable_queries",
]

DASHBOARD_DIR = REPO_ROOT / "grafana" / "dashboards"
DASHBOARDS: list[Path] = [
    DASHBOARD_DIR / "ciwatch-overview.json",
    DASHBOARD_DIR / "ciwatch-operations.json",
]

_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel, its expression ready for Prometheus."""

    dashboard: str  # the dashboard's uid
    panel: str  # the panel's title
    ref_id: str
    expr: str


def load(path: Path) -> dict[str, Any]:
    """The dashboard JSON model in ``path``."""
    model = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(model, dict):
        raise ValueError(f"{path}: a dashboard is a JSON object, found {type(model).__name__}")
    return model


def _model(dashboard: Mapping[str, Any] | Path) -> Mapping[str, Any]:
    return load(dashboard) if isinstance(dashboard, Path) else dashboard


def panels(dashboard: Mapping[str, Any] | Path) -> list[dict[str, Any]]:
    """Every panel, rows included, with the panels of collapsed rows after their row."""
    found: list[dict[str, Any]] = []
    for panel in _model(dashboard).get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def substitute(expr: str, *, rate_interval: str = "1m", range_: str = "5m") -> str:
    """``expr`` with the dashboards' template variables replaced; ValueError for any other.

    ``$namespace`` and ``$instance`` only appear in regex matchers, so "All" (``.*``)
    is what they stand for.
    """
    values = {
        "namespace": ".*",
        "instance": ".*",
        "__rate_interval": rate_interval,
        "__interval": rate_interval,
        "__range": range_,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    result = _VARIABLE.sub(replace, expr)
    if "$" in result:
        raise ValueError(f"a '$' Grafana would not substitute is left in {expr!r}")
    return result


def panel_queries(
    dashboard: Mapping[str, Any] | Path, *, rate_interval: str = "1m", range_: str = "5m"
) -> list[PanelQuery]:
    """Every target's expression across all panels, variables substituted."""
    model = _model(dashboard)
    return [
        PanelQuery(
            dashboard=str(model.get("uid", "")),
            panel=str(panel.get("title", "")),
            ref_id=str(target.get("refId", "")),
            expr=substitute(target["expr"], rate_interval=rate_interval, range_=range_),
        )
        for panel in panels(model)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def variable_queries(dashboard: Mapping[str, Any] | Path) -> list[PanelQuery]:
    """The PromQL inside the ``label_values(...)`` of each query variable, substituted.

    ``panel`` is ``variable <name>`` so failures read well next to panel queries.
    """
    model = _model(dashboard)
    found = []
    for variable in model.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, Mapping) else str(query)
        inner = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", text, re.DOTALL)
        if inner is None:
            raise ValueError(
                f"variable {variable.get('name')}: expected label_values(...), {text!r}"
            )
        found.append(
            PanelQuery(
                dashboard=str(model.get("uid", "")),
                panel=f"variable {variable.get('name')}",
                ref_id=inner.group(2),
                expr=substitute(inner.group(1)),
            )
        )
    return found
