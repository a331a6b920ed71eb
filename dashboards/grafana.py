"""Grafana dashboards for litellm-rust, built with grafana-foundation-sdk and committed as JSON.

Two dashboards read the metrics the Prometheus exporter makes of `litellm_rust.telemetry`:

- overview (`litellm-rust-overview`): one row per component (repeated by `$component`), comparing
  the Rust and Python implementations: traffic, latency quantiles, speed-up, fallbacks, shadow
  mismatches, breaker state and firing alerts;
- component drill-down (`litellm-rust-component`): one component in more detail (per mode,
  heatmaps, mismatch ratio, breaker history, configuration reload errors, alert history), and the
  routing health of litellm's routers (deployments by state, in-flight requests, latency p50).

Every query filters on `$job` and `$instance` (and `$component` where the metric has the label) and
every rate uses `$__rate_interval`, so the dashboards work for any scrape interval; panel ids are
assigned in build order, so regeneration is byte-identical. Regenerate the committed files, the
package's data in instrumentation/litellm_rust/assets/grafana, with `python -m dashboards.grafana`;
`tests/test_dashboards.py` fails when they drift.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import heatmap, prometheus, stat, statetimeline, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from dashboards import ASSETS

OVERVIEW_UID = "litellm-rust-overview"
COMPONENT_UID = "litellm-rust-component"
OVERVIEW_FILE = f"{OVERVIEW_UID}.json"
COMPONENT_FILE = f"{COMPONENT_UID}.json"
OUT_DIR = ASSETS / "grafana"
TAGS = ["litellm-rust"]

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Metric names as `opentelemetry-exporter-prometheus` writes the instruments of litellm_rust.telemetry.
CALLS = "litellm_rust_operation_calls_total"
DURATION = "litellm_rust_operation_duration_seconds"
FALLBACKS = "litellm_rust_fallbacks_total"
MISMATCHES = "litellm_rust_shadow_mismatches_total"
BREAKER = "litellm_rust_breaker_state"
RELOAD_ERRORS = "litellm_rust_config_reload_errors_total"
ROUTING_DEPLOYMENTS = "litellm_rust_routing_deployments"
ROUTING_IN_FLIGHT = "litellm_rust_routing_deployment_in_flight"
ROUTING_LATENCY = "litellm_rust_routing_deployment_latency_seconds"

OPERATION = "litellm_rust_operation"
IMPLEMENTATION = "litellm_rust_implementation"
MODE = "litellm_rust_mode"
MODEL_GROUP = "litellm_rust_model_group"
DEPLOYMENT_ID = "litellm_rust_deployment_id"
DEPLOYMENT_STATE = "litellm_rust_deployment_state"

# The `component` label of alerts that are about the process, not one operation (dashboards/alerts.py).
CONTROL_PLANE = "control_plane"
QUANTILES = (0.5, 0.95, 0.99)
BREAKER_STATES = (("0", "closed", "green"), ("1", "half-open", "yellow"), ("2", "open", "red"))
FAILURE_REASONS = ("rust_error", "rust_panic")


# -- PromQL -------------------------------------------------------------------------------------


def selector(*matchers: str, component: bool = True) -> str:
    """A label selector scoped to the dashboard's job, instance and (optionally) component."""
    scoped = ['job=~"$job"', 'instance=~"$instance"']
    if component:
        scoped.append(f'{OPERATION}=~"$component"')
    return "{" + ", ".join([*scoped, *matchers]) + "}"


def rate(metric: str, *matchers: str, component: bool = True) -> str:
    return f"rate({metric}{selector(*matchers, component=component)}[$__rate_interval])"


def sum_rate(metric: str, by: tuple[str, ...], *matchers: str) -> str:
    return f"sum by ({', '.join(by)}) ({rate(metric, *matchers)})"


def quantile(q: float, by: tuple[str, ...], *matchers: str) -> str:
    return f"histogram_quantile({q}, {sum_rate(DURATION + '_bucket', (*by, 'le'), *matchers)})"


