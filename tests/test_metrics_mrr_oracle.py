"""Property test: the SQL metrics equal the naive oracle (tests/metrics_oracle.py) on random histories.

Histories: up to 6 tenants, up to 4 subscription/add-on rows each, instants drawn from month
boundaries, mid-month and the last microsecond of a month (the edges of DESIGN §3), trials,
annual and monthly cycles, quantities, prices that make half-even ties, a second currency with
FX rates present in some months only (direct or inverse).
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_fixtures import add_fx_rate, add_subscription, add_subscription_addon, add_tenant
from sqlalchemy import text

import metrics_oracle as oracle
from pmfin.metrics.mrr import month_series, tenant_movements
from pmfin.metrics.retention import cohort_matrix, nrr_grr
from pmfin.months import Month

UTC = dt.timezone.utc
BASE = (2024, 1)
N_MONTHS = 15  # 2024-01 … 2025-03


def _instant(month_index: int, where: int) -> dt.datetime:
    y, m = oracle.shift(BASE, month_index)
    start = dt.datetime(y, m, 1, tzinfo=UTC)
    if where == 0:
        return start  # a month boundary
    if where == 1:
        return start + dt.timedelta(days=14, hours=12)  # mid-month
    return oracle.month_end((y, m)) - dt.timedelta(microseconds=1)  # the last instant of the month


instants = st.builds(_instant, st.integers(0, N_MONTHS - 1), st.integers(0, 2))


@st.composite
def row(draw, tenant: int) -> dict:
    start = draw(instants)
    end = draw(st.one_of(st.none(), instants))
    if end is not None and end <= start:
        start, end = end, start
    if end == start:
        end = None
    trial = draw(st.one_of(st.none(), st.none(), instants))
    return dict(
        tenant=tenant,
        kind=draw(st.sampled_from(["sub", "sub", "addon"])),
        price=draw(st.sampled_from([0, 1, 6, 18, 30, 999, 1000, 5000, 12001])),
        quantity=draw(st.integers(1, 3)),
        cycle=draw(st.sampled_from(["month", "year"])),
        currency=draw(st.sampled_from(["usd", "usd", "usd", "eur"])),
        start=start,
        end=end,
        trial=trial,
    )


@st.composite
def history(draw) -> tuple[list[dict], dict]:
    n = draw(st.integers(0, 6))
    rows = []
    for t in range(n):
        rows += draw(st.lists(row(t), min_size=1, max_size=4))
    rates = {}
    for i in range(N_MONTHS):
        choice = draw(st.sampled_from(["none", "direct", "inverse"]))
        y, m = oracle.shift(BASE, i)
        r = draw(st.sampled_from(["1.1", "0.9", "1.0005", "1.25"]))
        if choice == "direct":
            rates[(y, m, "eur", "usd")] = Fraction(r)
        elif choice == "inverse":
            rates[(y, m, "usd", "eur")] = Fraction(r)
    return rows, rates


def _load(engine, rows: list[dict], rates: dict) -> None:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE subscriptions, subscription_addons, tenant_config, tenants, plans, addons, pmfin_fx_rates"))
        for t in sorted({r["tenant"] for r in rows}):
            add_tenant(conn, f"t{t}")
        from metrics_fixtures import tenant_id

        for r in rows:
            kw = dict(price=r["price"], quantity=r["quantity"], cycle=r["cycle"], currency=r["currency"])
            if r["kind"] == "sub":
                add_subscription(conn, tenant_id(f"t{r['tenant']}"), r["start"], r["end"], trial_ends=r["trial"], **kw)
            else:
                add_subscription_addon(conn, tenant_id(f"t{r['tenant']}"), r["start"], r["end"], **kw)
        for (y, m, base, quote), value in rates.items():
            add_fx_rate(conn, f"{y:04d}-{m:02d}", base, quote, str(float(value)))


def _oracle_rows(rows: list[dict]) -> list[dict]:
    # Add-on rows have no trial in the contract.
    return [dict(r, trial=None) if r["kind"] == "addon" else r for r in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=history(), window=st.integers(1, 6), reporting=st.sampled_from(["usd", "usd", "eur"]))
def test_sql_matches_oracle(engine, data, window, reporting):
    rows, rates = data
    _load(engine, rows, rates)
    rows = _oracle_rows(rows)
    first, last = (2024, 3), (2025, 3)

    sql = month_series(engine, Month(*first), Month(*last), reporting)
    expected = oracle.metrics(rows, first, last, reporting, rates)
    for got, exp in zip(sql, expected, strict=True):
        assert (got.month.year, got.month.month) == exp["month"]
        assert (got.mrr, got.customers, got.new, got.reactivation, got.expansion, got.contraction, got.churn) == (
            exp["mrr"], exp["customers"], exp["new"], exp["reactivation"], exp["expansion"], exp["contraction"],
            exp["churn"],
        ), f"month {got.month}"
        # The movement identity of DESIGN §3, for every month of every generated history.
        assert got.mrr - got.prev_mrr == got.new + got.reactivation + got.expansion - got.contraction - got.churn
        assert got.net_new == got.mrr - got.prev_mrr

    # The one-month query (month_metrics, report mrr) takes another path than the range query:
    # it must give the same figures for every month.
    for month in (first, (2024, 4), (2024, 12), last):
        (one,) = month_series(engine, Month(*month), Month(*month), reporting)
        exp = next(e for e in expected if e["month"] == month)
        assert (one.mrr, one.customers, one.new, one.reactivation, one.expansion, one.contraction, one.churn,
                one.prev_mrr) == (exp["mrr"], exp["customers"], exp["new"], exp["reactivation"], exp["expansion"],
                                  exp["contraction"], exp["churn"], next(s for s in sql if s.month == one.month).prev_mrr), \
            f"one month {one.month}"

    # Per tenant (`report churn --tenants`, a third path): each tenant's movement and amount add
    # up to the oracle's totals of the month.
    per_tenant = tenant_movements(engine, Month(*last), reporting)
    for kind in ("new", "reactivation", "expansion", "contraction", "churn"):
        assert sum(t.amount for t in per_tenant if t.movement == kind) == expected[-1][kind], kind
    assert all(t.amount > 0 for t in per_tenant)

    r = nrr_grr(engine, Month(*last), window, reporting)
    o = oracle.nrr_grr(rows, last, window, reporting, rates)
    assert (r.cohort_size, r.start_mrr, r.end_mrr, r.retained_mrr) == (o["size"], o["start"], o["end"], o["retained"])
    if o["nrr"] is None:
        assert r.nrr is None and r.grr is None
    else:
        assert abs(Fraction(r.nrr) - o["nrr"]) < Fraction(1, 10**20)
        assert abs(Fraction(r.grr) - o["grr"]) < Fraction(1, 10**20)

    for by in ("logos", "revenue"):
        matrix = cohort_matrix(engine, Month(2024, 2), Month(2024, 12), by, reporting)
        exp_rows = oracle.cohorts(rows, (2024, 2), (2024, 12), by, reporting, rates)
        for got, exp in zip(matrix.cohorts, exp_rows, strict=True):
            assert (got.size, got.starting_mrr) == (exp["size"], exp["starting"]), f"cohort {got.cohort}"
            assert len(got.retention) == len(exp["retention"])
            for g, e in zip(got.retention, exp["retention"]):
                assert (g is None) == (e is None)
                if e is not None:
                    assert abs(Fraction(g) - e) < Fraction(1, 10**20)
