"""Shared fixtures: a real PostgreSQL (embedded ``pgserver`` unless PMFIN_TEST_DATABASE_URL is
given), a fresh schema per test, and the real CLI through ``typer.testing.CliRunner``.

Isolation: every test gets its own schema (``search_path`` set in the URL's ``options``), so
tests never see each other's rows and can run in parallel (pytest -n).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from pmfin.db import migrate
from pmfin.db.url import normalize

# The stateful Stripe fake (tests/stripe_fake): fixtures stripe_fake, stripe_env, stripe_client.
pytest_plugins = ["stripe_fake.plugin"]

_ENV_PREFIXES = ("PMFIN_", "STRIPE_")
_ENV_NAMES = ("DATABASE_URL", "APP_URL", "NEXT_PUBLIC_APP_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's shell or a .env in the working directory."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in _ENV_NAMES:
            if name != "PMFIN_TEST_DATABASE_URL":
                monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def pg_base_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A libpq URL of a real PostgreSQL database that tests may create schemas in."""
    given = os.environ.get("PMFIN_TEST_DATABASE_URL")
    if given:
        return given
    from pmfin.db import embedded

    home = tmp_path_factory.mktemp("pmfin-test-home")
    url = embedded.start(home)
    yield url
    embedded.stop(home)


def with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def schema(pg_base_url: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize(pg_base_url), poolclass=None)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def bare_database_url(pg_base_url: str, schema: str) -> str:
    """A URL on an empty schema: no contract tables, no pmfin tables."""
    return with_search_path(pg_base_url, schema)


@pytest.fixture
def database_url(bare_database_url: str) -> str:
    """A URL on a schema holding the data contract and pmfin's migrated tables."""
    eng = create_engine(normalize(bare_database_url))
    try:
        migrate.init(eng, app_schema=True)
    finally:
        eng.dispose()
    return bare_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(normalize(database_url))
    yield eng
    eng.dispose()


@pytest.fixture
def pmfin_home(tmp_path: Path) -> Path:
    home = tmp_path / "pmfin-home"
    home.mkdir()
    return home


@pytest.fixture
def smtp() -> Iterator[object]:
    """A real SMTP server on loopback (``tests/smtp_server.py``): ``smtp.env()`` points pmfin at
    it, ``smtp.messages`` holds what it received; stopped after the test."""
    from smtp_server import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def cli(database_url: str, pmfin_home: Path) -> Callable[..., object]:
    """Run the real ``pmfin`` app in-process: ``cli("report", "mrr", "--month", "2026-01")``.

    The environment points at this test's schema; ``env=`` adds or overrides variables
    (a value of None removes one). Returns the click Result (exit_code, stdout, stderr).
    """
    return make_cli({"DATABASE_URL": database_url, "PMFIN_HOME": str(pmfin_home)})


@pytest.fixture(scope="session")
def demo_history(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Callable[..., object]]]:
    """(a URL, the CLI on it) for a small demo history (200 tenants, 14 months to 2025-06) in a
    schema of its own, made once per test worker: for tests that only read it."""
    from demo_fixtures import drop_schema, new_schema

    name, url = new_schema(pg_base_url)
    cli = make_cli({"DATABASE_URL": url, "PMFIN_HOME": str(tmp_path_factory.mktemp("demo-home"))})
    result = cli("demo", "--tenants", "200", "--months", "14", "--end", "2025-06")
    assert result.exit_code == 0, result.output
    yield url, cli
    drop_schema(pg_base_url, name)


def make_cli(base_env: dict[str, str | None]) -> Callable[..., object]:
    from pmfin.cli import app

    def run(*args: str, env: dict[str, str | None] | None = None, input: str | None = None):
        runner = CliRunner()
        merged = dict(base_env)
        merged.update(env or {})
        return runner.invoke(app, list(args), env=merged, input=input, catch_exceptions=True)

    return run
