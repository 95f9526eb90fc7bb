#!/usr/bin/env bash
# The tutorial end to end on one machine: v0.1.1 through hardening and production (promoted),
# then v0.1.2 (stopped by the hardening gate, rolled back; production keeps serving v0.1.1).
# Exits 0 only if exactly that happened.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
repo=$(pwd)
cd example_project
"$repo/.venv/bin/python" -m pytest_keptn stop --state-dir build/state >/dev/null 2>&1 || true
rm -rf build
py="$repo/.venv/bin/python"
stop() { "$py" -m pytest_keptn stop --state-dir build/state >/dev/null 2>&1 || true; }
trap stop EXIT
fail() { echo "DEMO FAILED: $*"; exit 1; }
start=$(date +%s)

echo "=== 1/2: deliver v0.1.1 (hardening -> production) ==="
"$py" -m pytest --keptn-stage=all --keptn-tag=v0.1.1 --junitxml=build/junit-v0.1.1.xml \
  --html=build/report-v0.1.1.html --self-contained-html -p no:cacheprovider
rc1=$?
[ $rc1 -eq 0 ] || fail "v0.1.1 should pass hardening and reach production (pytest exit $rc1)"

echo "=== 2/2: deliver v0.1.2 (a regression: the hardening gate must stop it) ==="
"$py" -m pytest --keptn-stage=all --keptn-tag=v0.1.2 --junitxml=build/junit-v0.1.2.xml \
  --html=build/report.html --self-contained-html -p no:cacheprovider
rc2=$?
[ $rc2 -eq 1 ] || fail "v0.1.2 should fail the hardening gate (pytest exit $rc2, expected 1)"

echo "=== checks ==="
"$py" -m pytest_keptn status --state-dir build/state || fail "no deployer state"
prod=$("$py" -m pytest_keptn status --state-dir build/state --url production helloservice) \
  || fail "production has no primary"
body=$("$py" -c "import sys, httpx; print(httpx.get(sys.argv[1], timeout=5).text)" "$prod") \
  || fail "production primary at $prod does not answer"
case "$body" in *v0.1.1*) echo "production serves v0.1.1 at $prod";; *) fail "production does not serve v0.1.1: $body";; esac
hard=$("$py" -m pytest_keptn status --state-dir build/state --url hardening helloservice) \
  || fail "hardening has no primary"
body=$("$py" -c "import sys, httpx; print(httpx.get(sys.argv[1], timeout=5).text)" "$hard")
case "$body" in *v0.1.1*) echo "hardening primary still serves v0.1.1 at $hard (v0.1.2 rolled back)";; *) fail "hardening primary: $body";; esac
n=$(ls build/events/*.json 2>/dev/null | wc -l)
[ "$n" -ge 2 ] || fail "expected at least 2 evaluation.finished events in build/events, found $n"
[ -s build/report.html ] || fail "no report at example_project/build/report.html"
echo "events: example_project/build/events ($n files); report: example_project/build/report.html"
echo "DEMO OK in $(( $(date +%s) - start ))s: v0.1.1 promoted to production, v0.1.2 stopped in hardening"
