"""Start-up time of the ``pmfin`` command (run by hand, not in tests).

    .venv/bin/python benchmarks/bench_startup.py [--runs 21] [--database-url URL]

Each case runs the whole process ``--runs`` times (after one untimed warm-up run) and reports
the median wall time, its spread (min … max), the median minus that of ``python -c pass`` (what
pmfin adds to a bare interpreter) and the median CPU time (user + system: what the process itself
spent, which other work on a shared machine disturbs less than the wall time):

- ``python -c pass``: the interpreter alone, the baseline;
- ``pmfin --help`` and ``pmfin report --help``;
- shell completion: what bash runs on <TAB> after ``pmfin report m``
  (``_PMFIN_COMPLETE=complete_bash COMP_WORDS='pmfin report m' COMP_CWORD=2 pmfin``);
- a report's fixed overhead before its SQL: ``pmfin report mrr --month 2025-01 --format json``
  up to the moment its first SQL statement is sent (a ``before_cursor_execute`` listener ends
  the process there): start-up, settings, the command's imports, the engine and the connection;
- the same report run to the end on an empty data contract (its SQL then takes milliseconds).

The database is the URL given, else pmfin's embedded PostgreSQL started (and left warm, as a
user's is after the first command) in a temporary directory; the reports run in a scratch schema
with the contract tables.
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import subprocess
import sys
import time

from common import machine, pmfin_command, workspace

# The report up to its first SQL statement: the listener ends the process right there.
TO_FIRST_SQL = """
import os, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _first_statement(*_args, **_kw):
    os._exit(0)

from pmfin.cli import main
sys.argv[0] = "pmfin"
main()
"""

REPORT = ["report", "mrr", "--month", "2025-01", "--format", "json"]


def timed(cmd: list[str], env: dict[str, str], runs: int, ok=(0,)) -> tuple[list[float], list[float]]:
    """(wall times, CPU times: user + system of the process) of ``runs`` runs after a warm-up."""
    walls, cpus = [], []
    for i in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in ok:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        if i:  # the first run warms the file cache
            walls.append(elapsed)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--database-url", default=None)
    opts = parser.parse_args()

    with workspace(opts.database_url, "bench_startup") as (_, _home, env):
        complete = dict(env, _PMFIN_COMPLETE="complete_bash", COMP_WORDS="pmfin report m", COMP_CWORD="2")
        pmfin = pmfin_command()
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], env),
            ("pmfin --help", [*pmfin, "--help"], env),
            ("pmfin report --help", [*pmfin, "report", "--help"], env),
            ("shell completion of `pmfin report m`", pmfin, complete),
            ("report mrr: up to its first SQL statement", [sys.executable, "-c", TO_FIRST_SQL, *REPORT], env),
            ("report mrr: whole run, empty contract", [*pmfin, *REPORT], env),
        ]
        results = [(name, timed(cmd, case_env, opts.runs)) for name, cmd, case_env in cases]

    base = statistics.median(results[0][1][0])
    print(f"pmfin start-up, {machine()}: median of {opts.runs} runs of the whole process; "
          f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"| {'case':<44} | wall, median (s) | min … max (s) | minus python -c pass (s) | CPU, median (s) |")
    print(f"|{'-' * 46}|-----------------:|--------------:|-------------------------:|----------------:|")
    for name, (walls, cpus) in results:
        med = statistics.median(walls)
        extra = "" if name == "python -c pass" else f"{med - base:.3f}"
        print(f"| {name:<44} | {med:16.3f} | {min(walls):.3f} … {max(walls):.3f} | {extra:>24} | "
              f"{statistics.median(cpus):15.3f} |")


if __name__ == "__main__":
    main()
