"""The cash-flow projection: the pure engine with hand-worked numbers, assumptions from history, the CLI."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from pmfin.errors import UsageError
from pmfin.metrics.cashflow import Assumptions, assumptions_from_history, parse_rate, project
from pmfin.months import Month
from pmfin.settings import Settings
from test_finance_unit_economics import scenario

SETTINGS = Settings.load({}, environ={}, env_file=None)


def assumptions(**kw) -> Assumptions:
    base = dict(
        first=Month(2026, 1), months=4, currency="usd", starting_cash=500000, mrr=100000,
        growth=Decimal("0.10"), churn=Decimal("0.05"), services=10000, other=0,
        operations=200000, marketing=50000, capex=0, cost_growth=Decimal(0),
    )
    base.update(kw)
    return Assumptions(**base)


def test_projection_hand_worked_runway():
    # MRR factor 1 + 0.10 − 0.05 = 1.05; outflows 200000 + 50000 = 250000 every month
    # t1: MRR 105000, in 115000, net −135000, end 500000 − 135000 = 365000
    # t2: MRR 110250, in 120250, net −129750, end 235250
    # t3: MRR 115762.5 → 115762 (half-even), in 125762, net −124238, end 111012
    # t4: MRR 121550.625 → 121551, in 131551, net −118449, end −7437 → cash runs out in month 4
    p = project(assumptions())
    assert [(m.month, m.subscriptions, m.inflows, m.outflows, m.net, m.ending_cash) for m in p.months] == [
        ("2026-01", 105000, 115000, 250000, -135000, 365000),
        ("2026-02", 110250, 120250, 250000, -129750, 235250),
        ("2026-03", 115762, 125762, 250000, -124238, 111012),
        ("2026-04", 121551, 131551, 250000, -118449, -7437),
    ]
    assert [m.starting_cash for m in p.months] == [500000, 365000, 235250, 111012]
    assert (p.runway_months, p.cash_out_month) == (3, "2026-04")
    assert p.runway == "3 month(s): cash runs out in 2026-04"


def test_projection_cost_growth_capex_and_no_runout():
    # operations 100000 × 1.1ᵗ = 110000, 121000, 133100; marketing 0; capex 5000 flat
    p = project(assumptions(months=3, operations=100000, marketing=0, capex=5000, cost_growth=Decimal("0.1"),
                            mrr=0, services=0, starting_cash=10_000_000))
    assert [(m.operations, m.capex, m.outflows) for m in p.months] == [(110000, 5000, 115000), (121000, 5000, 126000), (133100, 5000, 138100)]
    assert p.months[-1].ending_cash == 10_000_000 - 115000 - 126000 - 138100
    assert p.runway_months is None and p.runway.startswith("not within the horizon")


def test_projection_negative_start_and_full_churn():
    # already below zero after month 1: runway 0; churn 100% and growth 0 → MRR 0
    p = project(assumptions(months=2, starting_cash=0, growth=Decimal(0), churn=Decimal(1)))
    assert [m.subscriptions for m in p.months] == [0, 0]
    assert (p.runway_months, p.cash_out_month) == (0, "2026-01")


def test_parse_rate():
    assert parse_rate("0.05", "--growth") == Decimal("0.05")
    assert parse_rate("5%", "--growth") == Decimal("0.05")
    assert parse_rate(" 2.5 % ", "--churn") == Decimal("0.025")
    for bad, flag, kw, message in (
        ("abc", "--growth", {}, "--growth must be a rate like 0.05 or 5%, got 'abc'"),
        ("nan", "--growth", {}, "--growth must be a finite rate"),
        ("150%", "--churn", {"maximum": Decimal(1)}, "--churn must be at most 100%, got '150%'"),
        ("-1%", "--churn", {"minimum": Decimal(0)}, "--churn must be at least 0%, got '-1%'"),
    ):
        with pytest.raises(UsageError) as err:
            parse_rate(bad, flag, **kw)
        assert message in str(err.value)


def test_assumptions_from_history(engine):
    scenario(engine)
    with engine.connect() as conn:
        a, warnings = assumptions_from_history(conn, Month(2025, 7), 12, "usd", SETTINGS, starting_cash=0)
    # MoM net growth Jan…Jun: 0, 0, −10000/45000, 0, −5000/35000, +20000/30000 → mean 19/378
    # churn pooled 2/20 = 0.1 → growth = 19/378 + 0.1
    assert abs(a.growth - (Decimal(19) / 378 + Decimal("0.1"))) < Decimal("1e-20")
    assert a.churn == Decimal("0.1") and a.mrr == 50000
    # services: 30000 in June only → 30000 ÷ 6 = 5000; no other revenue
    assert (a.services, a.other) == (5000, 0)
    # June costs 72000, of which marketing + sales 40000 → operations 32000
    assert (a.operations, a.marketing, a.capex, a.cost_growth) == (32000, 40000, 0, 0)
    assert a.sources["churn"] == "history 2025-01…2025-06: pooled logo churn"
    assert warnings == []


def test_cashflow_cli(cli, engine):
    scenario(engine)
    # overridden: growth 10%, churn 5% → MRR 50000 × 1.05ᵗ = 52500, 55125, 57881.25 → 57881
    # services 5000 from history; outflows 32000 + 40000 = 72000 (cost growth 0)
    # start 1000.00 = 100000: end 100000 − 14500 = 85500 → 85500 − 11875 = 73625 → 73625 − 9119 = 64506
    args = ("report", "cashflow", "--from", "2025-07", "--months", "3", "--growth", "10%", "--churn", "0.05", "--cost-growth", "0")
    res = cli(*args, "--starting-cash", "1000", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [(m["month"], m["subscriptions"], m["net"], m["ending_cash"]) for m in doc["months"]] == [
        ("2025-07", 52500, -14500, 85500), ("2025-08", 55125, -11875, 73625), ("2025-09", 57881, -9119, 64506),
    ]
    assert doc["runway_months"] is None
    assert doc["assumptions"]["sources"]["growth"] == "flag" and doc["assumptions"]["growth"] == 0.1
    # 200.00: 20000 − 14500 = 5500, then 5500 − 11875 < 0 → runway 1 month, out in 2025-08
    res = cli(*args, "--starting-cash", "200")
    assert res.exit_code == 0, res.stderr
    assert "1 month(s): cash runs out in 2025-08" in " ".join(res.stdout.split())
    assert "Assumptions" in res.stdout and "pooled logo churn" not in res.stdout  # churn came from the flag
    res = cli(*args, "--starting-cash", "200", "--format", "csv")
    assert res.stdout.splitlines()[:2] == [
        "month,currency,starting_cash,subscriptions,services,other,inflows,operations,marketing,capex,outflows,net,ending_cash",
        "2025-07,usd,20000,52500,5000,0,57500,32000,40000,0,72000,-14500,5500",
    ]


def test_cashflow_bad_input_exit_2(cli):
    base = ("report", "cashflow", "--from", "2025-07", "--starting-cash", "1000")
    for extra, message in (
        (("--growth", "fast"), "--growth must be a rate like 0.05 or 5%, got 'fast'"),
        (("--churn", "150%"), "--churn must be at most 100%"),
        (("--cost-growth", "-200%"), "--cost-growth must be at least -100%"),
        (("--months", "0"), "--months must be between 1 and 120, got 0"),
    ):
        res = cli(*base, *extra)
        assert res.exit_code == 2, extra
        assert message in res.stderr, (message, res.stderr)
    res = cli("report", "cashflow", "--from", "2025-7", "--starting-cash", "1000")
    assert res.exit_code == 2 and "--from must be YYYY-MM, got '2025-7'" in res.stderr
    res = cli("report", "cashflow", "--from", "2025-07", "--starting-cash", "a lot")
    assert res.exit_code == 2 and "--starting-cash must be an amount" in res.stderr


def test_cashflow_empty_database(cli):
    res = cli("report", "cashflow", "--from", "2025-07", "--months", "2", "--starting-cash", "100", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [m["ending_cash"] for m in doc["months"]] == [10000, 10000]
    assert "no costs imported for 2025-01…2025-06" in " ".join(res.stderr.split())


def test_cashflow_rates_are_bounded_exit_2_one_line(cli):
    base = ("report", "cashflow", "--from", "2025-07", "--starting-cash", "1000")
    for flag, value, message in (
        ("--growth", "1e999999", "--growth must be at most 1000%, got '1e999999'"),
        ("--growth", "1e999999999%", "--growth must be at most 1000%"),
        ("--growth", "10.01", "--growth must be at most 1000%"),
        ("--growth", "-1e999999", "--growth must be at least -100%"),
        ("--cost-growth", "1e999999", "--cost-growth must be at most 1000%, got '1e999999'"),
        ("--cost-growth", "1001%", "--cost-growth must be at most 1000%"),
        ("--churn", "1e999999", "--churn must be at most 100%"),
        ("--churn", "-1e999999%", "--churn must be at least 0%"),
    ):
        res = cli(*base, flag, value)
        assert res.exit_code == 2, (flag, value, res.stderr)
        assert message in res.stderr, (message, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    # the bounds themselves are accepted
    res = cli(*base, "--months", "120", "--growth", "1000%", "--cost-growth", "10", "--format", "json")
    assert res.exit_code == 0, res.stderr
    res = cli(*base, "--growth", "-100%", "--cost-growth", "-1", "--format", "json")
    assert res.exit_code == 0, res.stderr


def test_parse_rate_huge_values_never_overflow():
    with pytest.raises(UsageError, match="at most 1000%"):
        parse_rate("1e999999999999%", "--growth", maximum=Decimal(10))
    with pytest.raises(UsageError, match="at least -100%"):
        parse_rate("-1e999999999999%", "--growth", minimum=Decimal(-1))
    assert parse_rate("1000%", "--growth", maximum=Decimal(10)) == Decimal(10)


def test_cashflow_negative_starting_cash_refused(cli):
    res = cli("report", "cashflow", "--from", "2025-07", "--starting-cash", "-5")
    assert res.exit_code == 2
    assert "--starting-cash must not be negative, got '-5'" in res.stderr and "Traceback" not in res.stderr
    res = cli("report", "cashflow", "--from", "2025-07", "--starting-cash", "0", "--format", "json")
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize(
    "args, line",
    [
        (("--starting-cash", "€2500000"), "error: --starting-cash is in EUR ('€2500000'), not in USD: give the amount in USD"),
        (("--starting-cash", "2500000 GBP"), "error: --starting-cash is in GBP ('2500000 GBP'), not in USD: give the amount in USD"),
        (("--starting-cash", "$2500000", "--currency", "eur"),
         "error: --starting-cash is in USD ('$2500000'), not in EUR: give the amount in EUR"),
    ],
)
def test_an_amount_in_another_currency_is_refused(cli, args, line):
    res = cli("report", "cashflow", "--from", "2025-03", *args)
    assert res.exit_code == 2, res.output
    assert res.stderr.strip() == line


def test_an_amount_in_the_reporting_currency_may_carry_its_symbol_or_code(cli):
    for cash in ("$1000", "1000 USD", "usd1000", "1,000.00"):
        res = cli("report", "cashflow", "--from", "2025-03", "--months", "1", "--starting-cash", cash, "--format", "json")
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["months"][0]["starting_cash"] == 100_000


def test_mrr_growth_and_cost_growth_average_the_same_changes(cli, engine):
    """Both average the 6 month-over-month changes of the 6 months before --from, each month against
    the month before it (MRR growth averaged 6 changes, cost growth 5 inside the same window).

    MRR: 10000 at the end of Dec 2024, 12000 from January on: changes Jan +20 %, Feb…Jun 0 → 0.2 ÷ 6.
    Costs (personnel; no payments, no emails): Dec 10000, Jan…Jun 12000: the same changes → 0.2 ÷ 6.
    """
    from finance_fixtures import cost
    from metrics_fixtures import Ledger

    with Ledger(engine) as led:
        a = led.tenant("A")
        led.sub(a, "2024-11-01", "2025-01-01", price=10000)
        led.sub(a, "2025-01-01", price=12000)
    cost(engine, "2024-12", "personnel", 10000)
    for month in ("2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"):
        cost(engine, month, "personnel", 12000)
    res = cli("report", "cashflow", "--from", "2025-07", "--starting-cash", "1000", "--months", "1", "--format", "json")
    assert res.exit_code == 0, res.output
    a = json.loads(res.stdout)["assumptions"]
    assert abs(Decimal(str(a["growth"])) - Decimal("0.2") / 6) < Decimal("1e-12")  # churn is 0
    assert abs(Decimal(str(a["cost_growth"])) - Decimal("0.2") / 6) < Decimal("1e-12")
    assert "(each month against the one before)" in a["sources"]["cost_growth"]
