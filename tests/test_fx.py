"""`pmfin fx import|list`: whole-file validation, upsert, and the rates used by the MRR engine."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text


def _write(tmp_path, content: str):
    p = tmp_path / "rates.csv"
    p.write_text(content)
    return p


def _count(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM pmfin_fx_rates")).scalar_one()


def test_import_then_upsert_and_list(cli, engine, tmp_path):
    f = _write(tmp_path, "month,base,quote,rate\n2025-01,EUR,usd,1.0342\n2025-01,gbp,usd,1.2467\n\n2025-02,eur,usd,1.05\n")
    r = cli("fx", "import", str(f), "--format", "json")
    assert r.exit_code == 0, r.output
    assert {k: v for k, v in json.loads(r.stdout).items() if k != "file"} == {"rows": 3, "inserted": 3, "updated": 0}
    # Same month/pair again: the rate is replaced, nothing is added. Columns in another order.
    f = _write(tmp_path, "rate,quote,base,month\n1.0400,usd,eur,2025-01\n")
    r = cli("fx", "import", str(f), "--format", "json")
    assert {k: v for k, v in json.loads(r.stdout).items() if k != "file"} == {"rows": 1, "inserted": 0, "updated": 1}
    assert _count(engine) == 3
    rows = json.loads(cli("fx", "list", "--format", "json").stdout)
    assert [(x["month"], x["base"], x["quote"], x["rate"]) for x in rows] == [
        ("2025-02", "eur", "usd", 1.05), ("2025-01", "eur", "usd", 1.04), ("2025-01", "gbp", "usd", 1.2467)]
    rows = json.loads(cli("fx", "list", "--month", "2025-01", "--currency", "gbp", "--format", "json").stdout)
    assert [(x["base"], x["rate"]) for x in rows] == [("gbp", 1.2467)]


def test_imported_rates_convert_mrr(cli, engine, tmp_path):
    from metrics_fixtures import Ledger

    with Ledger(engine) as led:
        led.sub(led.tenant("e"), "2025-01", price=10_000, currency="eur")
    # €100 × 1.0342 = $103.42
    cli("fx", "import", str(_write(tmp_path, "month,base,quote,rate\n2025-01,eur,usd,1.0342\n")))
    r = cli("report", "mrr", "--month", "2025-01", "--format", "json")
    assert json.loads(r.stdout)["mrr"] == 10_342 and r.stderr == ""


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "line 1: empty file"),
        ("month,base,quote\n2025-01,eur,usd\n", "line 1: the header must be month,base,quote,rate"),
        ("month,base,quote,rate\n", "the file has a header but no rates"),
        ("month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-13,eur,usd,1.1\n", "line 3: month must be YYYY-MM, got '2025-13'"),
        ("month,base,quote,rate\n2025-01,euro,usd,1.1\n", "line 2: base must be a 3-letter currency code"),
        ("month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-01,eur,eur,1\n", "line 3: base and quote are both EUR"),
        ("month,base,quote,rate\n2025-01,eur,usd,abc\n", "line 2: rate must be a number"),
        ("month,base,quote,rate\n2025-01,eur,usd,-1\n", "line 2: rate must be a positive number"),
        ("month,base,quote,rate\n2025-01,eur,usd,0\n", "line 2: rate must be a positive number"),
        ("month,base,quote,rate\n2025-01,eur,usd,1.12345678901\n", "line 2: rate has more than 10 decimals"),
        ("month,base,quote,rate\n2025-01,eur,usd,1.1,x\n", "line 2: expected 4 fields"),
        ("month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-01,EUR,USD,1.2\n", "line 3: a second rate for 2025-01 EUR→USD (first on line 2)"),
    ],
)
def test_malformed_file_rejected_whole(cli, engine, tmp_path, content, message):
    r = cli("fx", "import", str(_write(tmp_path, content)))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert message in " ".join(r.stderr.split())
    assert _count(engine) == 0  # nothing imported, not even the good lines before the bad one


def test_missing_file(cli, tmp_path):
    r = cli("fx", "import", str(tmp_path / "nope.csv"))
    assert r.exit_code == 2 and "file not found" in r.stderr


def test_list_bad_month(cli):
    r = cli("fx", "list", "--month", "2025-1")
    assert r.exit_code == 2 and "--month must be YYYY-MM, got '2025-1'" in r.stderr
