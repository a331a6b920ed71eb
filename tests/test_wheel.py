"""The wheel `make wheel` builds, as a user gets it: its platform tag installs on glibc 2.17+, wheel and
sdist carry the LICENSE, and in a fresh venv with only its run-time dependencies and litellm it serves
tests/wheel_smoke.py from Rust, run plainly and under `opentelemetry-instrument`.

Run by `make wheel-test` after the build; skipped without a built wheel, except under CI=true."""

import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
MACHINE = platform.machine()
# The oldest glibc the wheel must install on (manylinux2014).
OLDEST_GLIBC = (2, 17)


def built(pattern: str) -> Path:
    """The one file in dist/ matching `pattern`."""
    found = sorted(DIST.glob(pattern))
    if not found:
        message = f"no dist/{pattern}: run `make wheel`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert len(found) == 1, f"several dist/{pattern}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def wheel() -> Path:
    return built(f"litellm_rust-*-cp311-abi3-*_{MACHINE}.whl")


@pytest.fixture(scope="module")
def sdist() -> Path:
    return built("litellm_rust-*.tar.gz")


def test_the_platform_tag_installs_on_glibc_2_17(wheel):
    platform_tags = wheel.stem.split("-")[-1].split(".")
    assert f"manylinux_2_17_{MACHINE}" in platform_tags, platform_tags
    assert f"manylinux2014_{MACHINE}" in platform_tags, platform_tags


def test_the_librarys_symbols_allow_glibc_2_17(wheel):
    """auditwheel reads the symbol versions the library needs, independently of the tag maturin wrote."""
    auditwheel = Path(sys.executable).with_name("auditwheel")
    shown = subprocess.run([auditwheel, "show", wheel], capture_output=True, text=True, check=True).stdout
    consistent = re.search(
        r'consistent with the following platform tag: "manylinux_(\d+)_(\d+)_', " ".join(shown.split())
    )
    assert consistent, shown
    assert tuple(map(int, consistent.groups())) <= OLDEST_GLIBC, shown


def test_wheel_and_sdist_carry_the_license(wheel, sdist):
    license_text = (ROOT / "LICENSE").read_text()
    with zipfile.ZipFile(wheel) as archive:
        [in_wheel] = [name for name in archive.namelist() if name.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(in_wheel).decode() == license_text
    with tarfile.open(sdist) as archive:
        in_sdist = archive.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/LICENSE")
        assert in_sdist.read().decode() == license_text


def pinned_requirement(extra: str, name: str) -> str:
    """The requirement on `name` in pyproject.toml's `extra` (one list of versions, not two)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [requirement] = [spec for spec in extras[extra] if re.match(rf"{re.escape(name)}\s*[=<>~!]", spec)]
    return requirement


def pip_install(venv: Path, *requirements: str) -> None:
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
        check=True,
    )


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel, its run-time dependencies and the litellm release tests run against."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip_install(venv, str(wheel), pinned_requirement("test", "litellm"))
    return venv


def run_smoke(venv: Path, *command_prefix: str) -> dict:
    """tests/wheel_smoke.py run by the venv's python, offline, away from this checkout's package."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    command = [*command_prefix, venv / "bin" / "python", ROOT / "tests" / "wheel_smoke.py"]
    completed = subprocess.run(command, cwd=venv, env=environment, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def plain_run(venv) -> dict:
    return run_smoke(venv)


def assert_served_by_the_wheel(result: dict, venv: Path) -> None:
    assert Path(result["package"]).is_relative_to(venv), result["package"]
    assert result["accelerated"] is True
    token_counter = result["token_counter"]
    assert token_counter["mode"] == "rust"
    assert token_counter["rust_calls"] == len(result["counts"]) and token_counter["fallbacks"] == 0, token_counter
    calls_before, calls_after = result["routing_rust_calls"]
    assert calls_after > calls_before, result["status"]["routing"]
    assert result["status"]["routing"]["fallbacks"] == 0, result["status"]["routing"]
    assert result["picked"] in ("https://a.example", "https://b.example")
    assert result["reply"] == "hi"


def test_instrumenting_in_code_counts_exactly_as_litellm_and_routes_in_rust(plain_run, venv):
    assert plain_run["instrumented_before"] is False
    assert plain_run["counts"] == plain_run["litellm_counts"]
    assert_served_by_the_wheel(plain_run, venv)


def test_opentelemetry_instrument_serves_the_same_from_rust(plain_run, venv):
    # Installed after the plain run, which shows the wheel needs nothing more.
    pip_install(venv, pinned_requirement("test", "opentelemetry-distro"))
    result = run_smoke(venv, venv / "bin" / "opentelemetry-instrument")
    assert result["instrumented_before"] is True
    assert result["counts"] == plain_run["litellm_counts"]
    assert_served_by_the_wheel(result, venv)


@pytest.mark.parametrize("what", ["grafana", "prometheus-rules", "alertmanager"])
def test_the_installed_command_exports_the_packaged_files(venv, tmp_path, what):
    """The dashboards, rules and Alertmanager route are read from the installed wheel's package data."""
    completed = subprocess.run(
        [venv / "bin" / "litellm-rust", "export", what, tmp_path], cwd=venv, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    committed = ROOT / "instrumentation" / "litellm_rust" / "assets" / what
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in committed.iterdir())
    for path in committed.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
