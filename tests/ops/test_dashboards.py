"""Static checks of the Grafana dashboards and their provisioning files.

Every query must read a metric the daemon exports, filter on the namespace and
instance variables and go through the `datasource` variable, so one JSON file
works in any Grafana and against any Prometheus. Running the queries against a
real Prometheus is another test's job; here they must at least parse (promtool).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.metrics import Metrics
from tests.ops import REPO_ROOT
from tests.ops.grafana import (
    DASHBOARDS,
    PanelQuery,
    load,
    panel_queries,
    panels,
    substitute,
    variable_queries,
)
from tests.ops.prom_rules import documented_metrics, family_name
from tests.ops.promql import metric_names, selectors

# What Grafana 12.0 and 12.1 write; later versions migrate it on load.
PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
SCHEMA_VERSION = 41
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "ciwatch-overview.json": "ciwatch-overview",
    "ciwatch-operations.json": "ciwatch-operations",
}
WITHOUT_DATA = {"row", "text"}

by_file = pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)


def exported_metrics() -> set[str]:
    """Sample names the daemon's registry exports, from its families' names and types."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
        "info": ("_info",),
    }
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def all_queries(path: Path) -> list[PanelQuery]:
    return panel_queries(load(path)) + variable_queries(load(path))


def raw_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable(dashboard: dict[str, Any], name: str) -> dict[str, Any]:
    found = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    assert len(found) == 1, f"variable {name}"
    chosen: dict[str, Any] = found[0]
    return chosen


def overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in re.sub(r'"(?:\\.|[^"\\])*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


@by_file
def test_dashboard_is_a_current_grafana_model(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] == UIDS[path.name]
    assert dashboard["title"].startswith("ciwatch / ")
    assert dashboard["schemaVersion"] >= SCHEMA_VERSION
    assert dashboard["tags"] == ["ciwatch"]
    assert dashboard["refresh"] == "30s"
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    assert dashboard["timezone"] in {"browser", "utc"}
    assert dashboard["id"] is None


def test_titles_are_distinct() -> None:
    assert len({load(path)["title"] for path in DASHBOARDS}) == len(DASHBOARDS)


@by_file
def test_links_lead_to_the_other_dashboard(path: Path) -> None:
    other = ({"ciwatch-overview", "ciwatch-operations"} - {load(path)["uid"]}).pop()
    links = load(path)["links"]
    assert [link["url"] for link in links] == [f"/d/{other}"]
    assert all(link["includeVars"] and link["keepTime"] for link in links)


@by_file
def test_no_import_placeholders(path: Path) -> None:
    # The chart's ConfigMaps are loaded by the sidecar, which does not fill __inputs.
    text = path.read_text()
    assert "__inputs" not in load(path)
    assert "${DS_" not in text


@by_file
def test_panel_ids_are_unique(path: Path) -> None:
    ids = [panel["id"] for panel in panels(load(path))]
    assert len(ids) == len(set(ids))


@by_file
def test_panels_are_grouped_in_rows_and_do_not_overlap(path: Path) -> None:
    top = load(path)["panels"]
    assert top[0]["type"] == "row"
    # Collapsed rows keep their panels aside: each such group is laid out on its own.
    groups = [top] + [row["panels"] for row in top if row.get("collapsed")]
    for group in groups:
        grids = [(panel["title"], panel["gridPos"]) for panel in group]
        for title, grid in grids:
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, title
        for i, (title, grid) in enumerate(grids):
            clashes = [other for other, pos in grids[i + 1 :] if overlaps(grid, pos)]
            assert not clashes, f"{title} overlaps {clashes}"


@by_file
def test_datasource_variable_feeds_every_panel_and_target(path: Path) -> None:
    dashboard = load(path)
    chooser = variable(dashboard, "datasource")
    assert (chooser["type"], chooser["query"]) == ("datasource", "prometheus")
    for panel in panels(dashboard):
        if panel["type"] in WITHOUT_DATA:
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


@by_file
def test_namespace_and_instance_variables(path: Path) -> None:
    dashboard = load(path)
    namespace, instance = variable(dashboard, "namespace"), variable(dashboard, "instance")
    assert namespace["query"] == "label_values(ciwatch_ready, namespace)"
    assert instance["query"] == 'label_values(ciwatch_ready{namespace=~"$namespace"}, instance)'
    for chooser in (namespace, instance):
        assert chooser["datasource"] == DATASOURCE
        assert chooser["includeAll"] and chooser["multi"] and chooser["allValue"] == ".*"


@by_file
def test_every_selector_filters_on_namespace_and_instance(path: Path) -> None:
    for title, expr in raw_exprs(load(path)):
        found = selectors(expr)
        assert found, f"{title}: no metric in {expr}"
        for metric, matchers in found:
            assert 'namespace=~"$namespace"' in matchers, f"{title}: {metric}"
            assert 'instance=~"$instance"' in matchers, f"{title}: {metric}"


@by_file
def test_ranges_use_grafana_intervals(path: Path) -> None:
    # Fixed windows break at other scrape intervals; $__rate_interval adapts.
    for title, expr in raw_exprs(load(path)):
        windows = set(re.findall(r"\[([^\]]*)\]", expr))
        assert windows <= {"$__rate_interval", "$__range"}, f"{title}: {windows}"
        assert "$__interval" not in expr, title


@by_file
def test_panels_have_title_description_and_unit(path: Path) -> None:
    for panel in panels(load(path)):
        assert panel.get("title"), panel["id"]
        if panel["type"] in WITHOUT_DATA:
            continue
        assert panel.get("description"), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


@by_file
def test_series_have_readable_legends(path: Path) -> None:
    for panel in panels(load(path)):
        if panel["type"] in {"timeseries", "bargauge", "heatmap"}:
            for target in panel["targets"]:
                legend = target.get("legendFormat", "")
                assert legend and legend != "__auto", panel["title"]


@by_file
def test_exprs_are_balanced_and_fully_substituted(path: Path) -> None:
    queries = all_queries(path)
    assert queries
    for query in queries:
        assert balanced(query.expr), f"{query.panel}: {query.expr}"
        assert "$" not in query.expr, f"{query.panel}: {query.expr}"


@by_file
def test_exprs_parse_as_promql(path: Path, tmp_path: Path) -> None:
    queries = all_queries(path)
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"ciwatch:dashboard_query_{i}:check", "expr": query.expr}
                    for i, query in enumerate(queries)
                ],
            }
        ]
    }
    rules_file = tmp_path / "queries.yaml"
    rules_file.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@by_file