def mean_latency(by: tuple[str, ...], *matchers: str) -> str:
    return f"{sum_rate(DURATION + '_sum', by, *matchers)} / {sum_rate(DURATION + '_count', by, *matchers)}"


def speedup_p50() -> str:
    python = quantile(0.5, (OPERATION,), f'{IMPLEMENTATION}="python"')
    rust = quantile(0.5, (OPERATION,), f'{IMPLEMENTATION}="rust"')
    return f"{python} / {rust}"


def speedup_mean() -> str:
    python = mean_latency((OPERATION,), f'{IMPLEMENTATION}="python"')
    rust = mean_latency((OPERATION,), f'{IMPLEMENTATION}="rust"')
    return f"({python}) / ({rust})"


def firing_alerts(by: tuple[str, ...], *matchers: str) -> str:
    # Process-wide alerts (configuration reloads) carry `component="control_plane"` and concern every
    # component, so they show on every component's panels.
    # `or on() ...` keeps the panel populated (0, "none firing") while nothing fires, so an empty
    # panel always means a broken query rather than a healthy system.
    alerts = selector(
        'alertname=~"LiteLLMRust.*"', f'component=~"$component|{CONTROL_PLANE}"', *matchers, component=False
    )
    return (
        f"count by ({', '.join(by)}) (ALERTS{alerts}) "
        f'or on() label_replace(vector(0), "alertname", "none firing", "", "")'
    )


# -- panel pieces -------------------------------------------------------------------------------


def target(
    expr: str,
    legend: str,
    ref_id: str = "A",
    fmt: prometheus_models.PromQueryFormat | None = None,
    instant: bool = False,
) -> prometheus.Dataquery:
    query = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .datasource(DATASOURCE)
        .editor_mode(prometheus_models.QueryEditorMode.CODE)
    )
    if fmt is not None:
        query.format(fmt)
    return query.instant() if instant else query.range()


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


def breaker_mappings() -> list[models.ValueMapping]:
    return [
        models.ValueMap(
            options={
                value: models.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, text, color) in enumerate(BREAKER_STATES)
            }
        )
    ]


def legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["lastNotNull", "max"])
    )


def tooltip() -> common_builders.VizTooltipOptions:
    return common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)


def log_scale() -> common_builders.ScaleDistributionConfig:
    return common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)


