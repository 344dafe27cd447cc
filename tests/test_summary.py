"""``pmfin report summary`` / ``executive_summary``: the dashboard figures on the hand-worked scenario."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

from pmfin.metrics.summary import executive_summary, runway_from
from pmfin.months import Month
from pmfin.settings import Settings
from test_finance_unit_economics import scenario

SETTINGS = Settings.load({}, environ={}, env_file=None)


def test_executive_summary_hand_worked(engine):
    scenario(engine, burn_history=True)
    with engine.connect() as conn:
        s = executive_summary(conn, Month(2025, 6), "usd", SETTINGS, cash=100000)
    o = s.overview
    # MRR 50000 (May 30000 → +20000 ÷ 30000); ARR 600000 vs 12 × 20000 at the end of 2024-06 → +150%
    assert (o.mrr, o.arr, o.customers) == (50000, 600000, 4)
    assert o.mrr_mom_growth == Decimal(20000) / Decimal(30000)
    assert o.arr_yoy_growth == Decimal("1.5")
    # NRR 12 months: cohort at the end of 2024-06 = A 10000 + G 10000; at the end of 2025-06 A 10000 → 0.5
    assert o.nrr == Decimal("0.5")
    assert o.gross_margin == Decimal("0.85")
    # net burn: Apr 20000 − 0, May 20000 − 0, Jun 72000 − 80000 = −8000 → rate 32000 ÷ 3 = 10666.67 → 10667
    assert (s.burn.total_burn, s.burn.revenue, s.burn.net_burn, s.burn.burn_rate) == (72000, 80000, -8000, 10667)
    assert s.burn.burn_months == ["2025-04", "2025-05", "2025-06"]
    # runway = 100000 ÷ 10667 = 9.3747… → 9.37
    assert o.runway_months == Decimal("9.37")
    assert [(r.stream, r.net, r.share) for r in s.revenue_breakdown][:3] == [
        ("subscription", 50000, Decimal("0.625")), ("addon", 0, Decimal(0)), ("services", 30000, Decimal("0.375"))
    ]
    g = s.growth
    assert (g.new_customers, g.new_mrr, g.expansion, g.churned_revenue, g.net_new_mrr) == (2, 20000, 0, 0, 20000)
    assert {c.category: c.amount for c in s.cost_structure} == {
        "infrastructure": 6000, "personnel": 20000, "marketing": 30000, "sales": 10000,
        "customer_success": 2530, "payment_processing": 2470, "email_delivery": 1000,
    }
    assert sum(c.share for c in s.cost_structure) == 1
    assert (s.unit_economics.cac, s.unit_economics.payback_months) == (20000, Decimal("1.88"))
    assert s.warnings == []


def test_runway_from():
    assert runway_from(None, 100) == (None, "unknown: pass --cash (or set PMFIN_CASH)")
    assert runway_from(1000, 0)[0] is None and runway_from(1000, -5)[1].startswith("not burning cash")
    assert runway_from(1000, 300) == (Decimal("3.33"), "3.33 months at the current burn rate")
    assert runway_from(-100000, 300) == (None, "already out of cash: the cash balance is negative")


def test_summary_cli_json_table_and_cash_from_env(cli, engine):
    scenario(engine, burn_history=True)
    res = cli("report", "summary", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc) == {"month", "currency", "overview", "revenue_breakdown", "growth", "cost_structure", "burn", "unit_economics", "warnings"}
    assert doc["overview"]["runway"] == "unknown: pass --cash (or set PMFIN_CASH)" and doc["overview"]["runway_months"] is None
    res = cli("report", "summary", "--month", "2025-06", "--format", "json", env={"PMFIN_CASH": "1000"})
    assert json.loads(res.stdout)["overview"]["runway_months"] == 9.37
    res = cli("report", "summary", "--month", "2025-06", "--cash", "1,000.00")
    assert res.exit_code == 0, res.stderr
    out = " ".join(res.stdout.split())
    for fragment in ("$500.00", "↑66.7% MoM", "↑150.0% YoY", "85.0%", "9.37 months", "$720.00 this month", "$106.67 per month", "$200.00 per customer", "1.88 months"):
        assert fragment in out, fragment
    res = cli("report", "summary", "--month", "2025-06", "--cash", "plenty")
    assert res.exit_code == 2 and "--cash must be an amount" in res.stderr
    res = cli("report", "summary", "--month", "2025-00")
    assert res.exit_code == 2 and "--month must be YYYY-MM, got '2025-00'" in res.stderr


def test_summary_empty_database(cli):
    res = cli("report", "summary", "--month", "2025-06", "--cash", "100", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["overview"]["mrr"] == 0 and doc["overview"]["gross_margin"] is None and doc["overview"]["nrr"] is None
    assert doc["overview"]["runway"].startswith("not burning cash")
    assert doc["unit_economics"]["reason"] == "no new customers in 2025-06: CAC is undefined"
    res = cli("report", "summary", "--month", "2025-06")
    assert res.exit_code == 0 and "undefined" in res.stdout


def test_summary_missing_tables_exit_2(bare_database_url, pmfin_home):
    from conftest import make_cli

    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    res = run("report", "summary", "--month", "2025-06")
    assert res.exit_code == 2
    assert "missing table" in res.stderr and "Traceback" not in res.stderr


def _csv_sections(text: str) -> dict[str, list[dict[str, str]]]:
    sections = {}
    for block in text.strip().split("\n\n"):
        title, *lines = block.splitlines()
        assert title.startswith("# ")
        sections[title[2:]] = list(csv.DictReader(lines))
    return sections


def test_summary_csv_is_machine_data(cli, engine):
    scenario(engine, burn_history=True)
    res = cli("report", "summary", "--month", "2025-06", "--cash", "1000", "--format", "csv")
    assert res.exit_code == 0, res.stderr
    assert "$" not in res.stdout and "%" not in res.stdout
    sections = _csv_sections(res.stdout)
    assert list(sections) == ["overview 2025-06", "revenue_breakdown", "growth", "cost_structure", "burn", "unit_economics"]
    overview = {row["metric"]: row for row in sections["overview 2025-06"]}
    assert list(sections["overview 2025-06"][0]) == ["metric", "value", "currency", "note"]
    assert overview["mrr"]["value"] == "50000" and overview["mrr"]["currency"] == "usd"
    assert int(overview["arr"]["value"]) == 600000 and overview["arr"]["currency"] == "usd"
    assert Decimal(overview["gross_margin"]["value"]) == Decimal("0.85") and overview["gross_margin"]["currency"] == ""
    assert Decimal(overview["arr_yoy_growth"]["value"]) == Decimal("1.5")
    assert (overview["customers"]["value"], overview["cash"]["value"]) == ("4", "100000")
    assert overview["runway_months"]["value"] == "9.37"
    growth = {row["metric"]: row for row in sections["growth"]}
    assert (growth["new_mrr"]["value"], growth["new_mrr"]["currency"]) == ("20000", "usd")
    assert (growth["churned_customers"]["value"], growth["churned_revenue"]["value"]) == ("0", "0")
    revenue = {row["stream"]: row for row in sections["revenue_breakdown"]}
    assert (revenue["services"]["net"], revenue["services"]["currency"], revenue["services"]["share"]) == ("30000", "usd", "0.375")
    costs = {row["category"]: row for row in sections["cost_structure"]}
    assert (costs["personnel"]["amount"], costs["personnel"]["currency"], costs["personnel"]["kind"]) == ("20000", "usd", "fixed")
    assert sum(Decimal(row["share"]) for row in sections["cost_structure"]) == 1
    burn = {row["metric"]: row for row in sections["burn"]}
    assert (burn["burn_rate"]["value"], burn["burn_rate"]["currency"]) == ("10667", "usd")
    unit = {row["metric"]: row for row in sections["unit_economics"]}
    assert (unit["cac"]["value"], unit["cac"]["currency"], unit["payback_months"]["value"]) == ("20000", "usd", "1.88")


def test_summary_csv_undefined_values_are_empty_with_a_note(cli):
    res = cli("report", "summary", "--month", "2025-06", "--format", "csv")
    assert res.exit_code == 0, res.stderr
    sections = _csv_sections(res.stdout)
    overview = {row["metric"]: row for row in sections["overview 2025-06"]}
    assert overview["gross_margin"]["value"] == "" and overview["runway_months"]["value"] == ""
    assert overview["runway_months"]["note"] == "unknown: pass --cash (or set PMFIN_CASH)"
    unit = {row["metric"]: row for row in sections["unit_economics"]}
    assert unit["cac"]["value"] == "" and unit["cac"]["note"] == "no new customers in 2025-06: CAC is undefined"


def test_summary_negative_cash_refused(cli, engine):
    scenario(engine, burn_history=True)
    for args, env, name in ((("--cash", "-100000"), None, "--cash"), ((), {"PMFIN_CASH": "-1"}, "PMFIN_CASH")):
        res = cli("report", "summary", "--month", "2025-06", *args, env=env)
        assert res.exit_code == 2, res.stderr
        assert f"{name} must not be negative" in res.stderr and "Traceback" not in res.stderr


def test_summary_says_no_costs_imported_once(cli, engine):
    scenario(engine)  # no costs for 2025-05
    res = cli("report", "summary", "--month", "2025-05", "--format", "json")
    assert res.exit_code == 0, res.stderr
    warnings = json.loads(res.stdout)["warnings"]
    assert [w for w in warnings if "2025-05" in w and "no costs imported" in w] == [
        "no costs imported for 2025-05: costs are only the computed lines (pmfin costs import)"
    ]


def test_cash_from_an_env_file_and_month_default(cli, tmp_path):
    """PMFIN_CASH follows the settings rule (flags, environment, .env), and --month defaults to the
    last complete month as in every report."""
    env_file = tmp_path / "pmfin.env"
    env_file.write_text("PMFIN_CASH=-5\n")
    r = cli("--env-file", str(env_file), "report", "summary", "--format", "json")
    assert r.exit_code == 2 and "PMFIN_CASH must not be negative" in r.stderr  # read from the .env
    env_file.write_text("PMFIN_CASH=250000\n")
    r = cli("--env-file", str(env_file), "report", "summary", "--format", "json")
    assert r.exit_code == 0, r.output
    for command in ("ltv", "cac", "revenue", "costs"):
        assert cli("report", command, "--format", "json").exit_code == 0, command
