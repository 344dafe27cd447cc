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
        ("", "rates.csv: the file is empty (expected the header month,base,quote,rate)"),
        ("month,base,quote\n2025-01,eur,usd\n", "line 1: the header must be month,base,quote,rate"),
        ("month,base,quote,rate\n", "rates.csv: no rates after the header"),
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
    path = _write(tmp_path, content)
    r = cli("fx", "import", str(path))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    line = " ".join(r.stderr.split())
    assert line.startswith(f"error: {path}") and message.replace("rates.csv", str(path)) in line
    assert _count(engine) == 0  # nothing imported, not even the good lines before the bad one


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_unreadable_files_are_one_line_in_the_import_style(cli, tmp_path):
    """FILE: reason, or FILE, line N: reason — never Python's own words."""
    assert one_line(cli("fx", "import", str(tmp_path / "nope.csv"))) == f"error: {tmp_path / 'nope.csv'}: no such file"
    assert one_line(cli("fx", "import", str(tmp_path))) == f"error: {tmp_path}: is a directory, expected a CSV file"
    latin = tmp_path / "latin.csv"
    latin.write_bytes("month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-02,eur,usd,1\xa01\n".encode("latin-1"))
    assert one_line(cli("fx", "import", str(latin))) == f"error: {latin}, line 3: not UTF-8 text"


def test_the_line_is_where_a_record_starts(cli, tmp_path):
    """A quoted field may span lines: the error names the record's first line."""
    f = _write(tmp_path, 'month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-02,"eu\nr",usd,1.1\n2025-03,eur,usd,x\n')
    assert one_line(cli("fx", "import", str(f))) == f"error: {f}, line 3: base must be a 3-letter currency code, got 'eu\\nr'"
    f = _write(tmp_path, 'month,base,quote,rate\n2025-01,eur,usd,1.1\n2025-02,"eur,usd,1.1\n2025-03,eur,usd,1.1\n')
    assert one_line(cli("fx", "import", str(f))) == f"error: {f}, line 3: a quoted field is not closed"


def test_list_bad_currency(cli):
    assert one_line(cli("fx", "list", "--currency", "dollars")) == (
        "error: --currency must be a 3-letter ISO currency code, got 'dollars'")


def test_list_bad_month(cli):
    r = cli("fx", "list", "--month", "2025-1")
    assert r.exit_code == 2 and "--month must be YYYY-MM, got '2025-1'" in r.stderr
