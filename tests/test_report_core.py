"""CLI tests for `pmfin report mrr|movements|churn|retention|cohorts` (the story ledger of test_metrics_mrr)."""

from __future__ import annotations

import json

import pytest
from test_metrics_mrr import build_story


@pytest.fixture
def story_cli(engine, cli):
    build_story(engine)
    return cli


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_report_mrr_json(story_cli):
    data = _json(story_cli("report", "mrr", "--month", "2025-04", "--format", "json"))
    # Apr: 76169 − boundary 4000 + comeback 3000 = 75169; ARPU 75169/10 = 7516.9 → 7517
    assert {k: data[k] for k in ("month", "currency", "mrr", "arr", "customers", "arpu", "new", "expansion",
                                 "contraction", "churn", "reactivation", "net_new")} == {
        "month": "2025-04", "currency": "usd", "mrr": 75169, "arr": 902028, "customers": 10, "arpu": 7517,
        "new": 0, "expansion": 0, "contraction": 0, "churn": 4000, "reactivation": 3000, "net_new": -1000,
    }
    assert data["mom_growth"] == pytest.approx(-1000 / 76169)


def test_report_mrr_table_and_csv(story_cli):
    r = story_cli("report", "mrr", "--month", "2025-03")
    assert r.exit_code == 0, r.output
    assert "$761.69" in r.stdout and "$9,140.28" in r.stdout  # MRR and ARR (76169 × 12)
    r = story_cli("report", "mrr", "--month", "2025-03", "--format", "csv")
    header, row = r.stdout.strip().splitlines()
    assert header.startswith("month,mrr,arr,customers,arpu,new,reactivation,expansion,contraction,churn,net_new")
    assert row.startswith("2025-03,76169,914028,10,7617,6000,0,19000,0,0,25000,")


def test_report_mrr_first_month_has_no_growth(story_cli):
    data = _json(story_cli("report", "mrr", "--month", "2025-01", "--format", "json"))
    assert (data["mrr"], data["new"], data["mom_growth"]) == (42169, 42169, None)


def test_report_movements(story_cli, tmp_path):
    data = _json(story_cli("report", "movements", "--from", "2025-01", "--to", "2025-06", "--format", "json"))
    assert [d["mrr"] for d in data] == [42169, 51169, 76169, 75169, 65169, 65169]
    assert [d["net_new"] for d in data] == [42169, 9000, 25000, -1000, -10000, 0]
    png = tmp_path / "mrr.png"
    r = story_cli("report", "movements", "--from", "2025-01", "--to", "2025-06", "--png", str(png))
    assert r.exit_code == 0, r.output
    assert "Movements" in r.stdout and "2025-06" in r.stdout  # the terminal chart follows the table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in r.stderr
    # No chart in JSON/CSV: stdout stays parseable.
    r = story_cli("report", "movements", "--from", "2025-01", "--to", "2025-02", "--format", "csv")
    assert r.stdout.count("\n") == 3 and "Movements" not in r.stdout


def test_report_movements_png_unwritable(story_cli, tmp_path):
    r = story_cli("report", "movements", "--from", "2025-01", "--to", "2025-02", "--png", str(tmp_path / "no" / "x.png"))
    _one_line_error(r, 2, "cannot write")


def test_report_churn_with_tenants(story_cli):
    data = _json(story_cli("report", "churn", "--month", "2025-05", "--tenants", "--format", "json"))
    # May: planchange 25000 → 15000 (contraction 10000) of 75169 at the end of Apr.
    assert data["churn"]["contraction"] == 10000 and data["churn"]["churned_customers"] == 0
    assert data["churn"]["gross_mrr_churn_rate"] == pytest.approx(10000 / 75169)
    assert [(t["name"], t["movement"], t["prev"], t["cur"]) for t in data["tenants"]] == [
        ("planchange", "contraction", 25000, 15000)]
    data = _json(story_cli("report", "churn", "--month", "2025-04", "--tenants", "--format", "json"))
    # Apr: boundary churned; comeback's reactivation is not listed.
    assert [(t["name"], t["movement"], t["amount"]) for t in data["tenants"]] == [("boundary", "churn", 4000)]
    assert data["churn"]["logo_churn_rate"] == pytest.approx(1 / 10)
    r = story_cli("report", "churn", "--month", "2025-04", "--tenants")
    assert r.exit_code == 0 and "boundary" in r.stdout and "Churned and contracted tenants" in r.stdout
    assert data["tenants"][0]["currency"] == "usd"
    csv_out = story_cli("report", "churn", "--month", "2025-04", "--tenants", "--format", "csv").stdout
    tenants = csv_out.split("# Churned and contracted tenants\n", 1)[1].splitlines()
    assert tenants[0] == "tenant_id,name,prev,cur,movement,amount,currency"
    assert tenants[1].endswith(",boundary,4000,0,churn,4000,usd")


def test_report_retention(story_cli):
    data = _json(story_cli("report", "retention", "--month", "2025-06", "--window", "4", "--format", "json"))
    assert (data["start_month"], data["cohort_size"], data["start_mrr"], data["end_mrr"], data["retained_mrr"]) == (
        "2025-02", 9, 51169, 56169, 47169)
    assert data["nrr"] == pytest.approx(56169 / 51169) and data["grr"] == pytest.approx(47169 / 51169)


