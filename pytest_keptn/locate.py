"""Where a project's runs keep their state, found the way the plugin finds it.

The command line (``python -m pytest_keptn``, ``pytest-keptn``) asks pytest itself for the
rootdir and the ini file (``pytest.ini``, ``pyproject.toml``'s ``[tool.pytest.ini_options]``
or ``[tool.pytest]``, ``tox.ini``, ``setup.cfg``) and resolves ``keptn_root``,
``keptn_state_dir`` and ``keptn_history`` with the plugin's own code, so ``status`` in the
example project looks where ``pytest --keptn-stage=...`` wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_keptn.errors import ConfigError

GITIGNORE = "# Created by pytest-keptn automatically.\n*\n"


@dataclass(frozen=True)
class Located:
    """The state folder and history of a project, and how they were found."""

    rootdir: Path
    inifile: Path | None
    state_dir: Path
    history: str  # a SQLite file path or a postgresql:// URL
    how: str  # "rootdir R, ini file I (keptn_state_dir = ...)" for "looked in" messages


def keptn_root(setting: str | None, rootdir: Path) -> Path | None:
    """The folder with shipyard.yaml: ``keptn_root``, else the rootdir or ``rootdir/keptn``."""
    if setting:
        return Path(setting)
    for candidate in (rootdir, rootdir / "keptn"):
        if (candidate / "shipyard.yaml").is_file():
            return candidate
    return None


def locate(*, state_dir: str | None = None, history: str | None = None) -> Located:
    """Resolve the state folder and history for a run started in the current folder.
    Explicit ``state_dir``/``history`` (the command's options) win over the ini file, as on
    pytest's command line; relative ones are taken from the current folder."""
    import pytest
    from _pytest.config import get_config

    from pytest_keptn.config import resolve_settings
    from pytest_keptn.gate.history import history_location

    args = ["--noconftest", "-p", "no:cacheprovider"]
    args += [f"--keptn-state-dir={state_dir}"] if state_dir else []
    args += [f"--keptn-history={history}"] if history else []
    config = get_config(args=args)
    try:
        config.parse(args, addopts=False)
        settings = resolve_settings(config)
    except pytest.UsageError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        config._ensure_unconfigure()
    rootdir = Path(config.rootpath)
    root = keptn_root(settings.root, rootdir)
    state = settings.state_path(root if root is not None else rootdir)
    ini = Path(config.inipath) if config.inipath else None
    how = f"rootdir {rootdir}" + (f", ini file {ini}" if ini else ", no ini file")
    return Located(rootdir, ini, state, history_location(settings.history, state), how)


def prepare_state_dir(path: Path) -> None:
    """Create the state folder with a ``.gitignore`` (as pytest does for ``.pytest_cache``),
    so history files, logs and Prometheus data are not committed by accident. A folder that
    already exists is left as it is (it may be the user's own)."""
    if path.exists():
        return
    path.mkdir(parents=True, exist_ok=True)
    try:
        (path / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    except OSError:
        pass  # a read-only folder: nothing to protect
