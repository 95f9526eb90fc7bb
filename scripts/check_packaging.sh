#!/usr/bin/env bash
# What a user installs, checked as a user gets it (scripts/test.sh runs this after the suite):
#  1. build the sdist and the wheel, `twine check` them;
#  2. a fresh venv with the wheel alone (the core, not editable): no Locust, Flask, gevent,
#     ZeroMQ, pytest-html or psycopg, and the example project's hardening stage stops at
#     configure time (exit 4) with the one line saying which `pip install` fixes it;
#  3. the same venv with the wheel's [all] extras runs the example project's hardening stage
#     (v0.1.1: deploy, Locust load, embedded Prometheus, evaluation, release) with the report;
#  4. the whole fast lane, and Locust's slow tests, in a venv where every library is pinned to the
#     floor that pyproject.toml declares (scripts/floors.py), so the floors are true.
# Everything goes to build/packaging/ (and .venv-floors, reused while pyproject.toml is unchanged).
# KEPTN_PACKAGING_STEPS="wheel floors" picks steps (default: both).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
steps=${KEPTN_PACKAGING_STEPS:-wheel floors}
out=build/packaging
py=.venv/bin/python
fail() { echo "PACKAGING FAILED: $*"; exit 1; }
clock() { echo "packaging: $1 ($(( $(date +%s) - t0 ))s)"; }

