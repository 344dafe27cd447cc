"""The embedded server's retry waits for the data directory to settle (a loaded machine: pgserver's
10 s `pg_ctl start` timed out while the postmaster was still writing its pid file)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from pmfin.db.embedded import _wait_settled

READY = ["{pid}", "/data", "1796000000", "5432", "/sock", "", "  1  2", "ready   "]


def write(pgdata, lines):
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def timed(pgdata, timeout=1.5) -> float:
    start = time.monotonic()
    _wait_settled(pgdata, timeout=timeout)
    return time.monotonic() - start


def test_no_pid_file_or_a_ready_server_returns_at_once(tmp_path):
    assert timed(tmp_path) < 0.2
    write(tmp_path, [line.format(pid=os.getpid()) for line in READY])
    assert timed(tmp_path) < 0.2


def test_a_stale_file_returns_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write(tmp_path, [line.format(pid=int(dead.stdout)) for line in READY[:5]])
    assert timed(tmp_path) < 0.2


def test_a_half_written_file_or_a_single_user_backend_is_waited_out(tmp_path):
    write(tmp_path, [line.format(pid=os.getpid()) for line in READY[:7]])  # still starting: no status yet
    assert timed(tmp_path, timeout=1.0) >= 1.0
    write(tmp_path, [line.format(pid=-os.getpid()) for line in READY])  # initdb's single-user backend
    assert timed(tmp_path, timeout=1.0) >= 1.0
