"""The Grafana dashboards: committed JSON matches the generator, and every panel passes the lint rules.

Rules (monitoring-mixin conventions): datasource/job/instance/component variables; every target on
`${datasource}`; every selector filtered by `$job` and `$instance`; every rate/irate/increase over
`$__rate_interval`; a description and a unit on every panel; unique ids; stable uids; every
expression parses (`promtool check rules`).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
from servers import require_tool

from dashboards import grafana
from dashboards.grafana import build_dashboards, dumps
from dashboards.render import _panels, panel_queries

COMMITTED = Path(grafana.__file__).resolve().parent / "grafana"
DASHBOARDS = build_dashboards()
UIDS = {grafana.OVERVIEW_FILE: "litellm-rust-overview", grafana.COMPONENT_FILE: "litellm-rust-component"}

by_file = pytest.mark.parametrize("name", sorted(DASHBOARDS))


def panels(name):
    """Every panel of a dashboard, rows and panels nested in collapsed rows included."""
    return list(_panels(DASHBOARDS[name]["panels"]))


def query_panels(name):
    return [panel for panel in panels(name) if panel["type"] != "row"]


def exprs(name):
    return [(panel["title"], target["expr"]) for panel in query_panels(name) for target in panel["targets"]]


def variable(name, var):
    matches = [v for v in DASHBOARDS[name]["templating"]["list"] if v["name"] == var]
    assert len(matches) == 1, f"{name}: template variable {var!r} missing or duplicated"
    return matches[0]


# -- generated == committed ---------------------------------------------------------------------


@by_file
def test_committed_json_is_the_generator_output(name):
    path = COMMITTED / name
    assert path.is_file(), f"{path} missing: run python -m dashboards.grafana"
    assert path.read_text(encoding="utf-8") == dumps(DASHBOARDS[name]), (
        f"{path} is stale: run python -m dashboards.grafana"
    )


def test_generation_is_deterministic():
    assert {name: dumps(model) for name, model in build_dashboards().items()} == {
        name: dumps(model) for name, model in DASHBOARDS.items()
    }


def test_cli_writes_every_dashboard(tmp_path):
    assert grafana.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(DASHBOARDS)
    assert grafana.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / grafana.OVERVIEW_FILE).write_text("{}\n")
    assert grafana.main(["--out", str(tmp_path), "--check"]) == 1


@by_file
def test_uid_is_stable(name):
    assert DASHBOARDS[name]["uid"] == UIDS[name]


# -- variables ----------------------------------------------------------------------------------


@by_file
def test_datasource_variable_is_prometheus(name):
    datasource = variable(name, "datasource")
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"


@by_file
@pytest.mark.parametrize("var", ["job", "instance", "component"])
def test_label_variables_query_the_calls_metric_on_the_datasource(name, var):
    v = variable(name, var)
    assert v["type"] == "query"
    assert v["datasource"]["uid"] == "${datasource}"
    assert v["query"].startswith(f"label_values({grafana.CALLS}")


@by_file
def test_variables_are_chained_by_job_and_instance(name):
    assert 'job=~"$job"' in variable(name, "instance")["query"]
    component = variable(name, "component")["query"]
    assert 'job=~"$job"' in component and 'instance=~"$instance"' in component
    assert component.endswith(", litellm_rust_operation)")


def test_overview_repeats_a_row_per_component():
    assert variable(grafana.OVERVIEW_FILE, "component")["multi"] is True
    rows = [p for p in panels(grafana.OVERVIEW_FILE) if p["type"] == "row"]
    assert [row.get("repeat") for row in rows] == ["component"]


def test_drill_down_selects_one_component():
    component = variable(grafana.COMPONENT_FILE, "component")
    assert component["multi"] is False and component["includeAll"] is False


def test_drill_down_links_back_to_the_overview():
    urls = [link.get("url", "") for link in DASHBOARDS[grafana.COMPONENT_FILE]["links"]]
    assert "/d/litellm-rust-overview" in urls


def test_overview_panels_link_to_the_drill_down():
    for panel in query_panels(grafana.OVERVIEW_FILE):
        assert any(link["url"].startswith("/d/litellm-rust-component?") for link in panel.get("links", [])), panel[
            "title"
        ]


# -- panels -------------------------------------------------------------------------------------


@by_file
def test_panel_ids_are_unique(name):
    ids = [panel["id"] for panel in panels(name)]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(i, int) and i > 0 for i in ids)


@by_file
def test_every_panel_has_a_description_and_a_unit(name):
    for panel in query_panels(name):
        assert panel.get("description", "").strip(), f"{panel['title']}: no description"
        assert panel.get("fieldConfig", {}).get("defaults", {}).get("unit"), f"{panel['title']}: no unit"


@by_file
def test_every_panel_and_target_uses_the_datasource_variable(name):
    for panel in query_panels(name):
        assert panel["datasource"]["uid"] in ("${datasource}", "$datasource"), panel["title"]
        assert panel["targets"], f"{panel['title']}: no targets"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in ("${datasource}", "$datasource"), panel["title"]
            assert target["datasource"]["type"] == "prometheus", panel["title"]


SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
# What is left of an expression without its selectors, grouping label lists and strings: a metric
# name still in it has no selector at all.
NOT_METRICS = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\"[^\"]*\"")
METRIC = re.compile(r"\b(litellm_rust_\w+|ALERTS)\b")


@by_file
def test_every_selector_filters_on_job_and_instance(name):
    for title, expr in exprs(name):
        assert not METRIC.findall(NOT_METRICS.sub("", SELECTOR.sub("", expr))), f"{title}: bare metric in {expr}"
        selectors = SELECTOR.findall(expr)
        assert selectors, f"{title}: no selector in {expr}"
        for metric, matchers in selectors:
            assert 'job=~"$job"' in matchers, f"{title}: {metric} not filtered on $job"
            assert 'instance=~"$instance"' in matchers, f"{title}: {metric} not filtered on $instance"


def _calls(expr, function):
    """The argument text of every call of `function` in `expr`."""
    for match in re.finditer(rf"\b{function}\s*\(", expr):
        depth, start = 1, match.end()
        for i in range(start, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            if depth == 0:
                yield expr[start:i]
                break
        else:
            pytest.fail(f"unbalanced parentheses in {expr}")


@by_file
def test_every_rate_uses_rate_interval(name):
    for title, expr in exprs(name):
        for function in ("rate", "irate", "increase"):
            for argument in _calls(expr, function):
                ranges = re.findall(r"\[([^\]]*)\]", argument)
                assert ranges == ["$__rate_interval"], f"{title}: {function}({argument})"
        # and no range selector anywhere else uses a fixed window
        assert set(re.findall(r"\[([^\]]*)\]", expr)) <= {"$__rate_interval"}, f"{title}: {expr}"


def test_breaker_panels_map_states_to_names():
    for name in DASHBOARDS:
        breakers = [p for p in query_panels(name) if "breaker" in p["title"].lower()]
        assert breakers, name
        for panel in breakers:
            options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
            assert {k: v["text"] for k, v in options.items()} == {"0": "closed", "1": "half-open", "2": "open"}


def test_latency_quantiles_compare_rust_and_python():
    overview = {p["title"]: p for p in query_panels(grafana.OVERVIEW_FILE)}
    latency = overview["Latency p50/p95/p99: Rust vs Python"]
    quantiles = [re.match(r"histogram_quantile\(([\d.]+),", t["expr"]).group(1) for t in latency["targets"]]
    assert quantiles == ["0.5", "0.95", "0.99"]
    assert all("litellm_rust_implementation" in t["expr"] for t in latency["targets"])
    speedup = overview["Speed-up (Python / Rust)"]["targets"][0]["expr"]
    python, rust = speedup.split(" / histogram_quantile")
    assert 'litellm_rust_implementation="python"' in python and 'litellm_rust_implementation="rust"' in rust


@by_file
def test_alert_panels_show_the_components_and_the_control_planes_alerts(name):
    alert_exprs = [expr for _, expr in exprs(name) if "ALERTS{" in expr]
    assert alert_exprs
    for expr in alert_exprs:
        assert 'alertname=~"LiteLLMRust.*"' in expr and 'component=~"$component|control_plane"' in expr
        assert "or on() " in expr, "an alert panel must show 0 rather than nothing while none fires"


# -- panel_queries --------------------------------------------------------------------------------


@by_file
def test_panel_queries_expands_every_target(name):
    queries = panel_queries(DASHBOARDS[name], {"__rate_interval": "30s"})
    assert [title for title, _ in queries] == [title for title, _ in exprs(name)]
    for title, expr in queries:
        assert "$" not in expr, f"{title}: {expr}"
        assert "[30s]" in expr or "rate(" not in expr, f"{title}: {expr}"


def test_panel_queries_substitutes_given_values():
    queries = panel_queries(
        DASHBOARDS[grafana.COMPONENT_FILE], {"job": "litellm", "instance": ["a:1", "b:2"], "component": "token_counter"}
    )
    calls = dict(queries)["Calls/s by implementation and mode"]
    assert 'job=~"litellm"' in calls and 'instance=~"(a:1|b:2)"' in calls
    assert 'litellm_rust_operation=~"token_counter"' in calls and "[1m]" in calls


def test_panel_queries_includes_panels_nested_in_collapsed_rows():
    dashboard = {
        "panels": [
            {
                "type": "row",
                "title": "r",
                "panels": [{"type": "timeseries", "title": "nested", "targets": [{"expr": 'up{job=~"$job"}'}]}],
            }
        ]
    }
    assert panel_queries(dashboard, {"job": "x"}) == [("nested", 'up{job=~"x"}')]


def test_panel_queries_rejects_unknown_variables():
    dashboard = {"panels": [{"type": "stat", "title": "t", "targets": [{"expr": 'up{a=~"$nope"}'}]}]}
    with pytest.raises(KeyError):
        panel_queries(dashboard, {})


# -- every expression parses --------------------------------------------------------------------


def test_every_expression_parses_with_promtool(tmp_path):
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:{Path(name).stem.replace('-', '_')}:target_{i}", "expr": expr}
        for name in sorted(DASHBOARDS)
        for i, (_, expr) in enumerate(panel_queries(DASHBOARDS[name], {"__rate_interval": "1m"}))
    ]
    assert rules
    path = tmp_path / "dashboard-queries.yml"
    # JSON is YAML: no YAML dependency needed.
    path.write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout + result.stderr
