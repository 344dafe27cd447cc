"""The database layer: URLs, the contract DDL, migrations, errors, and the embedded server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pmfin.db import migrate
from pmfin.db.errors import translate
from pmfin.db.url import display, normalize
from pmfin.errors import ConfigError, DatabaseError

from conftest import make_cli


@pytest.mark.parametrize(
    "raw,driver_url",
    [
        ("postgres://u:p@db.example:5433/app", "postgresql+psycopg://u:p@db.example:5433/app"),
        ("postgresql://u:p@db.example/app?sslmode=require", "postgresql+psycopg://u:p@db.example/app?sslmode=require"),
        ("postgresql+psycopg2://u@h/app", "postgresql+psycopg://u@h/app"),
        ("postgres:///app?host=/var/run/postgresql", "postgresql+psycopg:///app?host=%2Fvar%2Frun%2Fpostgresql"),
    ],
)
def test_normalize_accepts_what_postgres_users_paste(raw, driver_url):
    assert normalize(raw).render_as_string(hide_password=False) == driver_url


@pytest.mark.parametrize(
    "raw,message",
    [
        ("", "empty"),
        ("localhost:5432/app", "malformed database URL"),
        ("mysql://u:p@h/db", "not a PostgreSQL URL"),
        ("postgres://u:secret@h:notaport/db", "malformed database URL"),
    ],
)
def test_normalize_rejects(raw, message):
    with pytest.raises(ConfigError, match=message) as exc:
        normalize(raw)
    assert "secret" not in str(exc.value)


def test_display_masks_password_and_unescapes_socket():
    assert display(normalize("postgres://bob:hunter2@h:5432/app")) == "postgresql://bob:***@h:5432/app"
    assert display(normalize("postgres://postgres@/pmfin?host=/tmp/x/postgres")) == (
        "postgresql://postgres@/pmfin?host=/tmp/x/postgres"
    )


def test_unix_socket_url_connects(pg_base_url):
    # pgserver hands out a socket URL (?host=/dir); pmfin must connect through psycopg 3 with it.
    assert "host=" in pg_base_url
    eng = create_engine(normalize(pg_base_url.replace("postgresql://", "postgres://", 1)))
    with eng.connect() as conn:
        assert conn.execute(text("select 1")).scalar() == 1
    eng.dispose()


def test_db_init_creates_contract_and_is_idempotent(bare_database_url, pmfin_home):
    cli = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    r = cli("db", "init", "--app-schema", "--format", "json")
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert sorted(first["created_tables"]) == sorted(migrate.CONTRACT_TABLES)
    assert first["from_revision"] is None and first["to_revision"] == migrate.head_revision()
    assert first["changed"] is True
    r = cli("db", "init", "--app-schema", "--format", "json")
    second = json.loads(r.stdout)
    assert second["created_tables"] == [] and second["changed"] is False
    r = cli("db", "status", "--format", "json")
    st = json.loads(r.stdout)
    assert st["up_to_date"] is True and st["contract_tables_missing"] == [] and st["pending_migrations"] == []
    assert "pmfin_alembic_version" in st["pmfin_tables"]


def test_db_init_without_app_schema_creates_only_pmfin_tables(bare_database_url, pmfin_home):
    cli = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    r = cli("db", "init", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["created_tables"] == []
    st = json.loads(cli("db", "status", "--format", "json").stdout)
    assert len(st["contract_tables_missing"]) == len(migrate.CONTRACT_TABLES)
    assert st["up_to_date"] is True


def test_status_before_init_lists_pending(bare_database_url, pmfin_home):
    cli = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    st = json.loads(cli("db", "status", "--format", "json").stdout)
    assert st["current_revision"] is None and st["up_to_date"] is False
    assert st["pending_migrations"][0] == "0001_initial"


def test_existing_platform_tables_are_not_altered(bare_database_url):
    eng = create_engine(normalize(bare_database_url))
    with eng.begin() as conn:
        # The platform's own tenants table, with a column the contract doesn't name.
        conn.execute(text("CREATE TABLE tenants (id uuid PRIMARY KEY, name text, created timestamptz, deleted timestamptz, plan_hint text)"))
    result = migrate.init(eng, app_schema=True)
    assert "tenants" not in result.created_tables and "payments" in result.created_tables
    with eng.connect() as conn:
        cols = conn.execute(text("select column_name from information_schema.columns where table_schema = current_schema() and table_name='tenants'")).scalars().all()
    assert "plan_hint" in cols
    eng.dispose()


def test_platform_style_inserts_naming_only_what_they_know(engine):
    tenant = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id) VALUES (:t)"), {"t": tenant})
        conn.execute(text("INSERT INTO tenant_config (tenant_id) VALUES (:t)"), {"t": tenant})
        conn.execute(text("INSERT INTO plans (id) VALUES ('starter')"))
        conn.execute(
            text("INSERT INTO subscriptions (tenant_id, id, plan_id, unit_price_cents, currency, started_at) "
                 "VALUES (:t, :i, 'starter', 900, 'usd', now())"),
            {"t": tenant, "i": uuid.uuid4()},
        )
        conn.execute(
            text("INSERT INTO payments (tenant_id, id, amount_cents, currency, status, created_at) "
                 "VALUES (:t, :i, 900, 'usd', 'succeeded', now())"),
            {"t": tenant, "i": uuid.uuid4()},
        )
        row = conn.execute(text("SELECT currency, billing_status FROM tenant_config")).one()
        assert (row.currency, row.billing_status) == ("usd", "active")
        sub = conn.execute(text("SELECT quantity, cancel_at_period_end FROM subscriptions")).one()
        assert (sub.quantity, sub.cancel_at_period_end) == (1, False)
        assert conn.execute(text("SELECT refunded_cents FROM payments")).scalar() == 0


def test_two_inits_at_once(bare_database_url):
    eng = create_engine(normalize(bare_database_url))
    errors: list[BaseException] = []

    def run():
        try:
            migrate.init(eng, app_schema=True)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert migrate.status(eng).up_to_date
    eng.dispose()


def test_undefined_table_is_explained(bare_database_url):
    eng = create_engine(normalize(bare_database_url))
    with pytest.raises(Exception) as exc:
        with eng.connect() as conn:
            conn.execute(text("SELECT * FROM subscriptions"))
    err = translate(exc.value)
    assert isinstance(err, DatabaseError)
    assert 'relation "subscriptions" does not exist' in err.message and "pmfin db init" in err.message
    assert translate(ValueError("x")) is None  # a bug stays a bug
    eng.dispose()


def test_require_contract(bare_database_url):
    eng = create_engine(normalize(bare_database_url))
    with eng.connect() as conn, pytest.raises(DatabaseError, match="missing tables tenants, payments"):
        migrate.require_contract(conn, ("tenants", "payments"))
    eng.dispose()


# --- errors at the command line: one line on stderr, exit 2, no traceback -------------------

def _assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "url,fragment,secret",
    [
        ("mysql://u:secret@localhost/db", "not a PostgreSQL URL", "secret"),
        ("postgres://u:secret@localhost:99999x/db", "malformed database URL", "secret"),
        ("postgres://u:secret@127.0.0.1:1/db", "cannot connect to the database", "secret"),
        # libpq's own parser: a Prisma-style option it does not know
        ("postgresql://u:secret@localhost/db?schema=public",
         'not one libpq accepts (invalid URI query parameter: "schema")', "secret"),
        # an unencoded '@' in the password: no part of the password may show
        ("postgresql://u:p@ss@127.0.0.1:1/db", "percent-encode an '@'", "ss@"),
    ],
)
def test_bad_database_url_exits_2(url, fragment, secret, tmp_path):
    cli = make_cli({"DATABASE_URL": url, "PMFIN_HOME": str(tmp_path)})
    r = cli("db", "status")
    _assert_one_line_error(r, fragment)
    assert secret not in r.stderr


def test_bad_flag_value_is_one_line(cli):
    r = cli("db", "status", "--format", "xml")
    _assert_one_line_error(r, "Invalid value for '--format'")
    assert "'xml' is not one of 'table', 'json', 'csv'" in r.stderr and "Value error" not in r.stderr


def test_unknown_command_is_one_line(cli):
    _assert_one_line_error(cli("db", "statu"), "No such command 'statu'. Did you mean 'status'?")


def test_database_url_flag_beats_environment(bare_database_url, tmp_path):
    cli = make_cli({"DATABASE_URL": "postgres://u@127.0.0.1:1/unreachable", "PMFIN_HOME": str(tmp_path)})
    r = cli("--database-url", bare_database_url, "db", "status", "--format", "json")
    assert r.exit_code == 0, r.output


def test_version(cli):
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.startswith("pmfin ")


# --- the embedded server ---------------------------------------------------------------------

def _pmfin(home: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_")) and k != "DATABASE_URL"}
    env["PMFIN_HOME"] = str(home)
    return subprocess.Popen(
        [sys.executable, "-m", "pmfin", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_embedded_server_two_processes_at_once_then_reuse(tmp_path):
    from pmfin.db import embedded

    home = tmp_path / "home"
    try:
        procs = [_pmfin(home, "db", "status", "--format", "json") for _ in range(2)]
        outs = [p.communicate(timeout=180) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err
            assert "Traceback" not in err
        urls = {json.loads(out)["database"] for out, _ in outs}
        assert len(urls) == 1  # both got the same server
        # the one that created the data directory says so on stderr (a typo in --home shows)
        created = f"created a new data directory {home / 'postgres'} with an empty embedded PostgreSQL"
        assert sorted(created in err for _, err in outs) == [False, True], [err for _, err in outs]
        (url,) = urls
        assert url.startswith("postgresql://postgres@/pmfin?host=") and json.loads(outs[0][0])["embedded"] is True
        # The next run reuses the running server: same URL, and `db init` works on it.
        p = _pmfin(home, "db", "init", "--app-schema", "--format", "json")
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert err == ""  # nothing was created this time
        assert json.loads(out)["database"] == url
        pid_file = home / "postgres" / "postmaster.pid"
        assert pid_file.exists()
    finally:
        embedded.stop(home)
    assert not (home / "postgres" / "postmaster.pid").exists()


def _assert_embedded_server_serves(home: Path) -> None:
    """Start the embedded server under ``home``, connect to its pmfin database, stop it."""
    from pmfin.db import embedded

    try:
        eng = create_engine(normalize(embedded.start(home)))
        with eng.connect() as conn:
            assert conn.execute(text("select current_database()")).scalar() == "pmfin"
        eng.dispose()
    finally:
        embedded.stop(home)


def test_embedded_start_recovers_from_a_slow_pg_ctl(tmp_path, monkeypatch):
    """pgserver gives `pg_ctl start` 10 s; on a loaded machine it can time out with the server
    coming up just after. The first start attempt fails here as it would then; pmfin drops
    pgserver's half-built instance and the next attempt finds or starts the server."""
    import subprocess

    import pgserver

    real = pgserver.PostgresServer.ensure_postgres_running
    calls = {"n": 0}

    def slow_then_real(self):
        calls["n"] += 1
        if calls["n"] == 1:
            real(self)  # the server does start...
            raise subprocess.TimeoutExpired(["pg_ctl", "start"], 10)  # ...but pg_ctl was too slow to say so
        return real(self)

    monkeypatch.setattr(pgserver.PostgresServer, "ensure_postgres_running", slow_then_real)
    _assert_embedded_server_serves(tmp_path / "home")
    assert calls["n"] == 2


