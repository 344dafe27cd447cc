"""What the benchmark scripts share: a database to run in, scratch schemas, timing a child process.

The scripts import it as ``common`` (Python puts the script's own folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@contextmanager
def database(url: str | None, home: Path | None = None) -> Iterator[str]:
    """``url``, or pmfin's embedded PostgreSQL started under ``home`` (a temporary directory when
    None) for the duration, then stopped."""
    if url:
        yield url
        return
    from pmfin.db import embedded

    with tempfile.TemporaryDirectory(prefix="pmfin-bench-pg-") as tmp:
        where = home or Path(tmp)
        try:
            yield embedded.start(where)
        finally:
            embedded.stop(where)


def url_with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def scratch_schema(url: str, schema: str, *, contract: bool = False, keep: bool = False) -> Iterator[str]:
    """A fresh schema ``schema`` in ``url`` (dropped afterwards unless ``keep``); yields a URL on it.
    ``contract``: with the data-contract tables and pmfin's own (``pmfin db init --app-schema``)."""
    from sqlalchemy import create_engine, text

    from pmfin.db import migrate
    from pmfin.db.url import normalize

    admin = create_engine(normalize(url))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = url_with_schema(url, schema)
    if contract:
        engine = create_engine(normalize(scoped))
        migrate.init(engine, app_schema=True)
        engine.dispose()
    try:
        yield scoped
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def workspace(url: str | None, name: str, *, contract: bool = True) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """Everything a benchmark of the ``pmfin`` command needs: (a URL on a fresh scratch schema,
    a temporary PMFIN_HOME, the environment for the command: the developer's own PMFIN_/STRIPE_
    settings left out)."""
    with tempfile.TemporaryDirectory(prefix="pmfin-bench-") as tmp, database(url, Path(tmp)) as base, \
            scratch_schema(base, f"{name}_{os.getpid()}", contract=contract) as scoped:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_", "_PMFIN"))}
        env.update(DATABASE_URL=scoped, PMFIN_HOME=tmp, COLUMNS="120")
        yield scoped, Path(tmp), env


def measure_child(cmd: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,)) -> tuple[float, int]:
    """Wall time and peak RSS (MiB) of ``cmd``, measured by a fresh interpreter so RUSAGE_CHILDREN is its own.
    ``ok``: the exit codes that count as success (``reconcile`` exits 1 when it finds differences)."""
    probe = (
        "import os, resource, subprocess, sys, time, json;"
        "t = time.perf_counter();"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True);"
        "w = time.perf_counter() - t;"
        "print(json.dumps([w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode, p.stderr[-500:]]))"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=True)
    wall, rss, code, err = json.loads(out.stdout)
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}): {err}")
    return wall, rss // 1024


def machine() -> str:
    """When and on what: for the header of a benchmark's figures (the machine may be shared)."""
    import datetime as dt

    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end"


def pmfin_command() -> list[str]:
    """The installed ``pmfin`` script beside this interpreter (what users run), else ``-m pmfin``."""
    script = Path(sys.executable).with_name("pmfin")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pmfin"]