def test_every_metric_is_exported_by_the_daemon(path: Path) -> None:
    exported = exported_metrics()
    for query in all_queries(path):
        missing = metric_names(query.expr) - exported
        assert not missing, f"{query.panel}: {sorted(missing)} not in detector.metrics"


@by_file
def test_every_ciwatch_metric_is_documented(path: Path) -> None:
    documented = documented_metrics()
    for query in all_queries(path):
        for name in metric_names(query.expr):
            if name.startswith("ciwatch_"):
                assert family_name(name, documented) in documented, f"{query.panel}: {name}"


def test_every_ciwatch_metric_has_a_panel() -> None:
    used = {name for path in DASHBOARDS for q in all_queries(path) for name in metric_names(q.expr)}
    families = {family.name for family in Metrics().registry.collect()}
    unused = {f for f in families if not any(name.startswith(f) for name in used)}
    # Virtual memory and the fd limit say little about the daemon; the rest must show.
    assert unused == {"process_virtual_memory_bytes", "process_max_fds"}


def test_dashboard_provider_points_at_the_chart_mount() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "ciwatch"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/ciwatch"


def test_example_datasource_is_prometheus() -> None:
    config = yaml.safe_load((PROVISIONING / "datasources.yaml").read_text())
    (source,) = config["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")


def test_substitute_fills_grafana_variables() -> None:
    expr = 'rate(x{namespace=~"$namespace", instance=~"${instance}"}[$__rate_interval])'
    assert substitute(expr, rate_interval="2m") == 'rate(x{namespace=~".*", instance=~".*"}[2m])'
    assert substitute("increase(x[$__range])", range_="1h") == "increase(x[1h])"


@pytest.mark.parametrize("expr", ["rate(x[$__rate_interval_ms])", 'x{job="$job"}', "x{a=~'$'}"])
def test_substitute_rejects_unknown_variables(expr: str) -> None:
    with pytest.raises(ValueError):
        substitute(expr)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('histogram_quantile(0.9, sum by (le) (rate(a_bucket{le="+Inf"}[5m])))', {"a_bucket"}),
        ("time() - b_seconds", {"b_seconds"}),
        ("a / on(instance) group_left(job) b > bool 1e-9", {"a", "b"}),
        ("sum without (rule) (c_total offset 1h) or vector(0)", {"c_total"}),
        ('count by (model) (m{x="sum(y)"}) * Inf', {"m"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_metric_names_rejects_unknown_functions() -> None:
    with pytest.raises(ValueError, match="ratez"):
        metric_names("ratez(x[5m])")


def test_panels_include_those_in_collapsed_rows() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "id": 1, "collapsed": True, "panels": [{"id": 2}, {"id": 3}]},
            {"type": "row", "id": 4, "collapsed": False, "panels": []},
            {"type": "stat", "id": 5},
        ]
    }
    assert [panel["id"] for panel in panels(dashboard)] == [1, 2, 3, 4, 5]
