"""The embedded PostgreSQL server (PyPI ``pgserver``: PostgreSQL 16 in a wheel).

With no database URL configured, pmfin starts a real PostgreSQL in ``PMFIN_HOME/postgres``,
leaves it running for the next invocation (a start costs about a second, a reuse a few
milliseconds), and creates a ``pmfin`` database in it. Two pmfin processes starting at the
same moment are serialised by a file lock in ``PMFIN_HOME`` (pgserver also takes its own
inter-process lock), so exactly one initialises and starts the cluster and both get its URL.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pmfin.errors import ConfigError, DatabaseError

DB_NAME = "pmfin"


def data_dir(home: Path) -> Path:
    return home / "postgres"


def _prepare_home(home: Path) -> None:
    if home.exists() and not home.is_dir():
        raise ConfigError(f"the data directory {home} is not a directory: set PMFIN_HOME to a directory")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data directory {home}: {exc.strerror}") from None


@dataclass(frozen=True)
class Started:
    url: str  # libpq URL of the ``pmfin`` database
    created: bool  # this start initialised a new, empty cluster (no data directory was there)


def start(home: Path) -> str:
    """Start (or reuse) the embedded server under ``home``; return a libpq URL of its ``pmfin`` database."""
    return launch(home).url


def launch(home: Path) -> Started:
    """``start``, also saying whether it created the data directory (a typo in ``--home`` does)."""
    from filelock import FileLock, Timeout

    _prepare_home(home)
    lock = FileLock(str(home / ".embedded-postgres.lock"))
    try:
        with lock.acquire(timeout=120):
            return _start_locked(home)
    except PermissionError:
        raise ConfigError(f"cannot write to the data directory {home}: set PMFIN_HOME to a writable directory") from None
    except Timeout:
        raise DatabaseError(f"timed out waiting for another pmfin to start the embedded database in {home}") from None


def _import_pgserver():
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set (cron, containers)
            import pgserver
            import pgserver._commands
            import pgserver.postgres_server
    except ImportError:  # pragma: no cover - a dependency
        raise ConfigError("the embedded database needs the 'pgserver' package: pip install pgserver") from None
    module = pgserver.postgres_server
    if not getattr(module.find_suitable_socket_dir, "pmfin_safe", False):
        module.find_suitable_socket_dir = _safe_socket_dir(module.find_suitable_socket_dir)
    return pgserver


_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./-]+")


def _safe_socket_dir(choose):
    """pgserver hands the socket directory to postgres inside pg_ctl's ``-o '-k DIR'`` without
    quoting it, so a space or a quote in the data directory's path (macOS's default, "~/Library/
    Application Support/pmfin") breaks the start. For such a path the socket goes where pgserver
    already puts it for paths too long for a socket: its runtime directory, under a hash."""

    def choose_safely(pgdata: Path, runtime_path: Path) -> Path:
        if _SHELL_SAFE.fullmatch(str(pgdata)):
            return choose(pgdata, runtime_path)
        digest = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
        path = Path(runtime_path) / digest
        path.mkdir(parents=True, exist_ok=True)
        return path

    choose_safely.pmfin_safe = True  # type: ignore[attr-defined]
    return choose_safely


def _start_locked(home: Path, attempts: int = 3) -> Started:
    pgserver = _import_pgserver()
    pgdata = data_dir(home).resolve()
    created = not (pgdata / "PG_VERSION").exists()
    for attempt in range(1, attempts + 1):
        try:
            server = pgserver.get_server(pgdata, cleanup_mode=None)
            break
        except Exception as exc:  # pgserver raises CalledProcessError/TimeoutExpired/AssertionError
            # pgserver caches the instance before starting it; a failed start leaves a broken
            # one behind. Drop it, so the next attempt looks at the server afresh: pgserver gives
            # `pg_ctl start` only 10 s, and on a loaded machine the server is often up just after.
            pgserver.PostgresServer._instances.pop(pgdata, None)
            if attempt == attempts:
                log = pgdata / "log"
                hint = f" (see {log})" if log.exists() else ""
                raise DatabaseError(f"cannot start the embedded PostgreSQL in {pgdata}: {exc}{hint}") from None
            _wait_settled(pgdata)
            time.sleep(attempt)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    _ensure_database(uri)
    return Started(uri.replace("/postgres?", f"/{DB_NAME}?", 1), created)


def _wait_settled(pgdata: Path, timeout: float = 120.0) -> None:
    """Before another start attempt, wait until the data directory is no longer mid-way: a
    postmaster still starting writes ``postmaster.pid`` line by line (pgserver's reader asserts on
    a partial file), and a single-user backend (initdb's, a negative PID) holds it until it ends.
    Returns when the file is complete with status 'ready', gone, or names a process that is gone."""
    import os

    pidfile = pgdata / "postmaster.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lines = pidfile.read_text().splitlines()
        except FileNotFoundError:
            return
        except OSError:
            lines = []
        pid = int(lines[0]) if lines and lines[0].strip().lstrip("-").isdigit() else None
        if pid is not None:
            try:
                os.kill(abs(pid), 0)
            except ProcessLookupError:
                return  # a stale file: pgserver starts a new server over it
            except PermissionError:
                pass  # alive, run as another user (pgserver's 'pgserver' user under root)
        if pid is not None and pid > 0 and len(lines) >= 8 and lines[7].strip() == "ready":
            return
        time.sleep(0.5)


def _ensure_database(uri: str) -> None:
    """Create the ``pmfin`` database in the cluster once (under the start lock)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DB_NAME}")


def stop(home: Path) -> bool:
    """Stop the embedded server if it runs. True when a server was stopped."""
    import subprocess

    pgdata = data_dir(home)
    if not (pgdata / "postmaster.pid").exists():
        return False
    import os

    pg_ctl = _import_pgserver()._commands.pg_ctl  # the same binary pgserver started it with
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs the server as this user under root
    try:
        pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True
