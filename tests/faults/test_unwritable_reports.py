"""Reports that cannot be written after a passing gate (issue 14 item 7).

``$GITHUB_STEP_SUMMARY`` in a folder that does not exist, or naming a directory; the state
folder turned read-only once the sequence has finished (a real read-only bind mount in a
mount namespace of the run's own when running as root, where permissions do not stop writes;
``chmod`` otherwise). Each report that cannot be written is one warning line; the exit status
is the gate's (0) and pytest-html's report is still written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .runs import Run, make_project, stop_all

pytestmark = pytest.mark.slow

# Turns the state folder read-only before the session's reports are written: the sequence
# (deployment, load, evaluation, release) has finished by then.
READONLY_CONFTEST = """\
import os
import subprocess
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    state = Path(__file__).parent / "build" / "state"
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", "-o", "ro", str(state), str(state)], check=True)
    else:
        for folder in [state, *(p for p in state.rglob("*") if p.is_dir())]:
            folder.chmod(0o555)
"""


def _unshare() -> tuple[str, ...]:
    """Run the child in a mount namespace of its own when root (the read-only mount then dies
    with it); without root, chmod does the job."""
    if os.geteuid() != 0:
        return ()
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run(
            [unshare, "-m", "--propagation", "private", "true"], capture_output=True).returncode:
        pytest.skip("no mount namespaces here: a read-only folder cannot be made as root")
    return (unshare, "-m", "--propagation", "private")


@pytest.mark.parametrize("case", ["summary in a missing folder", "summary is a directory",
                                  "read-only state folder"])
def test_unwritable_report_is_one_warning(tmp_path: Path, case: str) -> None:
    project = make_project(tmp_path / "project")
    env: dict[str, str] = {}
    prefix: tuple[str, ...] = ()
    if case == "summary in a missing folder":
        unwritable = tmp_path / "gone" / "summary.md"
        env["GITHUB_STEP_SUMMARY"] = str(unwritable)
    elif case == "summary is a directory":
        unwritable = tmp_path / "a-directory"
        unwritable.mkdir()
        env["GITHUB_STEP_SUMMARY"] = str(unwritable)
    else:
        (project / "conftest.py").write_text(READONLY_CONFTEST)
        unwritable = project / "build" / "state" / "summary.md"
        prefix = _unshare()
    html = tmp_path / "report.html"
    run = Run(project, "--keptn-tag=v0.1.1", f"--html={html}", "--self-contained-html",
              env=env, prefix=prefix)
    try:
        rc = run.finish()
    finally:
        run.proc.kill()
        if os.geteuid() != 0:
            for folder in (project / "build").rglob("*"):
                if folder.is_dir():
                    folder.chmod(0o755)
        stop_all(project)
    out = run.out
    assert rc == 0, out[-4000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
    assert "RESULT: pass" in out, out[-4000:]
    warnings = [line for line in out.splitlines() if "cannot write the markdown summary" in line]
    assert len(warnings) == 1, out[-4000:]
    assert str(unwritable) in warnings[0], warnings
    assert not unwritable.is_file()
    assert html.is_file(), out[-4000:]
    assert "Keptn quality report" in html.read_text(), out[-4000:]
