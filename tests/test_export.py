"""`litellm-rust export grafana|prometheus-rules|alertmanager DIR`: the packaged files written out byte
for byte, the generators' output, accepted by promtool, amtool and the dashboard lint; an existing file
with other content is never overwritten without --force."""

import json
import subprocess

import pytest
from dashboard_lint import check_expressions_parse, lint
from litellm_rust.__main__ import main
from servers import require_tool

from dashboards import ASSETS, alerts
from dashboards.grafana import build_dashboards, dumps

WHAT = ("grafana", "prometheus-rules", "alertmanager")


def export(what, directory, *options):
    return main(["export", what, str(directory), *options])


def committed(what) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((ASSETS / what).iterdir())}


def contents(directory) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_every_assets_folder_has_an_export():
    assert {path.name for path in ASSETS.iterdir() if path.is_dir()} == set(WHAT)


@pytest.mark.parametrize("what", WHAT)
def test_export_writes_the_committed_files_byte_for_byte(what, tmp_path, capsys):
    out = tmp_path / "created" / what
    assert export(what, out) == 0
    assert contents(out) == committed(what) != {}
    assert capsys.readouterr().out.splitlines() == [f"wrote {out / name}" for name in committed(what)]


def test_exported_dashboards_and_rules_are_the_generators_output(tmp_path):
    assert export("grafana", tmp_path / "grafana") == 0
    assert export("prometheus-rules", tmp_path / "rules") == 0
    assert contents(tmp_path / "grafana") == {name: dumps(model).encode() for name, model in build_dashboards().items()}
    assert contents(tmp_path / "rules") == {alerts.DEFAULT_OUT.name: alerts.render().encode()}


def test_exported_dashboards_pass_the_lint(tmp_path):
    assert export("grafana", tmp_path / "grafana") == 0
    dashboards = {path.name: json.loads(path.read_text()) for path in (tmp_path / "grafana").iterdir()}
    assert {name: lint(dashboard) for name, dashboard in dashboards.items()} == {name: [] for name in dashboards}
    check_expressions_parse(dashboards, tmp_path)


def test_exported_rules_pass_promtool(tmp_path):
    assert export("prometheus-rules", tmp_path) == 0
    (rules,) = tmp_path.iterdir()
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.rule_groups()['groups'][0]['rules'])} rules found" in result.stdout


def test_exported_alertmanager_config_passes_amtool(tmp_path):
    assert export("alertmanager", tmp_path) == 0
    (config,) = tmp_path.iterdir()
    result = subprocess.run(
        [require_tool("amtool"), "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_identical_file_is_left_alone(tmp_path, capsys):
    assert export("grafana", tmp_path) == 0
    capsys.readouterr()
    assert export("grafana", tmp_path) == 0
    assert capsys.readouterr().out.splitlines() == [f"unchanged {tmp_path / name}" for name in committed("grafana")]


def test_a_different_file_is_kept_and_nothing_is_written_without_force(tmp_path, capsys):
    assert export("grafana", tmp_path) == 0
    edited, removed = sorted(tmp_path.iterdir())
    edited.write_text("{}\n")
    removed.unlink()
    capsys.readouterr()

    assert export("grafana", tmp_path) == 1
    assert edited.read_text() == "{}\n" and not removed.exists()
    printed = capsys.readouterr()
    assert printed.out == "" and f"{edited} exists with other content (--force overwrites it)" in printed.err

    assert export("grafana", tmp_path, "--force") == 0
    assert contents(tmp_path) == committed("grafana")
    assert sorted(capsys.readouterr().out.splitlines()) == sorted([f"overwrote {edited}", f"wrote {removed}"])


def test_a_directory_that_is_a_file_is_an_error(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    assert export("alertmanager", target) == 1
    assert "litellm-rust export:" in capsys.readouterr().err and target.read_text() == "not a directory"
