"""Every malformed file of the spec corpus, run through ``pytest --keptn-stage=...``, ends as a
usage error naming the file and the field: no traceback, no INTERNALERROR."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.plugin.conftest import Project
from tests.spec.malformed.cases import cases

PLACES = {
    "slo": "keptn/hardening/svc/slo.yaml",
    "sli": "keptn/hardening/svc/prometheus/sli.yaml",
    "shipyard": "keptn/shipyard.yaml",
}
CASES = cases()


@pytest.mark.parametrize(("path", "kind", "expected"), CASES, ids=[p.name for p, _, _ in CASES])
def test_malformed_file_is_a_usage_error(project: Project, path: Path, kind: str, expected: str) -> None:
    target = project.path / PLACES[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    result = project.pytester.runpytest("--keptn-stage=all", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    lines = [line for line in err.splitlines() if "pytest-keptn:" in line]
    assert len(lines) == 1, err
    assert str(target) in lines[0] and expected in lines[0], err
    assert "Traceback" not in err and "INTERNALERROR" not in err + result.stdout.str()
    assert project.calls() == []
