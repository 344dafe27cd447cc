"""MRR, movements, churn, NRR/GRR and cohorts against a hand-worked ledger (DESIGN.md §3)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from metrics_fixtures import Ledger, tenant_id

from pmfin.errors import DatabaseError, UsageError
from pmfin.metrics.mrr import churn_metrics, month_metrics, month_series, tenant_movements
from pmfin.metrics.retention import cohort_matrix, nrr_grr
from pmfin.months import Month

M = Month.parse


def build_story(engine) -> None:
    """The story ledger, all USD. MRR at each month end (cents):

    tenant       rows                                                    Jan    Feb    Mar    Apr    May    Jun
    monthly      $100/mo from 10 Jan                                    10000  10000  10000  10000  10000  10000
    trial        $50/mo from 5 Jan, trial ends 1 Feb 00:00 (= Jan.end:
                 still in trial at Jan's last instant)                      0   5000   5000   5000   5000   5000
    annual       $1,200/yr from 1 Jan: 120000/12                         10000  10000  10000  10000  10000  10000
    halfeven     two $10/yr rows: (1000+1000)/12 = 166.67 → 167
                 (per row it would be 83+83 = 166)                        167    167    167    167    167    167
    tie          $0.30/yr: 30/12 = 2.5 → 2 (half-even, not 3)               2      2      2      2      2      2
    addon        $50/mo from Jan; add-on 2 × $20/mo from 15 Mar          5000   5000   9000   9000   9000   9000
    planchange   $100/mo 1 Jan–10 Mar (plan_change), $250/mo 10 Mar–20 May,
                 $150/mo from 20 May                                     10000  10000  25000  25000  15000  15000
    boundary     $40/mo 1 Jan – 1 Apr 00:00 (counts for Mar, not Apr)    4000   4000   4000      0      0      0
    comeback     $30/mo 1 Jan – 15 Feb, again from 3 Apr                 3000      0      0   3000   3000   3000
    pastdue      $70/mo from 1 Feb, status past_due                         0   7000   7000   7000   7000   7000
    seats        3 × $20/mo from 1 Mar                                       0      0   6000   6000   6000   6000
    total                                                                42169  51169  76169  75169  65169  65169
    customers                                                                8      9     10     10     10     10
    """
    with Ledger(engine) as led:
        t = {n: led.tenant(n) for n in ("monthly", "trial", "annual", "halfeven", "tie", "addon", "planchange",
                                         "boundary", "comeback", "pastdue", "seats")}
        led.sub(t["monthly"], "2025-01-10", price=10_000)
        led.sub(t["trial"], "2025-01-05", price=5_000, trial_ends="2025-02-01T00:00:00", status="active")
        led.sub(t["annual"], "2025-01-01", price=120_000, cycle="year")
        led.sub(t["halfeven"], "2025-01-01", price=1_000, cycle="year")
        led.sub(t["halfeven"], "2025-01-01", price=1_000, cycle="year", plan_id="other_annual")
        led.sub(t["tie"], "2025-01-01", price=30, cycle="year")
        led.sub(t["addon"], "2025-01-01", price=5_000)
        led.addon(t["addon"], "2025-03-15", price=2_000, quantity=2)
        led.sub(t["planchange"], "2025-01-01", "2025-03-10T09:30", price=10_000, end_reason="plan_change")
        led.sub(t["planchange"], "2025-03-10T09:30", "2025-05-20", price=25_000, end_reason="plan_change")
        led.sub(t["planchange"], "2025-05-20", price=15_000)
        led.sub(t["boundary"], "2025-01-01", "2025-04-01T00:00:00", price=4_000, end_reason="canceled")
        led.sub(t["comeback"], "2025-01-01", "2025-02-15", price=3_000, end_reason="canceled")
        led.sub(t["comeback"], "2025-04-03", price=3_000)
        led.sub(t["pastdue"], "2025-02-01", price=7_000, status="past_due")
        led.sub(t["seats"], "2025-03-01", price=2_000, quantity=3)


@pytest.fixture
def story(engine):
    build_story(engine)
    return engine


def test_mrr_per_month(story):
    series = month_series(story, M("2024-12"), M("2025-06"), "usd")
    assert [str(m.month) for m in series] == ["2024-12", "2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]
    assert [m.mrr for m in series] == [0, 42169, 51169, 76169, 75169, 65169, 65169]
    assert [m.customers for m in series] == [0, 8, 9, 10, 10, 10, 10]
    assert [m.arr for m in series] == [12 * m.mrr for m in series]


def test_movements_per_month(story):
    s = {str(m.month): m for m in month_series(story, M("2025-01"), M("2025-06"), "usd")}
    mv = lambda m: (m.new, m.reactivation, m.expansion, m.contraction, m.churn, m.net_new)  # noqa: E731
    # Jan: everything is new: 10000+10000+167+2+5000+10000+4000+3000 = 42169
    assert mv(s["2025-01"]) == (42169, 0, 0, 0, 0, 42169)
    # Feb: trial converts (5000) and pastdue starts (7000): new 12000; comeback churns 3000 → net 9000
    assert mv(s["2025-02"]) == (12000, 0, 0, 0, 3000, 9000)
    assert (s["2025-02"].new_customers, s["2025-02"].churned_customers) == (2, 1)
    # Mar: seats new 6000; expansion addon +4000 and planchange +15000 = 19000 → net 25000
    assert mv(s["2025-03"]) == (6000, 0, 19000, 0, 0, 25000)
    # Apr: boundary churns 4000 (ended exactly at Apr 1 00:00); comeback reactivates 3000 → net −1000
    assert mv(s["2025-04"]) == (0, 3000, 0, 0, 4000, -1000)
    assert s["2025-04"].reactivated_customers == 1
    # May: planchange downgrades 25000 → 15000: contraction 10000
    assert mv(s["2025-05"]) == (0, 0, 0, 10000, 0, -10000)
    assert mv(s["2025-06"]) == (0, 0, 0, 0, 0, 0)


def test_month_metrics_one_month(story):
    m = month_metrics(story, M("2025-02"), "usd")
    assert (m.mrr, m.arr, m.customers, m.prev_mrr, m.prev_customers) == (51169, 614028, 9, 42169, 8)
    # ARPU = 51169 / 9 = 5685.44 → 5685
    assert m.arpu == 5685
    # MoM growth = (51169 − 42169) / 42169
    assert m.mom_growth == Decimal(9000) / Decimal(42169)
    assert m.warnings == []
    assert month_metrics(story, M("2025-06"), "usd").mom_growth == 0
    assert month_metrics(story, M("2024-12"), "usd").mom_growth is None  # previous MRR 0


def test_arpu_rounds_half_even(engine):
    # Two tenants with 1 and 2 cents: MRR 3, ARPU 3/2 = 1.5 → 2; with 1 and 4: 5/2 = 2.5 → 2.
    with Ledger(engine) as led:
        led.sub(led.tenant("x"), "2025-01", price=1)
        led.sub(led.tenant("y"), "2025-01", price=4)
    m = month_metrics(engine, M("2025-01"), "usd")
    assert (m.mrr, m.customers, m.arpu) == (5, 2, 2)


def test_trial_ending_inside_the_month_counts(engine):
    # Trial ends 31 Jan 23:59:59 (< Jan.end): live at Jan's last instant → $20 in Jan.
    # Trial ends exactly 1 Feb 00:00: still in trial at Jan's last instant → 0 in Jan, $20 in Feb.
    with Ledger(engine) as led:
        led.sub(led.tenant("a"), "2025-01-03", price=2_000, trial_ends="2025-01-31T23:59:59")
        led.sub(led.tenant("b"), "2025-01-03", price=2_000, trial_ends="2025-02-01T00:00:00")
    assert [m.mrr for m in month_series(engine, M("2025-01"), M("2025-02"), "usd")] == [2_000, 4_000]


def test_row_starting_exactly_at_month_end_counts_next_month(engine):
    # Starts 1 Feb 00:00 = Jan.end: not live at Jan's last instant.
    with Ledger(engine) as led:
        led.sub(led.tenant("a"), "2025-02-01T00:00:00", price=2_000)
    assert [m.mrr for m in month_series(engine, M("2025-01"), M("2025-02"), "usd")] == [0, 2_000]


def test_row_ending_within_its_first_month_never_counts(engine):
    # 3 Jan – 20 Jan: not live at any month end, so never MRR, never new, never churn.
    with Ledger(engine) as led:
        a = led.tenant("a")
        led.sub(a, "2025-01-03", "2025-01-20", price=9_000)
        led.sub(a, "2025-03-01", price=1_000)  # its first MRR: new in Mar, not reactivation
    s = month_series(engine, M("2025-01"), M("2025-03"), "usd")
    assert [(m.mrr, m.new, m.reactivation, m.churn) for m in s] == [(0, 0, 0, 0), (0, 0, 0, 0), (1_000, 1_000, 0, 0)]


def test_reactivation_looks_at_history_before_the_window(engine):
    # Paid $10 in Jan 2023, churned Feb 2023, back in Jun 2025: reactivation, even when the
    # requested window starts in 2025; a tenant paying for the first time in Jun 2025 is new.
    with Ledger(engine) as led:
        old = led.tenant("old")
        led.sub(old, "2023-01-01", "2023-02-10", price=1_000)
        led.sub(old, "2025-06-01", price=1_000)
        led.sub(led.tenant("fresh"), "2025-06-01", price=2_000)
    m = month_metrics(engine, M("2025-06"), "usd")
    assert (m.new, m.reactivation, m.new_customers, m.reactivated_customers) == (2_000, 1_000, 1, 1)


def test_plan_change_to_same_price_is_no_movement(engine):
    # Upgrade path that keeps the price: the old row ends and the new starts at the same instant.
    with Ledger(engine) as led:
        a = led.tenant("a")
        led.sub(a, "2025-01-01", "2025-02-14T12:00", price=5_000, end_reason="plan_change")
        led.sub(a, "2025-02-14T12:00", price=5_000, plan_id="other")
    m = month_metrics(engine, M("2025-02"), "usd")
    assert (m.mrr, m.new, m.expansion, m.contraction, m.churn) == (5_000, 0, 0, 0, 0)
    assert tenant_movements(engine, M("2025-02"), "usd") == []


def test_churn(story):
    c = churn_metrics(story, M("2025-02"), "usd")
    # Feb: comeback churned (3000) of 8 customers and 42169 MRR at the end of Jan.
    assert (c.customers_start, c.mrr_start, c.churned_customers, c.churned_mrr) == (8, 42169, 1, 3000)
    assert c.logo_churn_rate == Decimal(1) / Decimal(8)
    assert c.gross_mrr_churn_rate == Decimal(3000) / Decimal(42169)
    assert c.net_mrr_churn_rate == Decimal(3000) / Decimal(42169)
    # May: no logo churn, contraction 10000 of 75169
    c = churn_metrics(story, M("2025-05"), "usd")
    assert (c.churned_customers, c.contraction, c.contraction_customers) == (0, 10000, 1)
    assert c.logo_churn_rate == 0
    assert c.gross_mrr_churn_rate == Decimal(10000) / Decimal(75169)
    # Mar: expansion 19000, no churn: net MRR churn negative −19000/51169
    c = churn_metrics(story, M("2025-03"), "usd")
    assert c.net_mrr_churn_rate == Decimal(-19000) / Decimal(51169)
    # Jan: nothing at the end of Dec → rates undefined
    c = churn_metrics(story, M("2025-01"), "usd")
    assert (c.logo_churn_rate, c.gross_mrr_churn_rate, c.net_mrr_churn_rate) == (None, None, None)


def test_tenant_movements(story):
    rows = tenant_movements(story, M("2025-03"), "usd")
    got = [(r.name, r.movement, r.prev, r.cur, r.amount) for r in rows]
    assert got == [
        ("seats", "new", 0, 6000, 6000),
        ("planchange", "expansion", 10000, 25000, 15000),
        ("addon", "expansion", 5000, 9000, 4000),
    ]
    rows = tenant_movements(story, M("2025-04"), "usd")
    assert [(r.name, r.movement, r.amount) for r in rows] == [("comeback", "reactivation", 3000), ("boundary", "churn", 4000)]
    assert rows[1].tenant_id == tenant_id("boundary")


def test_nrr_grr(story):
    # Window 4 ending Jun: cohort = customers at the end of Feb (9 tenants, 51169).
    # End of Jun: monthly 10000 + trial 5000 + annual 10000 + halfeven 167 + tie 2 + addon 9000
    #   + planchange 15000 + boundary 0 + pastdue 7000 = 56169 → NRR 56169/51169.
    # Σ min(Jun, Feb): addon min(9000,5000)=5000, planchange min(15000,10000)=10000 → 47169 → GRR 47169/51169.
    r = nrr_grr(story, M("2025-06"), 4, "usd")
    assert (str(r.start_month), r.cohort_size, r.start_mrr, r.end_mrr, r.retained_mrr) == ("2025-02", 9, 51169, 56169, 47169)
    assert r.nrr == Decimal(56169) / Decimal(51169)
    assert r.grr == Decimal(47169) / Decimal(51169)
    # comeback (back in Apr) and seats (new in Mar) are not in the Feb cohort.
    # Window 3: cohort at the end of Mar = 10 tenants, 76169; Jun 62169 (= 65169 − comeback 3000).
    r = nrr_grr(story, M("2025-06"), 3, "usd")
    assert (r.cohort_size, r.start_mrr, r.end_mrr, r.retained_mrr) == (10, 76169, 62169, 62169)
    # An empty cohort: ratios undefined, not a crash.
    r = nrr_grr(story, M("2025-01"), 12, "usd")
    assert (r.cohort_size, r.nrr, r.grr) == (0, None, None)


def test_nrr_bad_window(story):
    with pytest.raises(UsageError, match="--window"):
        nrr_grr(story, M("2025-06"), 0, "usd")


def test_cohorts_by_logos_and_revenue(story):
    # Jan cohort: monthly, annual, halfeven, tie, addon, planchange, boundary, comeback (8; 42169).
    #   Feb: comeback gone → 7; Mar 7; Apr: boundary gone, comeback back → 7.
    #   By starting MRR: 42169; Feb/Mar 42169 − 3000 = 39169; Apr 39169 − 4000 + 3000 = 38169.
    # Feb cohort: trial (5000), pastdue (7000): 2 and 12000 throughout. Mar cohort: seats (6000).
    logos = cohort_matrix(story, M("2025-01"), M("2025-04"), "logos", "usd")
    rows = [(str(c.cohort), c.size, c.starting_mrr, c.active) for c in logos.cohorts]
    assert rows == [
        ("2025-01", 8, 42169, [8, 7, 7, 7]),
        ("2025-02", 2, 12000, [2, 2, 2]),
        ("2025-03", 1, 6000, [1, 1]),
        ("2025-04", 0, 0, [0]),
    ]
    assert logos.cohorts[0].retention == [1, Decimal(7) / 8, Decimal(7) / 8, Decimal(7) / 8]
    assert logos.cohorts[3].retention == [None]
    revenue = cohort_matrix(story, M("2025-01"), M("2025-04"), "revenue", "usd")
    assert revenue.cohorts[0].active_mrr == [42169, 39169, 39169, 38169]
    assert revenue.cohorts[0].retention == [1, Decimal(39169) / 42169, Decimal(39169) / 42169, Decimal(38169) / 42169]


def test_cohorts_bad_by(story):
    with pytest.raises(UsageError, match="--by must be one of logos, revenue"):
        cohort_matrix(story, M("2025-01"), M("2025-04"), "seats", "usd")


def test_multi_currency_with_and_without_rates(engine):
    # usd: $50/mo. eur: €100/mo. jpy: ¥1000/mo (zero-decimal).
    # Jan: eur→usd 1.10: 10000 × 1.10 = 11000; jpy→usd 0.0067: 1000 × 0.0067 × 100 = 670.
    #      MRR = 5000 + 11000 + 670 = 16670.
    # Feb: only the inverse usd→eur 0.8: 10000 ÷ 0.8 = 12500 (expansion 1500); no JPY rate:
    #      ¥1,000 left out (a churn of 670 in USD) → MRR 5000 + 12500 = 17500.
    # Mar: no rates at all → both left out: MRR 5000.
    with Ledger(engine) as led:
        led.sub(led.tenant("u"), "2025-01", price=5_000)
        led.sub(led.tenant("e", currency="eur"), "2025-01", price=10_000, currency="eur")
        led.sub(led.tenant("j", currency="jpy"), "2025-01", price=1_000, currency="jpy")
        led.fx("2025-01", "eur", "usd", "1.10")
        led.fx("2025-01", "jpy", "usd", "0.0067")
        led.fx("2025-02", "usd", "eur", "0.8")
    s = month_series(engine, M("2025-01"), M("2025-03"), "usd")
    assert [m.mrr for m in s] == [16670, 17500, 5000]
    assert (s[1].expansion, s[1].churn) == (1500, 670)
    assert s[0].warnings == []
    assert s[1].warnings == ["no FX rate JPY→USD for 2025-02: left out ¥1,000 of MRR at the end of 2025-02 "
                             "(import rates with `pmfin fx import`)"]
    assert any("left out €100.00" in w for w in s[2].warnings)
    # Reported in EUR: usd→eur 0.8 in Feb converts $50 to €40.00; EUR is not converted.
    m = month_metrics(engine, M("2025-02"), "eur")
    assert m.mrr == 10_000 + 4_000
    assert any("JPY→EUR" in w for w in m.warnings)


def test_mixed_currency_tenant_rounds_once(engine):
    # One tenant: $10/mo + €10/mo at 1.1005 → 1000 + 1100.5 = 2100.5 → 2100 (half-even, once).
    with Ledger(engine) as led:
        a = led.tenant("a")
        led.sub(a, "2025-01", price=1_000)
        led.addon(a, "2025-01", price=1_000, currency="eur")
        led.fx("2025-01", "eur", "usd", "1.1005")
    assert month_metrics(engine, M("2025-01"), "usd").mrr == 2100


def test_missing_contract_table(bare_database_url):
    from sqlalchemy import create_engine

    from pmfin.db.url import normalize

    eng = create_engine(normalize(bare_database_url))
    try:
        with pytest.raises(DatabaseError, match="missing tables plans, addons, subscriptions"):
            month_metrics(eng, M("2025-01"), "usd")
    finally:
        eng.dispose()


def test_bad_currency(engine):
    with pytest.raises(UsageError, match="--currency"):
        month_metrics(engine, M("2025-01"), "dollars")


def test_inverse_rate_keeps_exact_ties(engine):
    # Found by the oracle test: $9.99 × 3 per year = 2997/12 = 249.75 cents a month; reported in EUR
    # with only eur→usd 0.9, 249.75 ÷ 0.9 = 277.5 exactly → 278 (half-even). Multiplying by
    # 1/0.9 = 1.1111… instead would give 277.4999… → 277.
    with Ledger(engine) as led:
        led.sub(led.tenant("a"), "2025-03", price=999, quantity=3, cycle="year")
        led.fx("2025-03", "eur", "usd", "0.9")
    assert month_metrics(engine, M("2025-03"), "eur").mrr == 278
