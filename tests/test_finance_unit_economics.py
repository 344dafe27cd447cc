"""Gross margin, LTV, CAC and payback, break-even: hand-worked fixtures through the service and the CLI."""

from __future__ import annotations

import json
from decimal import Decimal

from finance_fixtures import cost, emails, payment
from metrics_fixtures import Ledger
from pmfin.metrics.finance import cac, gross_margin, ltv
from pmfin.months import Month
from pmfin.settings import Settings

SETTINGS = Settings.load({}, environ={}, env_file=None)
JUNE = Month(2025, 6)


def scenario(engine, *, burn_history: bool = False) -> None:
    """Monthly plans; MRR at the end of each month (customers):

    2024-06: A 10000 + G 10000 = 20000 (2)         G ends 2024-11-15
    Dec 2024 … Feb 2025: A 10000, B 10000, C 20000, F 5000 = 45000 (4)
    Mar: B churns (ends 03-15) → 35000 (3);  Apr: 35000 (3)
    May: F churns (ends 05-10) → 30000 (2);  Jun: D and E new → 50000 (4), ARPU 12500

    Logo churn Jan…Jun: churned 0,0,1,0,1,0 = 2 of customers at month starts 4,4,4,3,3,2 = 20 → 0.1
    June revenue: subscriptions 10000 + 20000 + 10000 + 10000 = 50000, services 30000 → 80000
    June costs: processing (recorded fees) 320 × 3 + 610 + 900 = 2470; email 20000 × 0.05 = 1000;
    infrastructure 6000, personnel 20000 (fixed); customer_success 2530, marketing 30000, sales 10000
    Cost of revenue = 2470 + 1000 + 6000 + 2530 = 12000 → gross margin (80000 − 12000) ÷ 80000 = 0.85
    """
    with Ledger(engine) as led:
        a, b, c, d, e, f, g = (led.tenant(n) for n in "ABCDEFG")
        led.sub(a, "2024-05-01", price=10000)
        led.sub(g, "2024-05-01", "2024-11-15", price=10000)
        led.sub(b, "2024-12-10", "2025-03-15", price=10000)
        led.sub(c, "2024-12-10", price=20000)
        led.sub(f, "2024-12-01", "2025-05-10", price=5000)
        led.sub(d, "2025-06-05", price=10000)
        led.sub(e, "2025-06-20", price=10000)
    for tenant_amount_fee in ((10000, 320), (20000, 610), (10000, 320), (10000, 320)):
        payment(engine, amount=tenant_amount_fee[0], day="2025-06-10", fee=tenant_amount_fee[1])
    payment(engine, amount=30000, day="2025-06-12", stream="services", fee=900)
    emails(engine, 20000, "2025-06-15")
    for category, amount in (("infrastructure", 6000), ("personnel", 20000), ("customer_success", 2530), ("marketing", 30000), ("sales", 10000)):
        cost(engine, "2025-06", category, amount)
    if burn_history:
        cost(engine, "2025-04", "personnel", 20000)
        cost(engine, "2025-05", "personnel", 20000)


def test_gross_margin_ltv_cac_hand_worked(engine):
    scenario(engine)
    with engine.connect() as conn:
        gm = gross_margin(conn, JUNE, "usd", SETTINGS)
        assert (gm.revenue, gm.cost_of_revenue, gm.gross_profit) == (80000, 12000, 68000)
        assert (gm.payment_processing, gm.email_delivery, gm.infrastructure, gm.customer_success) == (2470, 1000, 6000, 2530)
        assert gm.gross_margin == Decimal("0.85")

        result = ltv(conn, JUNE, "usd", SETTINGS, churn_window=6)
        assert (result.churned_customers, result.customer_months, result.avg_logo_churn) == (2, 20, Decimal("0.1"))
        # LTV = 12500 × 0.85 ÷ 0.1 = 106250
        assert (result.arpu, result.ltv, result.reason) == (12500, 106250, None)

        c = cac(conn, JUNE, "usd", SETTINGS)
        # CAC = (30000 + 10000) ÷ 2 new customers = 20000; payback = 20000 ÷ (12500 × 0.85) = 1.882… → 1.88
        assert (c.sales_marketing, c.new_customers, c.cac, c.gross_profit_per_customer) == (40000, 2, 20000, 10625)
        assert c.payback_months == Decimal("1.88")


