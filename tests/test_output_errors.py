"""Output that cannot be written: a full disk is one error line and exit 2, a closed pipe ends quietly.

These run the real command in a subprocess: the point is what happens to the process's own stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPORT = ["report", "mrr", "--month", "2025-01"]


def run(args, database_url, home: Path, stdout) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_"))}
    env.update(DATABASE_URL=database_url, PMFIN_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pmfin", *args], env=env, cwd=home, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_full_disk_is_one_error_line(database_url, pmfin_home, fmt):
    with open("/dev/full", "w") as full:
        done = run([*REPORT, "--format", fmt], database_url, pmfin_home, full)
    assert done.returncode == 2
    assert done.stderr == "error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("args", [REPORT, [*REPORT, "--format", "csv"], ["report", "movements", "--to", "2025-01"]])
def test_a_closed_pipe_ends_quietly(database_url, pmfin_home, args):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before pmfin writes a byte: `pmfin … | head -0`
    try:
        done = run(args, database_url, pmfin_home, write)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")