def failure_overrides(panel):
    """Rust errors and panics in red: the reasons that are faults, not inputs Rust declines."""
    return panel.override_by_regexp(
        f".*({'|'.join(FAILURE_REASONS)}).*",
        [models.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"})],
    )


class _Panels:
    """Panel factories, and the placing of panels on a dashboard.

    Ids are assigned in placement order (rows included), so they are unique, read top to bottom,
    and stay the same from one generation to the next.
    """

    def __init__(
        self, board: dashboard_builders.Dashboard, links: list[dashboard_builders.DashboardLink] | None = None
    ) -> None:
        self.board = board
        self._ids: Iterator[int] = itertools.count(1)
        self._links = links or []

    def row(self, title: str, repeat: str | None = None) -> None:
        """Start an expanded row: the panels placed after it belong to it (and repeat with it)."""
        row = dashboard_builders.Row(title).id(next(self._ids)).collapsed(False).datasource(DATASOURCE)
        self.board.with_row(row.repeat(repeat) if repeat else row)

    def place(self, *panels) -> None:
        for panel in panels:
            self.board.with_panel(panel.id(next(self._ids)))

    def _common(self, panel, title: str, description: str, unit: str, width: int, height: int):
        panel = panel.title(title).description(description).unit(unit).datasource(DATASOURCE).span(width).height(height)
        if self._links:
            panel.links(self._links)
        return panel

    def timeseries(
        self,
        title: str,
        description: str,
        unit: str,
        targets: list[prometheus.Dataquery],
        *,
        width: int = 12,
        height: int = 8,
        log: bool = False,
    ) -> timeseries.Panel:
        panel = self._common(timeseries.Panel(), title, description, unit, width, height)
        panel.targets(targets).legend(legend()).tooltip(tooltip()).line_width(1).fill_opacity(10)
        # Latencies span µs (Rust) to ms (Python): a log axis keeps both readable.
        return panel.scale_distribution(log_scale()) if log else panel.min(0)

    def stat(
        self,
        title: str,
        description: str,
        unit: str,
        targets: list[prometheus.Dataquery],
        *,
        width: int = 6,
        height: int = 8,
    ) -> stat.Panel:
        panel = self._common(stat.Panel(), title, description, unit, width, height)
        return (
            panel.targets(targets)
            .graph_mode(common.BigValueGraphMode.AREA)
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )

    def state_timeline(
        self, title: str, description: str, targets: list[prometheus.Dataquery], *, width: int = 12, height: int = 8
    ) -> statetimeline.Panel:
        panel = self._common(statetimeline.Panel(), title, description, "none", width, height)
        return (
            panel.targets(targets)
            .mappings(breaker_mappings())
            .thresholds(thresholds((None, "green"), (1, "yellow"), (2, "red")))
            .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
            .show_value(common.VisibilityMode.AUTO)
            .merge_values(True)
            .min(0)
            .max(2)
        )

    def heatmap(self, title: str, description: str, expr: str, *, width: int = 12, height: int = 8) -> heatmap.Panel:
        panel = self._common(heatmap.Panel(), title, description, "s", width, height)
        return (
            panel.with_target(target(expr, "{{le}}", fmt=prometheus_models.PromQueryFormat.HEATMAP))
            .calculate(False)
            .y_axis(heatmap.YAxisConfig().unit("s"))
            .cell_values(heatmap.CellValues().unit("ops"))
            .color(
                heatmap.HeatmapColorOptions()
                .mode(heatmap_models.HeatmapColorMode.SCHEME)
                .scheme("Oranges")
                .scale(heatmap_models.HeatmapColorScale.EXPONENTIAL)
                .exponent(0.5)
                .fill("dark-orange")
                .steps(64)
                .reverse(False)
            )
            .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
            .show_color_scale(True)
            .mode(common.TooltipDisplayMode.SINGLE)
            .show_y_histogram()
        )

    # -- panels shared by both dashboards --------------------------------------------------------

    def calls(self, width: int) -> timeseries.Panel:
        return self.timeseries(
            "Calls/s by implementation and mode",
            "Calls to the component per second, by the implementation that ran them "
            "(`litellm_rust_implementation`) and the configured mode (`litellm_rust_mode`). In shadow mode "
            "every call runs both implementations, so rust and python both count it; a Rust call that "
            "failed and fell back counts as a python call.",
            "ops",
            [
                target(
                    sum_rate(CALLS, (OPERATION, IMPLEMENTATION, MODE)),
                    f"{{{{{OPERATION}}}}} {{{{{IMPLEMENTATION}}}}} ({{{{{MODE}}}}} mode)",
                )
            ],
            width=width,
        )

    def fallbacks(self, width: int) -> timeseries.Panel:
        return failure_overrides(
            self.timeseries(
                "Fallbacks/s by reason",
                "Calls the Rust path handed to litellm's Python implementation, per second, by reason "
                "(`error_type`). rust_error and rust_panic (red) are faults and feed the circuit breaker; "
                "the other reasons are inputs Rust declines by design (for example an unsupported tokenizer).",
                "ops",
                [target(sum_rate(FALLBACKS, (OPERATION, "error_type")), f"{{{{{OPERATION}}}}} {{{{error_type}}}}")],
                width=width,
            )
        )

    def mismatches(self, width: int) -> timeseries.Panel:
        return self.timeseries(
            "Shadow mismatches/s",
            "Shadow-mode comparisons per second in which the Rust result differed from litellm's Python "
            "result (Python's result is the one returned). Anything above zero is a parity bug to report.",
            "ops",
            [target(sum_rate(MISMATCHES, (OPERATION,)), f"{{{{{OPERATION}}}}}")],
            width=width,
        )

    def firing(self, by: tuple[str, ...], legend_format: str, width: int, height: int = 8) -> stat.Panel:
        return (
            self.stat(
                "Firing alerts",
                "LiteLLMRust* alerts currently firing for the component or the control plane (Prometheus "
                "`ALERTS`, `alertstate=\"firing\"`), counted per alert; 'none firing' when all is well.",
                "none",
                [target(firing_alerts(by, 'alertstate="firing"'), legend_format, instant=True)],
                width=width,
                height=height,
            )
            .graph_mode(common.BigValueGraphMode.NONE)
            .thresholds(thresholds((None, "green"), (1, "red")))
        )


# -- dashboards ---------------------------------------------------------------------------------


def _query_variable(
    name: str, label: str, query: str, description: str, *, multi: bool
) -> dashboard_builders.QueryVariable:
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .description(description)
        .query(query)
        .datasource(DATASOURCE)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        variable.all_value(".*").current(models.VariableOption(selected=True, text="All", value="$__all"))
    return variable


def _variables(component_multi: bool) -> list:
    return [
        dashboard_builders.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus that scrapes the litellm-rust processes."),
        _query_variable(
            "job", "Job", f"label_values({CALLS}, job)", "Scrape jobs exporting litellm-rust metrics.", multi=True
        ),
        _query_variable(
            "instance",
            "Instance",
            f'label_values({CALLS}{{job=~"$job"}}, instance)',
            "Processes of the selected jobs.",
            multi=True,
        ),
        _query_variable(
            "component",
            "Component",
            f'label_values({CALLS}{{job=~"$job", instance=~"$instance"}}, {OPERATION})',
            "Accelerated operations (litellm_rust_operation), e.g. token_counter.",
            multi=component_multi,
        ),
    ]


def _link(title: str, uid: str, tooltip_text: str) -> dashboard_builders.DashboardLink:
    return (
        dashboard_builders.DashboardLink(title)
        .type(models.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .tooltip(tooltip_text)
        .icon("dashboard")
        .include_vars(True)
        .keep_time(True)
        .as_dropdown(False)
        .target_blank(False)
        .tags([])
    )


def _dashboard(uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
    )


def overview() -> dashboard_builders.Dashboard:
    board = (
        _dashboard(
            OVERVIEW_UID,
            "litellm-rust: overview",
            "Rust acceleration of litellm, per component: Rust vs Python traffic, latency and "
            "speed-up, fallbacks, shadow mismatches, breaker state and firing alerts.",
        )
        .variables(_variables(component_multi=True))
        .link(_link("Component drill-down", COMPONENT_UID, "One component in detail"))
    )
    # Each panel of a repeated row links to the drill-down for that row's component.
    drill_down = (
        dashboard_builders.DashboardLink("$component in detail")
        .type(models.DashboardLinkType.LINK)
        .url(
            f"/d/{COMPONENT_UID}?${{__url_time_range}}&${{datasource:queryparam}}&${{job:queryparam}}"
            f"&${{instance:queryparam}}&var-component=${{component}}"
        )
        .tooltip("Component drill-down")
        .target_blank(False)
    )
    panels = _Panels(board, links=[drill_down])

    panels.row("Component: $component", repeat="component")
    panels.place(
        panels.calls(width=9),
        panels.timeseries(
            "Latency p50/p95/p99: Rust vs Python",
            "Quantiles of the sampled call durations (only `timing_sample_rate` of calls are timed), by "
            "implementation, over all modes. Logarithmic axis: Rust is typically microseconds.",
            "s",
            [
                target(
                    quantile(q, (OPERATION, IMPLEMENTATION)),
                    f"{{{{{OPERATION}}}}} {{{{{IMPLEMENTATION}}}}} p{round(q * 100)}",
                    ref_id,
                )
                for q, ref_id in zip(QUANTILES, "ABC", strict=True)
            ],
            width=9,
            log=True,
        ),
        panels.stat(
            "Speed-up (Python / Rust)",
            "How many times faster Rust is than litellm's Python implementation: Python latency divided "
            "by Rust latency, at the median (from histogram buckets, so interpolated) and on the mean "
            "(exact). Below 1 (red) Rust is slower. Needs sampled timings of both implementations in the "
            "window (shadow mode, or both modes in use).",
            "suffix:x",
            [target(speedup_p50(), "p50", "A"), target(speedup_mean(), "mean", "B")],
            width=3,
        )
        .decimals(1)
        .thresholds(thresholds((None, "red"), (1, "green"))),
        panels.stat(
            "Circuit breaker",
            "Current circuit-breaker state of the component, worst instance: closed (Rust serves), "
            "half-open (probing Rust again) or open (every call goes to Python).",
            "none",
            [target(f"max by ({OPERATION}) ({BREAKER}{selector()})", f"{{{{{OPERATION}}}}}")],
            width=3,
        )
        .mappings(breaker_mappings())
        .thresholds(thresholds((None, "green"), (1, "yellow"), (2, "red")))
        .text_mode(common.BigValueTextMode.VALUE),
        panels.fallbacks(width=9),
        panels.mismatches(width=9),
        panels.firing(("alertname",), "{{alertname}}", width=6),
    )
    return board


def component() -> dashboard_builders.Dashboard:
    board = (
        _dashboard(
            COMPONENT_UID,
            "litellm-rust: component",
            "One litellm-rust component in detail: traffic and latency per mode and "
            "implementation, fallbacks, shadow comparisons, breaker history, configuration "
            "reloads and alerts.",
        )
        .variables(_variables(component_multi=False))
        .link(_link("Overview", OVERVIEW_UID, "All components"))
        .link(
            dashboard_builders.DashboardLink("litellm-rust")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    panels = _Panels(board)

    panels.row("Traffic and speed-up: $component")
    panels.place(
        panels.calls(width=12),
        panels.timeseries(
            "Speed-up over time (Python / Rust)",
            "Python latency divided by Rust latency, at the median (interpolated from histogram buckets) "
            "and on the mean. Below 1 Rust is slower. Needs sampled timings of both implementations in "
            "the window.",
            "suffix:x",
            [target(speedup_p50(), "p50", "A"), target(speedup_mean(), "mean", "B")],
        ),
    )

    panels.row("Latency")
    panels.place(
        panels.timeseries(
            "Latency quantiles by implementation and mode",
            "p50/p95/p99 of the sampled call durations per implementation and mode. In shadow mode both "
            "implementations run on the same inputs, the fairest comparison.",
            "s",
            [
                target(
                    quantile(q, (IMPLEMENTATION, MODE)),
                    f"{{{{{IMPLEMENTATION}}}}} p{round(q * 100)} ({{{{{MODE}}}}} mode)",
                    ref_id,
                )
                for q, ref_id in zip(QUANTILES, "ABC", strict=True)
            ],
            log=True,
        ),
        panels.timeseries(
            "Mean latency by implementation and mode",
            "Mean of the sampled call durations (sum / count): exact, where quantiles are interpolated "
            "within the 1 µs … 10 ms buckets.",
            "s",
            [target(mean_latency((IMPLEMENTATION, MODE)), f"{{{{{IMPLEMENTATION}}}}} ({{{{{MODE}}}}} mode)")],
            log=True,
        ),
        *(
            panels.heatmap(
                f"{name} latency distribution",
                f"Sampled {name} call durations per histogram bucket (calls/s in each bucket), all modes.",
                sum_rate(DURATION + "_bucket", ("le",), f'{IMPLEMENTATION}="{implementation}"'),
            )
            for implementation, name in (("rust", "Rust"), ("python", "Python"))
        ),
    )

    panels.row("Fallbacks and shadow comparisons")
    shadow_calls = sum_rate(CALLS, (OPERATION,), f'{IMPLEMENTATION}="rust"', f'{MODE}="shadow"')
    panels.place(
        panels.fallbacks(width=8),
        panels.mismatches(width=8),
        panels.timeseries(
            "Shadow mismatch ratio",
            "Share of shadow comparisons that disagreed: mismatches divided by Rust calls in shadow mode. "
            "NaN while no shadow traffic flows.",
            "percentunit",
            [target(f"{sum_rate(MISMATCHES, (OPERATION,))} / {shadow_calls}", f"{{{{{OPERATION}}}}}")],
            width=8,
        ),
    )

    panels.row("Health")
    panels.place(
        panels.state_timeline(
            "Circuit breaker state",
            "Circuit-breaker state per instance over time: closed (Rust serves), half-open (probing Rust "
            "again), open (every call goes to Python).",
            [target(f"max by (instance) ({BREAKER}{selector()})", "{{instance}}")],
        ),
        panels.firing(("alertname", "severity"), "{{alertname}} {{severity}}", width=6),
        panels.timeseries(
            "Config reload errors",
            "Configuration-file reloads rejected per rate interval (the last good configuration stays in "
            "force). Process-wide: this metric has no component label.",
            "short",
            [
                target(
                    f"sum by (instance) (increase({RELOAD_ERRORS}{selector(component=False)}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            width=6,
        ),
        panels.timeseries(
            "Alert activity",
            "LiteLLMRust* alerts for the component or the control plane over time, pending and firing, "
            "from Prometheus `ALERTS`; "
            "'none firing' at 0 while there are none.",
            "short",
            [target(firing_alerts(("alertname", "alertstate")), "{{alertname}} {{alertstate}}")],
            width=24,
            height=6,
        ),
    )

    # Routing health has no component label (it describes litellm's routers, read at collection):
    # the row shows the same data whichever component is selected.
    deployment = f"{{{{{MODEL_GROUP}}}}} {{{{{DEPLOYMENT_ID}}}}}"
    panels.row("Routing health")
    panels.place(
        panels.timeseries(
            "Deployments by state",
            "Deployments of the routers the routing component has picked for, by model group and state: "
            "healthy, or cooldown (litellm's cooldown store, as its router reads it). Summed over instances "
            "and over deployment ids (reported only for routers within deployment_series_cap).",
            "short",
            [
                target(
                    f"sum by ({MODEL_GROUP}, {DEPLOYMENT_STATE}) ({ROUTING_DEPLOYMENTS}{selector(component=False)})",
                    f"{{{{{MODEL_GROUP}}}}} {{{{{DEPLOYMENT_STATE}}}}}",
                )
            ],
            width=8,
        ),
        panels.timeseries(
            "In-flight requests per deployment",
            "Requests in flight per deployment as least-busy routing counts them in each worker (started "
            "requests plus reserved picks), summed over instances; per model group (no deployment id) for "
            "routers above deployment_series_cap. Only routers using least-busy report it.",
            "short",
            [
                target(
                    f"sum by ({MODEL_GROUP}, {DEPLOYMENT_ID}) ({ROUTING_IN_FLIGHT}{selector(component=False)})",
                    deployment,
                )
            ],
            width=8,
        ),
        panels.timeseries(
            "Latency p50 per deployment",
            "Median of the latency samples latency-based routing keeps per deployment (seconds per completion "
            "token when usage is known; a timeout counts 1000 s), worst instance; per model group for routers "
            "above deployment_series_cap. Only routers using latency-based routing report it.",
            "s",
            [
                target(
                    f"max by ({MODEL_GROUP}, {DEPLOYMENT_ID}) ({ROUTING_LATENCY}{selector(component=False)})",
                    deployment,
                )
            ],
            width=8,
            log=True,
        ),
    )
    return board


# -- serialization ------------------------------------------------------------------------------


def to_model(board: dashboard_builders.Dashboard) -> dict:
    """The dashboard as plain JSON data, through the SDK's encoder."""
    return json.loads(json.dumps(board.build(), cls=JSONEncoder))


def build_dashboards() -> dict[str, dict]:
    """File name -> dashboard JSON model, for every dashboard."""
    return {OVERVIEW_FILE: to_model(overview()), COMPONENT_FILE: to_model(component())}


def dumps(model: dict) -> str:
    """The committed form: pretty-printed, sorted keys, trailing newline."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build_dashboards().items():
        path = out_dir / name
        path.write_text(dumps(model), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.grafana", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output directory (default {OUT_DIR})")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the files in --out differ from a fresh build"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            name
            for name, model in build_dashboards().items()
            if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != dumps(model)
        ]
        for name in stale:
            print(f"stale: {args.out / name} (run python -m dashboards.grafana)", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