def test_require_contract_tells_which_init_helps(bare_database_url):
    eng = create_engine(normalize(bare_database_url))
    with eng.begin() as conn:
        conn.exec_driver_sql(migrate.app_schema_sql())  # the platform's tables, no pmfin tables
    with eng.connect() as conn, pytest.raises(DatabaseError) as exc:
        migrate.require_contract(conn, ("subscriptions", "pmfin_fx_rates"))
    assert str(exc.value) == (
        "pmfin's own table is missing (pmfin_fx_rates) — run `pmfin db init` once on this database "
        "(it creates only pmfin_* tables)"
    )
    eng.dispose()


def test_out_of_range_arithmetic_is_explained(engine):
    with pytest.raises(Exception) as exc:
        with engine.connect() as conn:
            conn.execute(text("SELECT 9223372036854775807::bigint * 12"))
    err = translate(exc.value)
    assert isinstance(err, DatabaseError) and err.message.startswith("a value in the database is out of range: ")


def test_home_with_a_space_starts(tmp_path):
    """macOS's default data directory is ~/Library/Application Support/pmfin: pgserver would
    hand that path to pg_ctl unquoted."""
    _assert_embedded_server_serves(tmp_path / "Application Support" / "pmfin")


def test_env_file_errors(tmp_path):
    bad = tmp_path / "bad.env"
    bad.write_bytes(b"\xff\xfeX=1\n")
    cli = make_cli({"PMFIN_HOME": str(tmp_path)})
    _assert_one_line_error(cli("--env-file", str(bad), "db", "url"), f"{bad}, line 1: not UTF-8 text")
    _assert_one_line_error(cli("--env-file", str(tmp_path), "db", "url"), "env file is not a file")


def test_home_that_is_a_file(tmp_path):
    home = tmp_path / "home"
    home.write_text("")
    _assert_one_line_error(make_cli({"PMFIN_HOME": str(home)})("db", "status"), "is not a directory")


def test_markup_in_input_is_text_not_a_traceback(cli):
    r = cli("demo", "--end", "[/x]")
    _assert_one_line_error(r, "--end must be YYYY-MM, got '[/x]'")
