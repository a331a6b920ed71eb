"""The Grafana dashboards: committed JSON (the package's data) matches the generator, every dashboard
passes the lint (tests/dashboard_lint.py), and the panels say what they are meant to."""

import copy
import re

import pytest
from dashboard_lint import RULES, check_expressions_parse, exprs, panels, query_panels, variable

from dashboards import grafana
from dashboards.grafana import build_dashboards, dumps
from dashboards.render import panel_queries

COMMITTED = grafana.OUT_DIR
DASHBOARDS = build_dashboards()
UIDS = {grafana.OVERVIEW_FILE: "litellm-rust-overview", grafana.COMPONENT_FILE: "litellm-rust-component"}

by_file = pytest.mark.parametrize("name", sorted(DASHBOARDS))


# -- generated == committed ---------------------------------------------------------------------


def test_the_committed_folder_holds_exactly_the_generated_dashboards():
    # `litellm-rust export grafana` ships every file in it: a stale extra one would ship too.
    assert sorted(path.name for path in COMMITTED.iterdir()) == sorted(DASHBOARDS)


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


# -- the lint ------------------------------------------------------------------------------------


@by_file
@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_dashboard_passes_the_lint_rule(name, rule):
    assert list(rule(DASHBOARDS[name])) == []


def _first_target(dashboard):
    return query_panels(dashboard)[0]["targets"][0]


# One way to break each rule, so a rule that stopped finding anything would fail here.
BREAKAGES = {
    "datasource_variable_is_prometheus": lambda d: variable(d, "datasource").update(query="loki"),
    "label_variables_query_the_calls_metric": lambda d: variable(d, "job").update(query="label_values(up, job)"),
    "variables_are_chained_by_job_and_instance": lambda d: variable(d, "instance").update(
        query="label_values(litellm_rust_operation_calls_total, instance)"
    ),
    "panel_ids_are_unique": lambda d: query_panels(d)[1].update(id=query_panels(d)[0]["id"]),
    "every_panel_has_a_description_and_a_unit": lambda d: query_panels(d)[0].update(description=""),
    "every_target_uses_the_datasource_variable": lambda d: _first_target(d)["datasource"].update(uid="prom-1"),
    "every_selector_filters_on_job_and_instance": lambda d: _first_target(d).update(
        expr='sum(rate(litellm_rust_operation_calls_total{job=~"$job"}[$__rate_interval]))'
    ),
    "every_rate_uses_rate_interval": lambda d: _first_target(d).update(
        expr='sum(rate(litellm_rust_operation_calls_total{job=~"$job", instance=~"$instance"}[5m]))'
    ),
}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_lint_rule_reports_a_broken_dashboard(rule):
    broken = copy.deepcopy(DASHBOARDS[grafana.OVERVIEW_FILE])
    BREAKAGES[rule.__name__](broken)
    assert list(rule(broken))


def test_every_expression_parses_with_promtool(tmp_path):
    check_expressions_parse(DASHBOARDS, tmp_path)


# -- what the panels show ------------------------------------------------------------------------


def test_overview_repeats_a_row_per_component():
    assert variable(DASHBOARDS[grafana.OVERVIEW_FILE], "component")["multi"] is True
    rows = [p for p in panels(DASHBOARDS[grafana.OVERVIEW_FILE]) if p["type"] == "row"]
    assert [row.get("repeat") for row in rows] == ["component"]


def test_drill_down_selects_one_component():
    component = variable(DASHBOARDS[grafana.COMPONENT_FILE], "component")
    assert component["multi"] is False and component["includeAll"] is False


def test_drill_down_links_back_to_the_overview():
    urls = [link.get("url", "") for link in DASHBOARDS[grafana.COMPONENT_FILE]["links"]]
    assert "/d/litellm-rust-overview" in urls


def test_overview_panels_link_to_the_drill_down():
    for panel in query_panels(DASHBOARDS[grafana.OVERVIEW_FILE]):
        assert any(link["url"].startswith("/d/litellm-rust-component?") for link in panel.get("links", [])), panel[
            "title"
        ]


def test_breaker_panels_map_states_to_names():
    for name in DASHBOARDS:
        breakers = [p for p in query_panels(DASHBOARDS[name]) if "breaker" in p["title"].lower()]
        assert breakers, name
        for panel in breakers:
            options = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
            assert {k: v["text"] for k, v in options.items()} == {"0": "closed", "1": "half-open", "2": "open"}


def test_latency_quantiles_compare_rust_and_python():
    overview = {p["title"]: p for p in query_panels(DASHBOARDS[grafana.OVERVIEW_FILE])}
    latency = overview["Latency p50/p95/p99: Rust vs Python"]
    quantiles = [re.match(r"histogram_quantile\(([\d.]+),", t["expr"]).group(1) for t in latency["targets"]]
    assert quantiles == ["0.5", "0.95", "0.99"]
    assert all("litellm_rust_implementation" in t["expr"] for t in latency["targets"])
    speedup = overview["Speed-up (Python / Rust)"]["targets"][0]["expr"]
    python, rust = speedup.split(" / histogram_quantile")
    assert 'litellm_rust_implementation="python"' in python and 'litellm_rust_implementation="rust"' in rust


@by_file
def test_alert_panels_show_the_components_and_the_control_planes_alerts(name):
    alert_exprs = [expr for _, expr in exprs(DASHBOARDS[name]) if "ALERTS{" in expr]
    assert alert_exprs
    for expr in alert_exprs:
        assert 'alertname=~"LiteLLMRust.*"' in expr and 'component=~"$component|control_plane"' in expr
        assert "or on() " in expr, "an alert panel must show 0 rather than nothing while none fires"


# -- panel_queries --------------------------------------------------------------------------------


@by_file
def test_panel_queries_expands_every_target(name):
    queries = panel_queries(DASHBOARDS[name], {"__rate_interval": "30s"})
    assert [title for title, _ in queries] == [title for title, _ in exprs(DASHBOARDS[name])]
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
