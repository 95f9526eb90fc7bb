#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, type-checks, tests;
# without arguments (CI, the README's Quick start) also checks what users install
# (scripts/check_packaging.sh: sdist and wheel, a core and an [all] install from the wheel, the
# fast lane at the declared floors). With arguments they go to pytest and the packaging checks
# are skipped: `./scripts/test.sh -m "not slow"` is the contributor's fast lane.
set -euo pipefail
cd "$(dirname "$0")/.."
KEPTN_SETUP_CHROMIUM=1 bash scripts/setup.sh
.venv/bin/ruff check pytest_keptn tests benchmarks example_project scripts
.venv/bin/mypy
# -W: kept primaries and stopped servers may still be reaped after pytest has printed its summary
# -n: most tests wait on real servers (scrape intervals, load windows, process starts), so three
# workers on two cores halve the wall time (docs/benchmarks.md, CI time); KEPTN_TEST_WORKERS=0
# runs everything in one process
.venv/bin/python -W ignore::ResourceWarning -m pytest -p no:cacheprovider -q -ra \
  -n "${KEPTN_TEST_WORKERS:-3}" "$@"
if [ $# -eq 0 ]; then
  bash scripts/check_packaging.sh
fi
