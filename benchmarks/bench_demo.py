"""Time ``pmfin demo`` at its default size (3,000 tenants, 24 months) on a fresh database.

    .venv/bin/python benchmarks/bench_demo.py [--tenants 3000] [--months 24] [--database-url URL]

Without a URL it starts a throw-away embedded PostgreSQL in a temporary directory. It runs the
real command (``pmfin demo --end 2025-12 --format json``) in a subprocess three times: on an empty
schema, again over its own data (a re-run clears then regenerates), and ``--reset``; it prints
the wall time of each and the row counts. The target is under 30 s for the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import workspace


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
    parser.add_argument("--database-url", default=None)
    opts = parser.parse_args()

    with workspace(opts.database_url, "bench_demo", contract=False) as (_, _home, env):
        size = ["--tenants", str(opts.tenants), "--months", str(opts.months), "--end", "2025-12"]
        first, out = run(["demo", *size, "--format", "json"], env)
        doc = json.loads(out)
        rerun, _ = run(["demo", *size, "--format", "json"], env)
        reset, _ = run(["demo", "--reset", "--format", "json"], env)

    s = doc["summary"]
    print(f"pmfin demo {' '.join(size)}  ({os.cpu_count()} CPUs)")
    print(f"  fresh database       {first:6.1f} s   (target < 30 s, including the summary)")
    print(f"  re-run (replace)     {rerun:6.1f} s")
    print(f"  --reset              {reset:6.1f} s")
    print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in doc["written"].items()))
    print(f"  summary {s['month']}: MRR {s['mrr'] / 100:,.2f} {s['currency'].upper()}, customers {s['customers']:,}, "
          f"new {s['new'] / 100:,.2f}, expansion {s['expansion'] / 100:,.2f}, contraction {s['contraction'] / 100:,.2f}, "
          f"churn {s['churn'] / 100:,.2f}, reactivation {s['reactivation'] / 100:,.2f}")


if __name__ == "__main__":
    main()
