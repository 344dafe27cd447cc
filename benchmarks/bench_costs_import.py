"""``pmfin costs import`` of a large file (run by hand, not in tests).

    .venv/bin/python benchmarks/bench_costs_import.py [--rows 200000] [--database-url URL]

Writes a costs CSV of ``--rows`` rows (209 categories a month, from 1950 on, amounts with cents),
then runs the real command in a subprocess on a scratch schema with pmfin's tables and reports
each run's wall time and peak RSS (``getrusage`` of the child): the dry run for people (table:
a summary and the first rows), the dry run as JSON and as CSV (every row), the import, and the
same import again (every row unchanged). Without a URL it starts pmfin's embedded PostgreSQL in a
temporary directory.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from common import machine, measure_child, pmfin_command, workspace

CATEGORIES = ["infrastructure", "software", "personnel", "legal", "insurance", "operations", "marketing", "sales",
              "customer_success", *(f"extra_{i}" for i in range(200))]
VARIABLE = {"marketing", "sales", "customer_success"}


def write_file(path: Path, n: int) -> None:
    rng = random.Random(1)
    with path.open("w") as f:
        f.write("month,category,kind,amount,currency\n")
        written = 0
        year, month = 1950, 1
        while written < n:
            for category in CATEGORIES[: n - written]:
                kind = "variable" if category in VARIABLE else "fixed"
                f.write(f"{year}-{month:02d},{category},{kind},{rng.randint(100, 100000)}.{rng.randint(0, 99):02d},usd\n")
                written += 1
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url", default=None)
    opts = parser.parse_args()
    with workspace(opts.database_url, "bench_costs") as (_, home, env):
        big = home / "big.csv"
        write_file(big, opts.rows)
        pmfin = pmfin_command()
        runs = [  # (flags, what it does)
            ("--dry-run", "the plan for people: a summary and the first rows"),
            ("--dry-run --format json", "the plan, every row"),
            ("--dry-run --format csv", "the plan, every row"),
            ("--format csv", "the import, every row new"),
            ("--format csv", "the same import again, every row unchanged"),
        ]
        results = [(flags, what, *measure_child([*pmfin, "costs", "import", str(big), *flags.split()], env))
                   for flags, what in runs]
        size = big.stat().st_size
    print(f"pmfin costs import of {opts.rows:,} rows ({size / 1e6:.1f} MB), {machine()}")
    print("| command | what | wall (s) | peak RSS (MiB) |")
    print("|---|---|---:|---:|")
    for flags, what, wall, rss in results:
        print(f"| `pmfin costs import big.csv {flags}` | {what} | {wall:.1f} | {rss} |")


if __name__ == "__main__":
    main()