if [[ " $steps " == *" wheel "* ]]; then
  t0=$(date +%s)
  rm -rf "$out" && mkdir -p "$out"
  "$py" -m build --sdist --wheel --outdir "$out/dist" . >"$out/build.log" 2>&1 \
    || { tail -20 "$out/build.log"; fail "python -m build (log $out/build.log)"; }
  "$py" -m twine check --strict "$out"/dist/* || fail "twine check"
  wheel=$(ls "$out"/dist/*.whl)
  sdist=$(ls "$out"/dist/*.tar.gz)
  # the sdist carries the license, the wheel its PEP 639 metadata and the package data
  [[ $'\n'"$(tar -tzf "$sdist")"$'\n' == *"/LICENSE"$'\n'* ]] || fail "no LICENSE in $sdist"
  "$py" - "$wheel" <<'EOF' || fail "wheel contents"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
text = zipfile.ZipFile(sys.argv[1]).read(meta).decode()
assert "License-Expression: Apache-2.0" in text, "no License-Expression"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "no licenses/LICENSE"
assert "pytest_keptn/py.typed" in names, "no py.typed"
assert "pytest_keptn/report/report.css" in names, "no report.css"
for template in ("report.html", "live.html"):
    assert f"pytest_keptn/report/templates/{template}" in names, f"no templates/{template}"
assert not [n for n in names if n.startswith(("tests/", "example_project/", "benchmarks/"))]
EOF
  clock "built and checked $(basename "$wheel") and $(basename "$sdist")"

  venv="$out/venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "$wheel" 2>&1 | grep -v 'is ignored' || true
  "$venv/bin/python" - <<'EOF' || fail "the core install brings an extra"
import importlib.util
heavy = ["locust", "flask", "gevent", "zmq", "pytest_html", "jinja2", "psycopg", "prometheus_client"]
present = [m for m in heavy if importlib.util.find_spec(m) is not None]
assert not present, f"a core install has {present}"
EOF
  # nor Locust's pytest plugin: no fixtures session/fastsession, no --host option
  empty=$(mktemp -d)
  help=$(cd "$empty" && "$repo/$venv/bin/python" -m pytest --help -p no:cacheprovider)
  fixtures=$(cd "$empty" && "$repo/$venv/bin/python" -m pytest --fixtures -p no:cacheprovider)
  rmdir "$empty"
  [[ "$help" != *"--host"* && "$help" == *"--keptn-stage"* ]] || fail "a core install's pytest --help"
  [[ "$fixtures" != *"fastsession"* && "$fixtures" == *"keptn_service_url"* ]] \
    || fail "a core install's pytest --fixtures"
  echo "packaging: a core install ($("$venv/bin/python" -m pip list 2>/dev/null | tail -n +3 | wc -l) packages) has no Locust, Flask, gevent, ZeroMQ, pytest-html, psycopg, nor Locust's fixtures and --host"
  run_dir="$repo/$out/run"
  stage() {
    (cd example_project && "$repo/$venv/bin/python" -m pytest -p no:cacheprovider \
      --keptn-stage=hardening --keptn-tag=v0.1.1 --keptn-state-dir="$run_dir/state" \
      --keptn-history="$run_dir/history.sqlite" --keptn-events="$run_dir/events" "$@")
  }
  set +e
  stage >"$out/core-run.log" 2>&1
  rc=$?
  set -e
  [ $rc -eq 4 ] || { cat "$out/core-run.log"; fail "the core install ran the hardening stage: exit $rc, expected 4"; }
  grep -q "pip install 'pytest-keptn\[locust\]'" "$out/core-run.log" \
    || { cat "$out/core-run.log"; fail "no pip line"; }
  [ ! -e "$run_dir/state" ] || fail "the core install started something before refusing"
  echo "packaging: core install: $(grep 'pytest-keptn:' "$out/core-run.log")"

  "$venv/bin/python" -m pip install -q "$wheel[all]" 2>&1 | grep -v 'is ignored' || true
  where=$("$venv/bin/python" -I -c 'import pytest_keptn; print(pytest_keptn.__file__)')
  [[ "$where" == "$repo/$venv/"* ]] || fail "pytest_keptn imported from $where, not the wheel"
  trap '"$repo/$venv/bin/python" -m pytest_keptn stop --state-dir "$run_dir/state" >/dev/null 2>&1 || true' EXIT
  set +e
  stage --html="$run_dir/report.html" --self-contained-html >"$out/wheel-run.log" 2>&1
  rc=$?
  set -e
  "$venv/bin/python" -m pytest_keptn stop --state-dir "$run_dir/state" >/dev/null 2>&1 || true
  trap - EXIT
  [ $rc -eq 0 ] || { tail -40 "$out/wheel-run.log"; fail "hardening stage from the wheel: exit $rc"; }
  grep -q "keptn-report" "$run_dir/report.html" || fail "the report has no Keptn section"
  clock "the wheel's [all] install ran the hardening stage: $(grep -E '^hardening: ' "$out/wheel-run.log" | head -1)"
fi

if [[ " $steps " == *" floors "* ]]; then
  t0=$(date +%s)
  mkdir -p build
  "$py" scripts/floors.py pyproject.toml >build/floors.txt
  floors=.venv-floors
  if [ ! -x "$floors/bin/python" ] || [ pyproject.toml -nt "$floors/.installed" ]; then
    rm -rf "$floors"
    python3 -m venv "$floors"
    # the test extra's libraries, without the lint and build tools (floors.py leaves them out)
    libs=$(sed 's/==.*//' build/floors.txt)
    # shellcheck disable=SC2086
    "$floors/bin/python" -m pip install -q -c build/floors.txt -e '.[all]' $libs 2>&1 \
      | grep -v 'is ignored' || true
    "$floors/bin/python" -m pip check >/dev/null || fail "pip check at the floors"
    touch "$floors/.installed"
  fi
  "$floors/bin/python" - build/floors.txt <<'EOF' || fail "the floors venv is not at the floors"
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, _, want = line.strip().partition("==")
    have = version(name)
    assert have.split(".")[:len(want.split("."))] == want.split(".") or have == want, \
        f"{name} {have}, floor {want}"
EOF
  clock "floors: $(tr '\n' ' ' <build/floors.txt)"
  # the whole fast lane (every test not marked slow: the Keptn files through PyYAML, scoring and
  # history, Prometheus through httpx, the plugin through pytest and pluggy, the reports through
  # pytest-html and Jinja2, Locust's configuration)
  "$floors/bin/python" -W ignore::ResourceWarning -m pytest -p no:cacheprovider -q \
    -n "${KEPTN_TEST_WORKERS:-3}" -m "not slow" || fail "the fast lane at the floors"
  # Locust's API is the one that moves most between releases: its end-to-end tests too
  "$floors/bin/python" -W ignore::ResourceWarning -m pytest -p no:cacheprovider -q \
    -m slow tests/load || fail "the Locust tests at the floors"
  clock "the fast lane and the Locust tests passed at the floors"
fi
