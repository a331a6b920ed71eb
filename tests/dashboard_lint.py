"""The dashboard lint (monitoring-mixin conventions), shared by the generator's tests and the export's.

One function per rule, each yielding its problems with a dashboard's JSON model: datasource, job,
instance and component variables; every target on `${datasource}`; every selector filtered by `$job` and
`$instance`; every rate/irate/increase over `$__rate_interval`; a description and a unit on every
panel; unique panel ids. `check_expressions_parse` runs every expression through `promtool check rules`.
"""

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from servers import require_tool

from dashboards.grafana import CALLS
from dashboards.render import _panels, panel_queries

DATASOURCE_UIDS = ("${datasource}", "$datasource")


def panels(dashboard: Mapping) -> list[dict]:
    """Every panel of a dashboard, rows and panels nested in collapsed rows included."""
    return list(_panels(dashboard["panels"]))


def query_panels(dashboard: Mapping) -> list[dict]:
    return [panel for panel in panels(dashboard) if panel["type"] != "row"]


def exprs(dashboard: Mapping) -> list[tuple[str, str]]:
    """(panel title, expression) of every target."""
    return [(panel["title"], target["expr"]) for panel in query_panels(dashboard) for target in panel["targets"]]


def variable(dashboard: Mapping, name: str) -> dict | None:
    """The template variable `name`, or None when it is missing or defined twice."""
    matches = [v for v in dashboard["templating"]["list"] if v["name"] == name]
    return matches[0] if len(matches) == 1 else None


# -- rules ----------------------------------------------------------------------------------------


def datasource_variable_is_prometheus(dashboard: Mapping) -> Iterator[str]:
    datasource = variable(dashboard, "datasource")
    if datasource is None or (datasource["type"], datasource.get("query")) != ("datasource", "prometheus"):
        yield f"no single Prometheus `datasource` variable: {datasource}"


def label_variables_query_the_calls_metric(dashboard: Mapping) -> Iterator[str]:
    for name in ("job", "instance", "component"):
        v = variable(dashboard, name)
        if v is None:
            yield f"template variable {name!r} missing or duplicated"
        elif v["type"] != "query" or v["datasource"]["uid"] not in DATASOURCE_UIDS:
            yield f"${name} is not a query on the datasource variable"
        elif not v["query"].startswith(f"label_values({CALLS}"):
            yield f"${name} does not read {CALLS}: {v['query']}"


def variables_are_chained_by_job_and_instance(dashboard: Mapping) -> Iterator[str]:
    instance, component = variable(dashboard, "instance"), variable(dashboard, "component")
    if instance is None or 'job=~"$job"' not in instance["query"]:
        yield "$instance is not filtered by $job"
    if component is None or not ('job=~"$job"' in component["query"] and 'instance=~"$instance"' in component["query"]):
        yield "$component is not filtered by $job and $instance"
    elif not component["query"].endswith(", litellm_rust_operation)"):
        yield f"$component does not list litellm_rust_operation: {component['query']}"


def panel_ids_are_unique(dashboard: Mapping) -> Iterator[str]:
    ids = [panel.get("id") for panel in panels(dashboard)]
    if len(ids) != len(set(ids)):
        yield f"duplicate panel ids: {ids}"
    yield from (f"panel id {i!r} is not a positive integer" for i in ids if not (isinstance(i, int) and i > 0))


def every_panel_has_a_description_and_a_unit(dashboard: Mapping) -> Iterator[str]:
    for panel in query_panels(dashboard):
        if not panel.get("description", "").strip():
            yield f"{panel['title']}: no description"
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            yield f"{panel['title']}: no unit"


def every_target_uses_the_datasource_variable(dashboard: Mapping) -> Iterator[str]:
    for panel in query_panels(dashboard):
        if panel["datasource"]["uid"] not in DATASOURCE_UIDS:
            yield f"{panel['title']}: panel datasource {panel['datasource']}"
        if not panel["targets"]:
            yield f"{panel['title']}: no targets"
        for target in panel["targets"]:
            if target["datasource"]["uid"] not in DATASOURCE_UIDS or target["datasource"]["type"] != "prometheus":
                yield f"{panel['title']}: target datasource {target['datasource']}"


SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
# What is left of an expression without its selectors, grouping label lists and strings: a metric
# name still in it has no selector at all.
NOT_METRICS = re.compile(r"\{[^}]*\}|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|\"[^\"]*\"")
METRIC = re.compile(r"\b(litellm_rust_\w+|ALERTS)\b")


def every_selector_filters_on_job_and_instance(dashboard: Mapping) -> Iterator[str]:
    for title, expr in exprs(dashboard):
        if METRIC.findall(NOT_METRICS.sub("", SELECTOR.sub("", expr))):
            yield f"{title}: bare metric in {expr}"
        selectors = SELECTOR.findall(expr)
        if not selectors:
            yield f"{title}: no selector in {expr}"
        for metric, matchers in selectors:
            for scope in ('job=~"$job"', 'instance=~"$instance"'):
                if scope not in matchers:
                    yield f"{title}: {metric} not filtered on {scope}"


def _call_arguments(expr: str, function: str) -> Iterator[str | None]:
    """The argument text of every call of `function` in `expr` (None for an unbalanced call)."""
    for match in re.finditer(rf"\b{function}\s*\(", expr):
        depth, start = 1, match.end()
        for i in range(start, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            if depth == 0:
                yield expr[start:i]
                break
        else:
            yield None


def every_rate_uses_rate_interval(dashboard: Mapping) -> Iterator[str]:
    for title, expr in exprs(dashboard):
        for function in ("rate", "irate", "increase"):
            for argument in _call_arguments(expr, function):
                if argument is None:
                    yield f"{title}: unbalanced parentheses in {expr}"
                elif re.findall(r"\[([^\]]*)\]", argument) != ["$__rate_interval"]:
                    yield f"{title}: {function}({argument})"
        # and no range selector anywhere else uses a fixed window
        if not set(re.findall(r"\[([^\]]*)\]", expr)) <= {"$__rate_interval"}:
            yield f"{title}: a fixed range in {expr}"


RULES = (
    datasource_variable_is_prometheus,
    label_variables_query_the_calls_metric,
    variables_are_chained_by_job_and_instance,
    panel_ids_are_unique,
    every_panel_has_a_description_and_a_unit,
    every_target_uses_the_datasource_variable,
    every_selector_filters_on_job_and_instance,
    every_rate_uses_rate_interval,
)


def lint(dashboard: Mapping) -> list[str]:
    """Every rule's problems with `dashboard`; empty when it passes."""
    return [problem for rule in RULES for problem in rule(dashboard)]


def check_expressions_parse(dashboards: Mapping[str, Mapping], directory: Path) -> None:
    """Every target of every dashboard (variables expanded) parses: `promtool check rules` on them as
    recording rules. Needs promtool (`require_tool`)."""
    promtool = require_tool("promtool")
    rules = [
        {"record": f"dashboard:{Path(name).stem.replace('-', '_')}:target_{i}", "expr": expr}
        for name in sorted(dashboards)
        for i, (_, expr) in enumerate(panel_queries(dashboards[name], {"__rate_interval": "1m"}))
    ]
    assert rules, "no expressions"
    path = directory / "dashboard-queries.yml"
    # JSON is YAML: no YAML dependency needed.
    path.write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout + result.stderr
