"""Reports on a database that holds the platform's tables but none of pmfin's own — a read-only
replica of production, say, where `pmfin db init` cannot run. Reports read the missing
``pmfin_fx_rates`` and ``pmfin_costs`` as empty and say what that leaves out."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine

from conftest import make_cli
from metrics_fixtures import Ledger
from pmfin.db import migrate
from pmfin.db.url import normalize


@pytest.fixture
def contract_only(bare_database_url, pmfin_home):
    eng = create_engine(normalize(bare_database_url))
    with eng.begin() as conn:
        conn.exec_driver_sql(migrate.app_schema_sql())  # the platform's tables only
    with Ledger(eng) as led:
        acme = led.tenant("acme")
        led.sub(acme, "2025-01-10", price=10_000)  # $100/month from 10 Jan
        globex = led.tenant("globex")
        led.sub(globex, "2025-02-01", price=5_000)  # $50/month from Feb
        led.addon(globex, "2025-02-01", price=2_500, quantity=2)  # + 2 × $25
        berlin = led.tenant("berlin")
        led.sub(berlin, "2025-01-01", price=9_000, currency="eur")  # €90/month: no FX rate here
        led.payment(acme, "2025-02-10", 10_000)
        led.emails(acme, "2025-02-11", 100)
    assert not {t for t in migrate.existing_tables(eng.connect()) if t.startswith("pmfin_")}
    eng.dispose()
    return make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})


def test_mrr_without_pmfin_tables(contract_only):
    r = contract_only("report", "mrr", "--month", "2025-02", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    # end of Feb: acme 10000 + globex 5000 + 2 × 2500 = 20000; berlin's €90 has no rate → left out
    # prev (end of Jan): acme 10000 → expansion 0, new 10000 (globex)
    assert (data["mrr"], data["customers"], data["new"], data["prev_mrr"]) == (20_000, 2, 10_000, 10_000)
    assert "left out €90.00" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("report", "movements", "--from", "2025-01", "--to", "2025-03"),
        ("report", "churn", "--month", "2025-02", "--tenants"),
        ("report", "retention", "--month", "2025-03", "--window", "1"),
        ("report", "cohorts", "--from", "2025-01", "--to", "2025-03"),
        ("report", "revenue", "--month", "2025-02"),
        ("report", "costs", "--month", "2025-02"),
        ("report", "ltv", "--month", "2025-02"),
        ("report", "cac", "--month", "2025-02"),
        ("report", "cashflow", "--from", "2025-03", "--months", "3", "--starting-cash", "1000"),
        ("report", "summary", "--month", "2025-02"),
    ],
)
def test_every_report_runs_without_pmfin_tables(contract_only, args):
    r = contract_only(*args, "--format", "json")
    assert r.exit_code == 0, r.output
    json.loads(r.stdout)
    assert "Traceback" not in r.stderr


def test_costs_say_that_none_are_counted(contract_only):
    r = contract_only("report", "costs", "--month", "2025-02", "--format", "json")
    assert r.exit_code == 0, r.output
    assert "pmfin's own tables are missing here (run `pmfin db init`): no imported costs are counted" in r.stderr


def test_writes_still_need_db_init(contract_only, tmp_path):
    csv = tmp_path / "costs.csv"
    csv.write_text("month,category,kind,amount,currency\n2025-02,marketing,variable,100,usd\n")
    r = contract_only("costs", "import", str(csv))
    assert r.exit_code == 2 and "pmfin db init" in r.stderr and "Traceback" not in r.stderr