def test_report_cohorts(story_cli):
    data = _json(story_cli("report", "cohorts", "--from", "2025-01", "--to", "2025-03", "--format", "json"))
    assert [(c["cohort"], c["size"], c["starting_mrr"]) for c in data] == [
        ("2025-01", 8, 42169), ("2025-02", 2, 12000), ("2025-03", 1, 6000)]
    assert data[0]["retention"] == pytest.approx([1, 7 / 8, 7 / 8])
    r = story_cli("report", "cohorts", "--from", "2025-01", "--to", "2025-02", "--by", "revenue", "--format", "csv")
    assert r.stdout.splitlines() == [
        "cohort,size,starting_mrr,m0,m1,currency",
        f"2025-01,8,42169,1,{39169 / 42169},usd",
        "2025-02,2,12000,1,,usd",
    ]


def test_currency_flag_and_fx_warning(engine, cli):
    from metrics_fixtures import Ledger

    with Ledger(engine) as led:
        led.sub(led.tenant("u"), "2025-01", price=5_000)
        led.sub(led.tenant("e"), "2025-01", price=10_000, currency="eur")
    r = cli("report", "mrr", "--month", "2025-01", "--format", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["mrr"] == 5_000
    assert "no FX rate EUR→USD for 2025-01: left out €100.00 of MRR" in " ".join(r.stderr.split())
    r = cli("report", "mrr", "--month", "2025-01", "--currency", "EUR", "--format", "json")
    assert json.loads(r.stdout)["mrr"] == 10_000 and json.loads(r.stdout)["currency"] == "eur"
    r = cli("report", "mrr", "--month", "2025-01", "--format", "json", env={"PMFIN_CURRENCY": "eur"})
    assert json.loads(r.stdout)["currency"] == "eur"
    # A year without EUR rates: the first three months are named, the other nine summed up.
    r = cli("report", "movements", "--from", "2025-01", "--to", "2025-12", "--format", "json")
    lines = [" ".join(line.split()) for line in r.stderr.strip().split("warning: ") if line.strip()]
    assert [line[:36] for line in lines[:3]] == [f"no FX rate EUR→USD for 2025-0{m}: left" for m in (1, 2, 3)]
    assert lines[3].startswith("no FX rate EUR→USD for 9 more month(s), 2025-04 … 2025-12: their amounts are left out")
    assert len(lines) == 4


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("report", "mrr", "--month", "2025-13"), "--month must be YYYY-MM, got '2025-13'"),
        (("report", "mrr", "--month", "March"), "--month must be YYYY-MM, got 'March'"),
        (("report", "movements", "--from", "2025-06", "--to", "2025-01"), "--from (2025-06) is after --to (2025-01)"),
        (("report", "movements", "--from", "2025-6", "--to", "2025-07"), "--from must be YYYY-MM"),
        (("report", "cohorts", "--from", "2025-01", "--to", "2025-03", "--by", "seats"), "--by must be one of logos, revenue"),
        (("report", "cohorts", "--from", "2025-04", "--to", "2025-03"), "is after --to"),
        (("report", "retention", "--month", "2025-03", "--window", "0"), "--window must be a whole number of months from 1 to 120, got 0"),
        (("report", "retention", "--month", "2025-03", "--window", "100000"), "--window must be a whole number of months from 1 to 120"),
        (("report", "mrr", "--month", "9999-12"), "--month must be between 1900-01 and 2999-12, got '9999-12'"),
        (("report", "movements", "--from", "0001-01", "--to", "2025-01"), "--from must be between 1900-01 and 2999-12"),
        (("report", "retention", "--month", "2025-03", "--window", "twelve"), "Invalid value for '--window'"),
        (("report", "churn", "--month", "2025-3"), "--month must be YYYY-MM"),
        (("report", "mrr", "--currency", "dollars", "--month", "2025-01"), "--currency must be a 3-letter"),
    ],
)
def test_bad_input_exit_2(cli, args, fragment):
    _one_line_error(cli(*args), 2, fragment)


def test_missing_contract_table_exit_2(bare_database_url, pmfin_home):
    from conftest import make_cli

    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    for args in (("report", "mrr", "--month", "2025-01"), ("report", "cohorts", "--from", "2025-01", "--to", "2025-02")):
        _one_line_error(run(*args), 2, "missing table")
    # Only pmfin's own table is needed here: the message says which init helps.
    _one_line_error(run("fx", "list"), 2, "pmfin's own table is missing (pmfin_fx_rates) — run `pmfin db init`")


def test_help_explains_definitions(cli):
    for name, phrase in (("mrr", "half to even"), ("churn", "Logo churn rate"), ("retention", "min(end, start)"),
                         ("cohorts", "first month at whose end"), ("movements", "reactivation")):
        r = cli("report", name, "--help")
        assert r.exit_code == 0
        assert phrase in " ".join(r.stdout.replace("│", " ").split()), name
