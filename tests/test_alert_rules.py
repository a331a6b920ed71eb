"""The generated alert rules: committed file up to date, valid for promtool, unit-tested at production
windows, every rule labelled and annotated by the conventions, every runbook present."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from servers import require_tool

from dashboards import alerts

ROOT = Path(__file__).resolve().parent.parent
RULES_TEST = ROOT / "dashboards" / "alerts_test.yaml"
EXPORTERS_README = ROOT / "exporters" / "README.md"
REQUIRED_LABELS = ("severity", "component")
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def production_rules() -> list[dict]:
    return [rule for group in alerts.rule_groups()["groups"] for rule in group["rules"]]


def github_anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors


RULE_NAMES = [rule["alert"] for rule in production_rules()]


def test_committed_rule_file_is_the_generators_output():
    assert alerts.DEFAULT_OUT.read_text(encoding="utf-8") == alerts.render(), (
        f"{alerts.DEFAULT_OUT} is stale: run `python -m dashboards.alerts`"
    )


def test_the_committed_folder_holds_only_the_rule_file():
    # `litellm-rust export prometheus-rules` ships every file in it: a stale extra one would ship too.
    assert [path.name for path in alerts.DEFAULT_OUT.parent.iterdir()] == [alerts.DEFAULT_OUT.name]


def test_promtool_accepts_the_committed_rule_file():
    result = run(require_tool("promtool"), "check", "rules", str(alerts.DEFAULT_OUT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(RULE_NAMES)} rules found" in result.stdout


def test_promtool_unit_tests_pass_from_any_directory(tmp_path):
    # promtool resolves rule_files relative to the test file, so the cwd must not matter.
    result = run(require_tool("promtool"), "test", "rules", str(RULES_TEST), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_load_the_committed_rule_file():
    rule_files = yaml.safe_load(RULES_TEST.read_text())["rule_files"]
    assert [(RULES_TEST.parent / path).resolve() for path in rule_files] == [alerts.DEFAULT_OUT.resolve()]


@pytest.mark.parametrize("alertname", RULE_NAMES)
def test_every_rule_is_unit_tested_firing_and_not_firing(alertname):
    cases = [
        case
        for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alertname
    ]
    firing = [alert for case in cases for alert in case.get("exp_alerts") or []]
    assert any(not case.get("exp_alerts") for case in cases), f"{alertname}: no case where it must not fire"
    assert any(alert.get("exp_labels") and alert.get("exp_annotations") for alert in firing), (
        f"{alertname}: no firing case checking labels and annotations"
    )


def test_short_window_rules_pass_promtool(tmp_path):
    path = alerts.write(tmp_path / "fast.yaml", window="10s", for_="0s", event_for="0s")
    result = run(require_tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]
    assert {rule["for"] for rule in rules} == {"0s"}
    assert all("[10s]" in rule["expr"] for rule in rules if "[" in rule["expr"])


def test_every_duration_is_a_parameter():
    text = alerts.render(window="7m", for_="3m", event_for="1m")
    assert "5m" not in text and "0s" not in text
    assert "[7m]" in text and "for: 3m" in text and "for: 1m" in text


def test_thresholds_are_parameters():
    text = alerts.render(
        error_ratio=0.05, latency_ratio=3, fallback_ratio=0.5, min_latency_samples=7, latency_quantile=0.99
    )
    for fragment in ("> 0.05", "> 3\n", "> 0.5\n", ">= 7", "histogram_quantile(0.99,", "threshold 5%", "threshold 50%"):
        assert fragment in text


def test_latency_sample_guard_can_be_disabled():
    rule = next(
        r
        for g in alerts.rule_groups(min_latency_samples=0)["groups"]
        for r in g["rules"]
        if r["alert"] == "LiteLLMRustSlowerThanPython"
    )
    assert "_count" not in rule["expr"] and " and " not in rule["expr"]


@pytest.mark.parametrize(
    "params",
    [
        {"window": "5 minutes"},
        {"window": "0s"},
        {"for_": ""},
        {"event_for": "1h30"},
        {"error_ratio": 0},
        {"fallback_ratio": 1.5},
        {"latency_ratio": -1},
        {"min_latency_samples": -1},
    ],
)
def test_invalid_parameters_are_rejected(params):
    with pytest.raises(ValueError, match=next(iter(params)).rstrip("_")):
        alerts.rule_groups(**params)


@pytest.mark.parametrize("rule", production_rules(), ids=RULE_NAMES)
def test_every_rule_follows_the_mixin_conventions(rule):
    assert rule["alert"].startswith("LiteLLMRust") and re.fullmatch(r"(?:[A-Z][a-z0-9]*)+", rule["alert"])
    assert all(rule["labels"].get(label) for label in REQUIRED_LABELS)
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert all(rule["annotations"].get(annotation) for annotation in REQUIRED_ANNOTATIONS)
    assert "$value" in rule["annotations"]["description"]
    if "litellm_rust_operation" in rule["expr"]:
        assert rule["labels"]["component"] == "{{ $labels.litellm_rust_operation }}"
        assert "by (job, instance, litellm_rust_operation" in rule["expr"]


@pytest.mark.parametrize("rule", production_rules(), ids=RULE_NAMES)
def test_every_runbook_anchor_exists(rule):
    base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert base == alerts.RUNBOOK_BASE
    assert anchor in github_anchors(EXPORTERS_README.read_text(encoding="utf-8"))


def test_only_the_two_degrade_rules_degrade():
    degrading = {rule["alert"] for rule in production_rules() if rule["labels"].get("action") == "degrade"}
    assert degrading == {"LiteLLMRustErrorRatioHigh", "LiteLLMRustShadowMismatches"} == set(alerts.DEGRADE_ALERTS)
    assert {rule["labels"]["severity"] for rule in production_rules() if rule["alert"] in degrading} == {"critical"}


def test_config_reload_errors_belong_to_the_control_plane():
    rule = next(rule for rule in production_rules() if rule["alert"] == "LiteLLMRustConfigReloadErrors")
    assert rule["labels"]["component"] == "control_plane" and "action" not in rule["labels"]


def test_ratios_never_divide_by_zero():
    # Every division's denominator is filtered to > 0, so no calls means no series, never NaN.
    for rule in production_rules():
        for denominator in rule["expr"].split("\n/\n")[1:]:
            assert re.search(r"> 0\s*\n?\)", denominator), rule["alert"]


def test_module_entry_point_writes_the_file(tmp_path):
    out = tmp_path / "rules.yaml"
    result = run(sys.executable, "-m", "dashboards.alerts", "--out", str(out), "--window", "10s", "--for", "0s")
    assert result.returncode == 0, result.stderr
    assert out.read_text(encoding="utf-8") == alerts.render(window="10s", for_="0s")


def test_module_entry_point_rejects_a_bad_window(tmp_path):
    result = run(sys.executable, "-m", "dashboards.alerts", "--out", str(tmp_path / "x.yaml"), "--window", "soon")
    assert result.returncode == 2 and "window must be a Prometheus duration" in result.stderr
    assert not (tmp_path / "x.yaml").exists()
