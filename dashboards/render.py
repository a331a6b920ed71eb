"""Expand dashboard queries and render the overview from a real Prometheus, without Grafana.

No Grafana server can run where the dashboards are built, so two stand-ins:

- `panel_queries(dashboard, variables)`: every target of every panel (rows included) with the
  template variables substituted, ready for Prometheus's HTTP API; the end-to-end test runs each
  one and requires data.
- `render_overview_png(prometheus_url, out_path, start=..., end=...)`: one matplotlib subplot per
  overview panel, from `/api/v1/query_range`; a review artifact, not a test.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path

# Grafana's `All` for the regex variables, and stand-ins for its built-in interval variables.
DEFAULT_VARIABLES: dict[str, str] = {
    "job": ".*",
    "instance": ".*",
    "component": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}

# `$name`, `${name}`, `${name:format}` and the deprecated `[[name]]`.
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _value(value: str | Sequence[str]) -> str:
    # A multi-value selection becomes a regex alternation, as Grafana formats it for `=~`.
    if isinstance(value, str):
        return value
    values = list(value)
    return values[0] if len(values) == 1 else "(" + "|".join(values) + ")"


def expand(expr: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """`expr` with every template variable replaced; an unknown variable is an error."""

    def substitute(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in variables:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return _value(variables[name])

    return _VARIABLE.sub(substitute, expr)


def _panels(panels: Sequence[Mapping]) -> Iterator[Mapping]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or ())  # panels of a collapsed row


def panel_queries(
    dashboard: Mapping, variables: Mapping[str, str | Sequence[str]] | None = None
) -> list[tuple[str, str]]:
    """(panel title, PromQL with variables substituted) for every target of every panel.

    `variables` override `DEFAULT_VARIABLES` (job/instance/component `.*`, `__rate_interval` 1m,
    `__interval` 15s, `__range` 1h); a list value becomes `(a|b)`. Values are used verbatim, as
    regex fragments. Raises KeyError for a variable with no value.
    """
    values = {**DEFAULT_VARIABLES, **(variables or {})}
    return [
        (panel.get("title", ""), expand(target["expr"], values))
        for panel in _panels(dashboard.get("panels") or ())
        for target in panel.get("targets") or ()
        if "expr" in target
    ]


# -- rendering ----------------------------------------------------------------------------------


def _timestamp(moment: datetime | float | int) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", duration)
    if not match:
        raise ValueError(f"not a duration: {duration!r}")
    return float(match.group(1)) * units[match.group(2)]


def query_range(
    prometheus_url: str, expr: str, start: float, end: float, step: str, timeout: float = 30.0
) -> list[dict]:
    """The `result` of Prometheus's /api/v1/query_range for `expr` (a matrix)."""
    body = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step}).encode()
    request = urllib.request.Request(
        prometheus_url.rstrip("/") + "/api/v1/query_range",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.load(response)
    if payload.get("status") != "success":
        raise RuntimeError(f"Prometheus rejected {expr!r}: {payload}")
    return payload["data"]["result"]


# Grafana unit ids as axis labels.
_UNIT_LABELS = {
    "ops": "ops/s (ops)",
    "reqps": "requests/s (reqps)",
    "suffix:x": "× (ratio)",
    "percentunit": "ratio (percentunit)",
    "none": "value (none)",
    "short": "count (short)",
}


def _legend(legend_format: str | None, labels: Mapping[str, str]) -> str:
    if legend_format and legend_format != "__auto":
        text = _LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), legend_format).strip()
        if text:
            return text
    return "{" + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) + "}"


def _value_texts(panel: Mapping) -> dict[float, str]:
    """Value-mapping texts (e.g. breaker 0/1/2 -> closed/half-open/open) for the y ticks."""
    texts = {}
    for mapping in panel.get("fieldConfig", {}).get("defaults", {}).get("mappings") or ():
        if mapping.get("type") == "value":
            for value, result in mapping.get("options", {}).items():
                if "text" in result:
                    texts[float(value)] = result["text"]
    return texts


def render_overview_png(
    prometheus_url: str,
    out_path: str | Path,
    *,
    start: datetime | float,
    end: datetime | float,
    step: str = "5s",
    variables: Mapping[str, str | Sequence[str]] | None = None,
) -> Path:
    """Draw every overview panel from `prometheus_url` over [start, end] into one PNG.

    `variables` as for `panel_queries`; `__rate_interval` defaults to four steps and `__interval`
    to one step (what Grafana picks when the scrape interval is no longer than the step).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    from dashboards.grafana import OVERVIEW_FILE, build_dashboards

    step_seconds = _seconds(step)
    values = {
        "__rate_interval": f"{int(4 * step_seconds)}s",
        "__interval": step,
        "__range": f"{int(_timestamp(end) - _timestamp(start))}s",
        **(variables or {}),
    }
    values = {**DEFAULT_VARIABLES, **values}
    start_ts, end_ts = _timestamp(start), _timestamp(end)
    dashboard = build_dashboards()[OVERVIEW_FILE]
    panels = [panel for panel in _panels(dashboard["panels"]) if panel.get("targets")]

    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(7 * columns, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        drawn = 0
        for target in panel["targets"]:
            for series in query_range(prometheus_url, expand(target["expr"], values), start_ts, end_ts, step):
                times = [datetime.fromtimestamp(float(t)) for t, _ in series["values"]]
                points = [float(v) for _, v in series["values"]]
                ax.plot(times, points, linewidth=1.2, label=_legend(target.get("legendFormat"), series["metric"]))
                drawn += 1
        ax.set_title(f"{panel['title']}  [{panel['type']}]", fontsize=10)
        ax.set_ylabel(_UNIT_LABELS.get(unit, unit))
        if (
            drawn
            and panel.get("fieldConfig", {})
            .get("defaults", {})
            .get("custom", {})
            .get("scaleDistribution", {})
            .get("type")
            == "log"
        ):
            ax.set_yscale("log")  # before the formatter: set_yscale replaces it
        if unit == "s":
            ax.yaxis.set_major_formatter(EngFormatter(unit="s"))
        texts = _value_texts(panel)
        if texts:
            ax.set_yticks(sorted(texts), [texts[v] for v in sorted(texts)])
            ax.set_ylim(min(texts) - 0.25, max(texts) + 0.25)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    figure.suptitle(
        f"{dashboard['title']} — {prometheus_url} — "
        f"{datetime.fromtimestamp(start_ts):%Y-%m-%d %H:%M:%S} to "
        f"{datetime.fromtimestamp(end_ts):%H:%M:%S}, step {step}, "
        f"$__rate_interval {values['__rate_interval']}",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
