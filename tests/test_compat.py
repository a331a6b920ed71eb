"""The litellm releases each component is served on: the table in docs/known-limits.md, `VERIFIED_ON`,
`make test-compat`'s matrix and what the installed litellm builds agree.

`make test-compat` runs this file on every release of the table but .venv's own (where `make py-test`
runs it with every other test), each in its own venv, with the components' exactness tests
(`conftest.EXACTNESS_TESTS`), which are skipped where their component is not supported."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from litellm_rust._litellm import VERIFIED_ON
from litellm_rust.components import COMPONENT_NAMES, components, unsupported
from litellm_rust.package import _instruments
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Supported litellm releases"


def support_table() -> dict[str, set[str]]:
    """The table under HEADING in docs/known-limits.md: release -> the components marked "yes"."""
    section = (ROOT / "docs" / "known-limits.md").read_text().split(HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not set(line) <= set("|-: ")
    ]
    (header, *releases) = rows
    assert header[1:] == list(COMPONENT_NAMES), header
    assert all(set(cells[1:]) <= {"yes", "no"} for cells in releases), releases
    return {
        cells[0]: {name for name, cell in zip(header[1:], cells[1:], strict=True) if cell == "yes"}
        for cells in releases
    }


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def test_the_table_is_what_the_components_are_verified_on():
    table = support_table()
    documented = {
        name: {release for release, supported in table.items() if name in supported} for name in COMPONENT_NAMES
    }
    assert documented == {name: set(releases) for name, releases in VERIFIED_ON.items()}


def test_make_test_compat_runs_every_release_of_the_table_but_the_one_py_test_runs_on():
    [matrix] = re.findall(r"^COMPAT_RELEASES \?= (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    [pinned] = [spec for spec in _extras()["test"] if spec.startswith("litellm ==")]
    assert [*matrix.split(), pinned.removeprefix("litellm ==").strip()] == list(support_table())


def test_the_installed_litellm_serves_exactly_the_components_of_its_row():
    installed = version("litellm")
    table = support_table()
    assert installed in table, f"litellm {installed} has no row in docs/known-limits.md"
    assert set(components()) == table[installed], unsupported()
    # every other component says why, naming the release
    assert set(unsupported()) == set(COMPONENT_NAMES) - table[installed]
    assert all(installed in why for why in unsupported().values()), unsupported()


def test_the_instruments_range_admits_the_releases_a_component_is_verified_on_and_no_other_of_the_table():
    """`instrument()` declines outside the range, so it must admit every release something is served on."""
    assert tuple(_extras()["instruments"]) == _instruments
    [requirement] = map(Requirement, _instruments)
    assert {release for release in support_table() if release in requirement.specifier} == {
        release for releases in VERIFIED_ON.values() for release in releases
    }