def test_ltv_cli_and_zero_churn_is_undefined_not_infinite(cli, engine):
    scenario(engine)
    res = cli("report", "ltv", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["ltv"], doc["avg_logo_churn"], doc["gross_margin"]) == (106250, 0.1, 0.85)
    # June alone: nobody churned → undefined, with the reason; still exit 0
    res = cli("report", "ltv", "--month", "2025-06", "--churn-window", "1", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ltv"] is None
    assert doc["reason"] == "no customer churned during 2025-06…2025-06: with zero churn LTV is unbounded"
    res = cli("report", "ltv", "--month", "2025-06", "--churn-window", "1")
    assert res.exit_code == 0 and "unbounded" in res.stdout
    res = cli("report", "ltv", "--month", "2025-06", "--churn-window", "0")
    assert res.exit_code == 2


def test_ltv_cac_on_empty_database(cli):
    res = cli("report", "ltv", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["ltv"] is None and doc["reason"] == "no customers at the end of 2025-06: ARPU is undefined"
    res = cli("report", "cac", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["cac"], doc["payback_months"], doc["reason"]) == (None, None, "no new customers in 2025-06: CAC is undefined")


def test_cac_cli(cli, engine):
    scenario(engine)
    res = cli("report", "cac", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["cac"], doc["payback_months"], doc["new_customers"]) == (20000, 1.88, 2)
    res = cli("report", "cac", "--month", "2025-04", "--format", "json")  # no new customers in April
    assert json.loads(res.stdout)["cac"] is None
    res = cli("report", "cac", "--month", "2025-06")
    assert res.exit_code == 0 and "$200.00" in res.stdout and "1.88" in res.stdout
    res = cli("report", "cac", "--month", "June")
    assert res.exit_code == 2 and "--month must be YYYY-MM, got 'June'" in res.stderr


def test_breakeven_hand_worked(cli, engine):
    scenario(engine)
    # fixed = 6000 + 20000 = 26000; variable = 2530 + 30000 + 10000 + 2470 + 1000 = 46000
    # ARPU 12500 − variable per customer 46000 ÷ 4 = 11500 → margin 1000; ceil(26000 ÷ 1000) = 26; gap 26 − 4 = 22
    res = cli("report", "breakeven", "--month", "2025-06", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["fixed_costs"], doc["variable_costs"], doc["arpu"], doc["variable_cost_per_customer"]) == (26000, 46000, 12500, 11500)
    assert (doc["contribution_margin_per_customer"], doc["breakeven_customers"], doc["customers"], doc["gap"]) == (1000, 26, 4, 22)
    assert doc["fixed_costs_source"] == "pmfin_costs"
    # --fixed-costs 260.01 → 26001 ÷ 1000 = 26.001 → 27 (ceil, exact)
    res = cli("report", "breakeven", "--month", "2025-06", "--fixed-costs", "260.01", "--format", "json")
    doc = json.loads(res.stdout)
    assert (doc["fixed_costs"], doc["breakeven_customers"], doc["gap"], doc["fixed_costs_source"]) == (26001, 27, 23, "--fixed-costs")
    res = cli("report", "breakeven", "--month", "2025-06", "--fixed-costs", "0", "--format", "json")
    assert json.loads(res.stdout)["breakeven_customers"] == 0
    res = cli("report", "breakeven", "--month", "2025-06", "--fixed-costs", "lots")
    assert res.exit_code == 2 and "--fixed-costs must be an amount" in res.stderr


def test_breakeven_non_positive_margin_and_no_customers_exit_2(cli, engine):
    scenario(engine)
    # May: MRR 30000, 2 customers; marketing 40000 → variable 40000 > MRR → margin (30000 − 40000) ÷ 2 = −5000
    cost(engine, "2025-05", "marketing", 40000)
    res = cli("report", "breakeven", "--month", "2025-05")
    assert res.exit_code == 2
    message = " ".join(res.stderr.split())
    assert "contribution margin per customer is not positive in 2025-05" in message
    assert "ARPU $150.00 − variable cost per customer $200.00 = -$50.00" in message
    assert "Traceback" not in res.stderr
    res = cli("report", "breakeven", "--month", "2024-03")
    assert res.exit_code == 2 and "no customers at the end of 2024-03" in res.stderr


def _stderr(res) -> str:
    return " ".join(res.stderr.split())


def test_no_costs_imported_warns_in_cac_breakeven_ltv(cli, engine):
    # 2024-12: B, C and F are new (4 customers, MRR 45000), and no pmfin_costs row for the month
    scenario(engine)
    res = cli("report", "cac", "--month", "2024-12", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["cac"], doc["new_customers"]) == (0, 3)
    assert "warning: no costs imported for 2024-12 (pmfin costs import): CAC counts no sales and marketing cost" in _stderr(res)
    # the payback uses the gross margin, which has no imported cost of revenue either
    assert "no costs imported for 2024-12 (pmfin costs import): gross margin counts only payment processing and email delivery" in _stderr(res)
    assert "no costs imported" not in res.stdout  # warnings go to stderr only

    res = cli("report", "breakeven", "--month", "2024-12", "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["fixed_costs"] == 0
    assert "no costs imported for 2024-12 (pmfin costs import): fixed costs are 0 unless --fixed-costs is given" in _stderr(res)
    # with --fixed-costs the fixed costs are given, but the variable costs are still only the computed lines
    res = cli("report", "breakeven", "--month", "2024-12", "--fixed-costs", "100", "--format", "json")
    assert res.exit_code == 0, res.stderr
    err = _stderr(res)
    assert "fixed costs are 0" not in err
    assert "no costs imported for 2024-12 (pmfin costs import): variable costs are only payment processing and email delivery" in err

    res = cli("report", "ltv", "--month", "2024-12")
    assert res.exit_code == 0, res.stderr
    assert "no costs imported for 2024-12 (pmfin costs import): gross margin counts only payment processing and email delivery" in _stderr(res)


def test_costs_imported_no_costs_warning(cli, engine):
    scenario(engine)
    for args in (("cac",), ("breakeven",), ("breakeven", "--fixed-costs", "100"), ("ltv",)):
        res = cli("report", *args, "--month", "2025-06")
        assert res.exit_code == 0, res.stderr
        assert "no costs imported" not in res.stderr, args
    with engine.connect() as conn:
        assert gross_margin(conn, JUNE, "usd", SETTINGS).warnings == []
