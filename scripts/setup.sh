#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh machine, idempotently:
# Debian's prometheus, victoria-metrics and postgresql (the servers the tests start; chromium for
# the report test) when missing, a venv with the package.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
# the tests of a backend of the user's own (README: your own Prometheus or VictoriaMetrics)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
if [ "${KEPTN_SETUP_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# [all] (Locust, pytest-html, psycopg, the demo's prometheus-client) plus the test tools
if ! .venv/bin/python -c 'import pytest_keptn, locust, pytest_html, psycopg, prometheus_client, xdist, hypothesis, psutil, build, twine, ruff' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.installed ]; then
  echo "setup: pip install -e .[all,test]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[all,test]' 2>&1 | grep -v 'is ignored' || true
  # fail loudly if the install did not work
  .venv/bin/python -c 'import pytest_keptn, locust, pytest_html, psycopg, prometheus_client, xdist, hypothesis, psutil'
  touch .venv/.installed
fi
