"""The history on SQLite and on PostgreSQL side by side (issue 15).

With 10,000 stored evaluations of 50 indicators in each backend, measures the comparison
selection for one evaluation (``History.previous`` with the slo.yaml's ``several_results``,
3 results: goal under 50 ms each), opening the history (SQLite runs ``PRAGMA quick_check``),
and 8 processes writing at once. Starts its own PostgreSQL (Debian's server binaries, as the
tests do). Prints ``RESULT name=value`` lines::

    RESULT sqlite_select_ms=...            median of 50 selections
    RESULT pg_select_ms=...
    RESULT sqlite_open_ms=...              History() on the 10,000-evaluation file
    RESULT pg_open_ms=...
    RESULT sqlite_concurrent_writes_per_s=...   8 writer processes, 250 evaluations each
    RESULT pg_concurrent_writes_per_s=...

``.venv/bin/python benchmarks/bench_history.py [--stored 10000] [--indicators 50]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytest_keptn.api import History, evaluate, load_slo  # noqa: E402
from tests.postgres_server import PostgresServer, find_bindir  # noqa: E402

WRITERS = 8
PER_WRITER = 250

WRITER = textwrap.dedent("""
    import sys, time
    from pytest_keptn.api import History, evaluate
    n = int(sys.argv[3])
    slo = {"objectives": [{"sli": f"s{i}", "pass": [{"criteria": ["<100"]}]} for i in range(n)],
           "total_score": {"pass": "90"}}
    ev = evaluate(slo, {f"s{i}": 1.0 for i in range(n)})
    with History(sys.argv[1]) as h:
        while time.time() < float(sys.argv[4]):  # start together
            time.sleep(0.001)
        for _ in range({per}):
            h.record(ev, project="bench", stage="writes", service=sys.argv[2])
""").replace("{per}", str(PER_WRITER))


def _slo(indicators: int) -> dict[str, object]:
    return {
        "comparison": {"compare_with": "several_results", "number_of_comparison_results": 3,
                       "include_result_with_score": "pass"},
        "objectives": [{"sli": f"s{i}", "pass": [{"criteria": ["<=+10%", "<100"]}]}
                       for i in range(indicators)],
        "total_score": {"pass": "90%"},
    }


def fill(location: str, stored: int, indicators: int) -> None:
    slo = _slo(indicators)
    ev = evaluate(slo, {f"s{i}": 1.0 + i for i in range(indicators)})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with History(location) as h:
        for n in range(stored):
            # two services so the selection has rows to skip, as a shared database would
            h.record(ev, project="bench", stage="hardening", service=f"svc{n % 2}",
                     time=start + timedelta(seconds=n))


def select_ms(location: str, indicators: int, rounds: int = 50) -> tuple[float, float]:
    slo = load_slo(_slo(indicators))
    began = time.perf_counter()
    h = History(location)
    opened = (time.perf_counter() - began) * 1000
    times = []
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            found = h.previous(slo, project="bench", stage="hardening", service="svc1")
            times.append((time.perf_counter() - t) * 1000)
            assert len(found) == 3
    finally:
        h.close()
    return statistics.median(times), opened


def writes_per_s(location: str, indicators: int) -> float:
    History(location).close()  # schema created before the clock starts
    go = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, location, f"w{i}",
                               str(indicators), str(go)]) for i in range(WRITERS)]
    codes = [p.wait(timeout=900) for p in procs]
    elapsed = time.time() - go
    assert codes == [0] * WRITERS, codes
    with History(location) as h:
        rows = h.evaluations(project="bench", stage="writes")
        assert len(rows) == WRITERS * PER_WRITER and len({r.id for r in rows}) == len(rows)
    return WRITERS * PER_WRITER / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=10_000)
    parser.add_argument("--indicators", type=int, default=50)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("PostgreSQL server binaries not found (scripts/setup.sh installs them)")
    folder = Path(tempfile.mkdtemp(prefix="keptn-bench-history-"))
    server = PostgresServer(bindir, secret_password="bench-unused").start()
    try:
        sqlite = str(folder / "history.sqlite")
        pg = server.new_schema("bench_select")
        for name, location in (("sqlite", sqlite), ("pg", pg)):
            t = time.perf_counter()
            fill(location, args.stored, args.indicators)
            print(f"filled {name} with {args.stored} evaluations in "
                  f"{time.perf_counter() - t:.1f}s", flush=True)
        size = Path(sqlite).stat().st_size / 2**20
        print(f"sqlite file: {size:.0f} MiB")
        results: dict[str, float] = {}
        for name, location in (("sqlite", sqlite), ("pg", pg)):
            results[f"{name}_select_ms"], results[f"{name}_open_ms"] = select_ms(
                location, args.indicators)
        results["sqlite_concurrent_writes_per_s"] = writes_per_s(
            str(folder / "writes.sqlite"), args.indicators)
        results["pg_concurrent_writes_per_s"] = writes_per_s(
            server.new_schema("bench_writes"), args.indicators)
        for key in ("sqlite_select_ms", "pg_select_ms", "sqlite_open_ms", "pg_open_ms",
                    "sqlite_concurrent_writes_per_s", "pg_concurrent_writes_per_s"):
            print(f"RESULT {key}={results[key]:.1f}")
    finally:
        server.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
