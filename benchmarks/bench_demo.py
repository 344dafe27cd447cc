"""Time ``pmfin demo`` at its default size (3,000 tenants, 24 months) on a fresh database.

    .venv/bin/python benchmarks/bench_demo.py [--tenants 3000] [--months 24] [--database-url URL]

Without a URL it starts a throw-away embedded PostgreSQL in a temporary directory. Each round
runs the real command (``pmfin demo --end 2025-12 --format json``) in a subprocess three times, in
a fresh schema: on the empty schema, again over its own data (a re-run clears then regenerates),
and ``--reset``. It prints the median and the range over ``--rounds`` rounds (default 3: the
machine may be shared, and one run says little), the row counts and the summary. The target is
under 30 s for the first run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import machine, workspace


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pmfin", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"pmfin {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=3000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    opts = parser.parse_args()

    size = ["--tenants", str(opts.tenants), "--months", str(opts.months), "--end", "2025-12"]
    times: dict[str, list[float]] = {"fresh": [], "rerun": [], "reset": []}
    for _ in range(opts.rounds):
        with workspace(opts.database_url, "bench_demo", contract=False) as (_, _home, env):
            first, out = run(["demo", *size, "--format", "json"], env)
            doc = json.loads(out)
            rerun, _ = run(["demo", *size, "--format", "json"], env)
            reset, _ = run(["demo", "--reset", "--format", "json"], env)
        for key, value in (("fresh", first), ("rerun", rerun), ("reset", reset)):
            times[key].append(value)

    def cell(key: str) -> str:
        t = times[key]
        return f"{statistics.median(t):6.1f} s  ({min(t):.1f} … {max(t):.1f})"

    s = doc["summary"]
    print(f"pmfin demo {' '.join(size)}, {machine()}: median (min … max) of {opts.rounds} rounds")
    print(f"  fresh database       {cell('fresh')}   (target < 30 s, including the schema and the summary)")
    print(f"  re-run (replace)     {cell('rerun')}")
    print(f"  --reset              {cell('reset')}")
    print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in doc["written"].items()))
    print(f"  summary {s['month']}: MRR {s['mrr'] / 100:,.2f} {s['currency'].upper()}, customers {s['customers']:,}, "
          f"new {s['new'] / 100:,.2f}, expansion {s['expansion'] / 100:,.2f}, contraction {s['contraction'] / 100:,.2f}, "
          f"churn {s['churn'] / 100:,.2f}, reactivation {s['reactivation'] / 100:,.2f}")


if __name__ == "__main__":
    main()
