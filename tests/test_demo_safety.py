"""``pmfin demo``: determinism, refusal of foreign data, --force, re-runs, --reset, bad input."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import create_engine, text

from pmfin.db import migrate
from pmfin.db.url import normalize
from pmfin.months import Month

from conftest import make_cli
from demo_fixtures import SMALL, add_foreign_tenant, counts, drop_schema, fingerprint, new_schema

TINY = ("--tenants", "40", "--months", "4", "--end", "2025-03")


def stderr_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_same_seed_gives_identical_rows_and_another_seed_does_not(pg_base_url, database_url, engine, pmfin_home):
    other_name, other_url = new_schema(pg_base_url)
    try:
        first = make_cli({"DATABASE_URL": database_url, "PMFIN_HOME": str(pmfin_home)})("demo", *SMALL, "-f", "json")
        second = make_cli({"DATABASE_URL": other_url, "PMFIN_HOME": str(pmfin_home)})("demo", *SMALL, "-f", "json")
        assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
        assert first.stdout == second.stdout
        other = create_engine(normalize(other_url))
        try:
            assert fingerprint(engine) == fingerprint(other)
            seed8 = make_cli({"DATABASE_URL": other_url, "PMFIN_HOME": str(pmfin_home)})(
                "demo", *SMALL[:4], "--seed", "8", "--end", "2025-06", "-f", "json")
            assert seed8.exit_code == 0, seed8.output
            a, b = fingerprint(engine), fingerprint(other)
            # everything generated differs; the catalog (plans, add-ons) is the same price list
            assert [t for t in a if a[t] == b[t]] == ["plans", "addons"]
        finally:
            other.dispose()
    finally:
        drop_schema(pg_base_url, other_name)


def test_refuses_a_database_with_foreign_tenants_and_writes_nothing(cli, engine):
    add_foreign_tenant(engine)
    before_counts, before_rows = counts(engine), fingerprint(engine)
    result = cli("demo", *TINY)
    assert result.exit_code == 2
    assert stderr_line(result) == (
        "error: the database holds 1 tenant that pmfin demo did not create; refusing to add demo data beside "
        "them (nothing written) — pass --force to add it anyway"
    )
    assert result.stdout == ""
    assert counts(engine) == before_counts and fingerprint(engine) == before_rows


def test_force_adds_the_demo_beside_foreign_tenants_without_touching_them(cli, engine):
    foreign = add_foreign_tenant(engine)
    mine = f"x::text LIKE '%{foreign}%'"
    before = fingerprint(engine, mine)
    result = cli("demo", *TINY, "--force", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"]["tenants"] == 40
    assert fingerprint(engine, mine) == before  # the foreign tenant's rows, byte for byte
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 41


def test_rerun_replaces_the_earlier_demo(cli, engine):
    first = cli("demo", *TINY, "--seed", "1", "-f", "json")
    assert first.exit_code == 0 and json.loads(first.stdout)["history"]["replaced_previous_demo"] is False
    second = cli("demo", *TINY, "--seed", "2")
    assert second.exit_code == 0, second.output
    assert "replaced the earlier demo data (40 tenants cleared first)" in second.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 40
        assert conn.execute(text("SELECT DISTINCT seed FROM pmfin_demo_objects")).scalars().all() == [2]
        assert conn.execute(text("SELECT count(*) FROM pmfin_costs")).scalar_one() == 4 * 9
    # and the result is exactly what seed 2 gives on an empty database
    after_rerun = fingerprint(engine)
    assert cli("demo", "--reset").exit_code == 0
    assert cli("demo", *TINY, "--seed", "2").exit_code == 0
    assert fingerprint(engine) == after_rerun


def test_reset_removes_only_demo_rows(cli, engine):
    assert cli("demo", *TINY).exit_code == 0
    foreign = add_foreign_tenant(engine)
    with engine.begin() as conn:  # a real subscription on the demo's 'professional' plan keeps that plan
        conn.execute(text("INSERT INTO subscriptions (tenant_id, id, plan_id, unit_price_cents, currency, started_at) "
                          "VALUES (:t, gen_random_uuid(), 'professional', 9900, 'usd', '2025-01-01')"), {"t": foreign})
        conn.execute(text("INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source) "
                          "VALUES ('2023-01-01', 'personnel', 'fixed', 100, 'usd', 'ledger.csv')"))
    mine = f"x::text LIKE '%{foreign}%'"
    before = fingerprint(engine, mine)
    result = cli("demo", "--reset", "-f", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["foreign_tenants"] == 1 and doc["removed"]["tenants"] == 40 and doc["removed"]["plans"] == 4
    assert fingerprint(engine, mine) == before
    with engine.connect() as conn:
        def n(sql):
            return conn.execute(text(sql)).scalar_one()

        for table in migrate.CONTRACT_TABLES:
            if table in ("plans", "addons", "system_config"):
                continue
            column = "id" if table == "tenants" else "tenant_id"
            assert n(f"SELECT count(*) FROM {table} WHERE {column} <> '{foreign}'") == 0, table
        assert conn.execute(text("SELECT id FROM plans")).scalars().all() == ["professional"]
        assert n("SELECT count(*) FROM addons") == 0
        assert n("SELECT count(*) FROM system_config") == 0
        assert n("SELECT count(*) FROM pmfin_costs") == 1  # the imported one
        assert n("SELECT count(*) FROM pmfin_fx_rates") == 0
        # the kept plan stays recorded, so a later reset can still remove it
        assert conn.execute(text("SELECT kind, object_id FROM pmfin_demo_objects")).all() == [("plan", "professional")]


def test_reset_keeps_a_platform_account_somebody_changed(cli, engine):
    assert cli("demo", *TINY).exit_code == 0
    with engine.begin() as conn:
        conn.execute(text("UPDATE system_config SET value = 'acct_REALPLATFORM' WHERE key = 'stripe_account_id'"))
    assert cli("demo", "--reset").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM system_config")).scalars().all() == ["acct_REALPLATFORM"]


def test_demo_keeps_existing_catalog_costs_and_platform_account(cli, engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, name, tier, price_cents) VALUES ('professional', 'Pro', 'professional', 7900)"))
        conn.execute(text("INSERT INTO system_config (key, value) VALUES ('stripe_account_id', 'acct_REAL')"))
        conn.execute(text("INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source) "
                          "VALUES ('2025-02-01', 'personnel', 'fixed', 100, 'usd', 'ledger.csv')"))
    result = cli("demo", *TINY, "-f", "json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["written"]
    assert written["plans"] == 4 and written["system_config"] == 0 and written["costs"] == 4 * 9 - 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT price_cents FROM plans WHERE id = 'professional'")).scalar_one() == 7900
        assert conn.execute(text("SELECT value FROM system_config")).scalar_one() == "acct_REAL"
        assert conn.execute(text("SELECT source FROM pmfin_costs WHERE month = '2025-02-01' AND category = 'personnel'")
                            ).scalar_one() == "ledger.csv"
    assert cli("demo", "--reset").exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM plans")).scalars().all() == ["professional"]
        assert conn.execute(text("SELECT value FROM system_config")).scalar_one() == "acct_REAL"
        assert conn.execute(text("SELECT count(*) FROM pmfin_costs")).scalar_one() == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (("--tenants", "0"), "error: --tenants must be between 1 and 1,000,000, got 0"),
        (("--tenants", "-5"), "error: --tenants must be between 1 and 1,000,000, got -5"),
        (("--tenants", "1000001"), "error: --tenants must be between 1 and 1,000,000, got 1000001"),
        (("--months", "1"), "error: --months must be between 2 and 120, got 1"),
        (("--months", "121"), "error: --months must be between 2 and 120, got 121"),
        (("--end", "2025-13"), "error: --end must be YYYY-MM, got '2025-13'"),
        (("--end", "march"), "error: --end must be YYYY-MM, got 'march'"),
        (("--end", "2999-01"), "error: --end must not be after the current month"),
        (("--seed", "-1"), "error: --seed must be between 0 and 9223372036854775807, got -1"),
        (("--tenants", "many"), "error: Invalid value for '--tenants': Input should be a valid integer, "
                                "unable to parse string as an integer (see 'pmfin demo --help')"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_touches_nothing(bare_database_url, pmfin_home, args, message):
    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    result = run("demo", *args)
    assert result.exit_code == 2
    assert stderr_line(result).startswith(message)
    eng = create_engine(normalize(bare_database_url))
    try:
        with eng.connect() as conn:
            assert migrate.existing_tables(conn) == set()  # not even the schema was created
    finally:
        eng.dispose()


def test_default_end_is_the_current_month_and_the_summary_the_month_before(cli):
    before = Month.current()
    result = cli("demo", "--tenants", "30", "--months", "3", "-f", "json")
    after = Month.current()
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["history"]["to"], doc["summary"]["month"]) in {(str(m), str(m.prev())) for m in (before, after)}


def test_table_output_for_people(cli):
    result = cli("demo", *TINY)
    assert result.exit_code == 0, result.output
    assert "rows written" in result.stdout and "executive summary 2025-03" in result.stdout
    assert "MRR" in result.stdout and "net new" in result.stdout
    assert "demo history 2024-12 … 2025-03: 40 tenants, 4 months, seed 42" in result.stderr
    csv = cli("demo", *TINY, "-f", "csv")
    assert csv.exit_code == 0 and csv.stdout.startswith("# rows written\ntable,rows\nplans,")


def test_two_demos_at_once_do_not_interleave(database_url, engine):
    from pmfin.demo import DemoRequest, run_demo
    from pmfin.settings import Settings

    settings = Settings.load({"database_url": database_url}, environ={})
    errors: list[BaseException] = []

    def go(seed: int) -> None:
        eng = create_engine(normalize(database_url))
        try:
            run_demo(eng, DemoRequest(tenants=40, months=4, seed=seed, end=Month(2025, 3)), settings)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=go, args=(s,)) for s in (5, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:  # one complete demo, of whichever ran second
        seeds = conn.execute(text("SELECT DISTINCT seed FROM pmfin_demo_objects")).scalars().all()
        assert len(seeds) == 1
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar_one() == 40
        assert conn.execute(text("SELECT count(*) FROM pmfin_costs")).scalar_one() == 36


def test_refusal_writes_no_schema_either(bare_database_url, pmfin_home):
    """A database holding only the platform's `tenants` (with a real tenant): the refusal
    happens before pmfin creates any table."""
    import uuid



    eng = create_engine(normalize(bare_database_url))
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE tenants (id uuid PRIMARY KEY, name text, created timestamptz, deleted timestamptz)"))
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:i, 'real customer')"), {"i": uuid.uuid4()})
    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    r = run("demo", *TINY)
    assert r.exit_code == 2 and "1 tenant that pmfin demo did not create" in r.stderr
    with eng.connect() as conn:
        assert sorted(migrate.existing_tables(conn)) == ["tenants"]
    eng.dispose()


def test_reset_on_a_database_without_a_demo_touches_nothing(bare_database_url, pmfin_home):


    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    r = run("demo", "--reset", "--format", "json")
    assert r.exit_code == 0, r.output
    eng = create_engine(normalize(bare_database_url))
    with eng.connect() as conn:
        assert migrate.existing_tables(conn) == set()
    eng.dispose()


def test_demo_csv_summary_carries_its_currency(cli):
    r = cli("demo", *TINY, "--format", "csv")
    assert r.exit_code == 0, r.output
    summary = r.stdout.split("# executive summary", 1)[1].splitlines()
    assert summary[1].split(",")[-1] == "currency" and summary[2].split(",")[-1] == "usd"


def test_reset_and_rerun_clear_the_demo_rows_of_every_pmfin_table_with_a_tenant_id(cli, engine):
    """pmfin's own tenant-scoped tables are found in the catalog at reset time: tables added later
    (here three made up for the test, one referencing another, one with a text tenant_id) and
    pmfin_connect_accounts are cleared of the demo tenants' rows, and only of those."""
    assert cli("demo", *TINY).exit_code == 0
    foreign = add_foreign_tenant(engine)
    with engine.begin() as conn:
        # named so that alphabetical order would delete the referenced table first
        conn.execute(text("CREATE TABLE pmfin_a_cases (tenant_id uuid, id int, PRIMARY KEY (tenant_id, id))"))
        conn.execute(text("CREATE TABLE pmfin_b_attempts (tenant_id uuid, case_id int, n int, "
                          "FOREIGN KEY (tenant_id, case_id) REFERENCES pmfin_a_cases)"))
        conn.execute(text("CREATE TABLE pmfin_c_notes (tenant_id text, note text)"))
        conn.execute(text("CREATE TABLE other_tenant_table (tenant_id uuid)"))  # not pmfin's: untouched
        demo = conn.execute(text("SELECT object_id::uuid FROM pmfin_demo_objects WHERE kind = 'tenant' LIMIT 2")).scalars().all()
        for t in [*demo, foreign]:
            conn.execute(text("INSERT INTO pmfin_a_cases VALUES (:t, 1)"), {"t": t})
            conn.execute(text("INSERT INTO pmfin_b_attempts VALUES (:t, 1, 1)"), {"t": t})
            conn.execute(text("INSERT INTO pmfin_c_notes VALUES (:t, 'x')"), {"t": str(t)})
            conn.execute(text("INSERT INTO other_tenant_table VALUES (:t)"), {"t": t})
            conn.execute(text("INSERT INTO pmfin_connect_accounts (tenant_id, stripe_account_id, status, raw) "
                              "VALUES (:t, 'acct_' || md5(CAST(:t AS text)), 'pending', '{}')"), {"t": t})

    def rows(table):
        with engine.connect() as conn:
            return sorted(str(r) for r in conn.execute(text(f"SELECT tenant_id FROM {table}")).scalars())

    result = cli("demo", "--reset", "-f", "json")
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)["removed"]
    for table in ("pmfin_a_cases", "pmfin_b_attempts", "pmfin_c_notes", "pmfin_connect_accounts"):
        assert removed[table] == 2, table
        assert rows(table) == [str(foreign)], table
    assert len(rows("other_tenant_table")) == 3

    # a rerun clears the earlier demo's rows the same way
    assert cli("demo", *TINY, "--force").exit_code == 0
    with engine.begin() as conn:
        t = conn.execute(text("SELECT object_id::uuid FROM pmfin_demo_objects WHERE kind = 'tenant' LIMIT 1")).scalar_one()
        conn.execute(text("INSERT INTO pmfin_c_notes VALUES (:t, 'y')"), {"t": str(t)})
    rerun = cli("demo", *TINY, "--force")
    assert rerun.exit_code == 0, rerun.output
    assert rows("pmfin_c_notes") == [str(foreign)]


def test_the_demo_shows_its_progress_on_stderr(cli):
    """About 20 s with no sign of life: now each phase says so on stderr when it is done (on a
    terminal a live line shows the phase, the rows so far and the time instead)."""
    result = cli("demo", *TINY, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)  # stdout stays pure JSON
    lines = result.stderr.splitlines()
    phases = [line.split(":")[1].split(" (")[0].strip() for line in lines]
    assert phases[:3] == ["checking", "schema", "clearing previous demo data"] and phases[-1] == "summary"
    assert f"pmfin demo: tenants: {doc['written']['tenants']:,} rows (" in result.stderr
    assert f"pmfin demo: emails: {doc['written']['emails']:,} rows (" in result.stderr
    assert all(line.startswith("pmfin demo: ") and line.endswith(" s)") for line in lines)
