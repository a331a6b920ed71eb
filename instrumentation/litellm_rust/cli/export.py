"""`litellm-rust export grafana|prometheus-rules|alertmanager DIR`: the monitoring files the package
ships, written into a directory, so a pip user has the dashboards, the alert rules and the
Alertmanager route without the repository.

The files are package data (`litellm_rust/assets/<what>/`), generated in the repository by
`dashboards/`; they are read with importlib.resources, so this works from an installed wheel, and only
copied byte for byte.
"""

import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path


def packaged_files(what: str) -> list[Traversable]:
    """The files shipped for `what` (an assets folder: grafana, prometheus-rules, alertmanager), by name."""
    folder = files("litellm_rust").joinpath("assets", what)
    return sorted((item for item in folder.iterdir() if item.is_file()), key=lambda item: item.name)


def run_export(what: str, directory: Path, *, force: bool = False) -> int:
    """Write the files for `what` into `directory` (created if missing), printing each one.

    An existing file with other content is never overwritten without `force`: then nothing is written
    and the exit status is 1. A file already identical is left alone.
    """
    contents = {item.name: item.read_bytes() for item in packaged_files(what)}
    targets = {name: directory / name for name in contents}
    different = [
        path
        for name, path in targets.items()
        if path.exists() and (path.is_dir() or path.read_bytes() != contents[name])
    ]
    if different and not force:
        for path in different:
            print(f"litellm-rust export: {path} exists with other content (--force overwrites it)", file=sys.stderr)
        return 1
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, path in targets.items():
            if path in different or not path.exists():
                path.write_bytes(contents[name])
                print(f"{'overwrote' if path in different else 'wrote'} {path}")
            else:
                print(f"unchanged {path}")
    except OSError as error:
        print(f"litellm-rust export: {error}", file=sys.stderr)
        return 1
    return 0
