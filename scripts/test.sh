#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, type-checks, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
KEPTN_SETUP_CHROMIUM=1 bash scripts/setup.sh
.venv/bin/ruff check pytest_keptn tests benchmarks example_project
.venv/bin/mypy
# -W: kept primaries and stopped servers may still be reaped after pytest has printed its summary
exec .venv/bin/python -W ignore::ResourceWarning -m pytest -p no:cacheprovider -q -ra "$@"
