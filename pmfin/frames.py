"""Every report as a pandas DataFrame, for analysts in notebooks.

    import pmfin.frames as frames
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg://…")   # or pmfin.db.Database.from_settings(…).engine
    frames.movements(engine, "2025-01", "2025-12")       # one row per month

Each function calls the same service as the ``pmfin report`` command of the same name, so the
numbers are the command's (``tests/test_frames.py`` compares them with its JSON). The forms:

- **Rows**: one per month where a report is per month (the month is the index), one per stream,
  cost line, tenant or cohort age where it is per such a thing, else one row (indexed by the month).
- **Types**, the same in every frame: money ``Int64`` (integer minor units, nullable where a figure
  can be undefined) with a ``currency`` column; ratios and rates ``Float64`` (``0.05`` = 5 %);
  counts ``Int64``; months ``period[M]``; text ``string``; flags ``boolean``. A figure the report
  cannot compute is ``<NA>``.
- **Arguments**: ``engine`` is an Engine or a Connection; months are ``"YYYY-MM"`` or
  ``pmfin.months.Month``; ``currency`` defaults to ``PMFIN_CURRENCY`` (else ``usd``) and
  ``settings`` (the fee model, the Connect share, the email cost) to ``Settings.load()``, as the
  command would read them. Warnings go to ``df.attrs["warnings"]``.

pandas is imported only by this module, which the command line never imports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from pmfin.months import Month
from pmfin.settings import Settings

# column kinds → pandas dtypes (the one place the types of every frame are decided)
DTYPES = {"money": "Int64", "count": "Int64", "ratio": "Float64", "text": "string", "month": "period[M]",
          "flag": "boolean"}

MRR = {
    "month": "month", "mrr": "money", "arr": "money", "customers": "count", "arpu": "money", "new": "money",
    "reactivation": "money", "expansion": "money", "contraction": "money", "churn": "money", "net_new": "money",
    "mom_growth": "ratio", "prev_mrr": "money", "prev_customers": "count", "new_customers": "count",
    "reactivated_customers": "count", "expansion_customers": "count", "contraction_customers": "count",
    "churned_customers": "count", "currency": "text",
}
CHURN = {
    "month": "month", "customers_start": "count", "mrr_start": "money", "churned_customers": "count",
    "churned_mrr": "money", "contraction": "money", "contraction_customers": "count", "expansion": "money",
    "logo_churn_rate": "ratio", "gross_mrr_churn_rate": "ratio", "net_mrr_churn_rate": "ratio", "currency": "text",
}
TENANTS = {"tenant_id": "text", "name": "text", "prev": "money", "cur": "money", "movement": "text",
           "amount": "money", "currency": "text"}
RETENTION = {
    "month": "month", "window": "count", "start_month": "month", "cohort_size": "count", "start_mrr": "money",
    "end_mrr": "money", "retained_mrr": "money", "nrr": "ratio", "grr": "ratio", "currency": "text",
}
COHORTS = {"cohort": "month", "age": "count", "size": "count", "starting_mrr": "money", "active": "count",
           "active_mrr": "money", "retention": "ratio", "currency": "text"}
REVENUE = {"stream": "text", "label": "text", "payments": "count", "gross": "money", "refunded": "money",
           "net": "money", "share": "ratio", "disputed": "money", "currency": "text"}
COSTS = {"category": "text", "kind": "text", "amount": "money", "share": "ratio", "computed": "flag", "currency": "text"}
COST_TREND = {"month": "month", "fixed": "money", "variable": "money", "total": "money", "change": "ratio",
              "currency": "text"}
LTV = {
    "month": "month", "ltv": "money", "reason": "text", "arpu": "money", "gross_margin": "ratio",
    "avg_logo_churn": "ratio", "churn_window": "count", "churned_customers": "count", "customer_months": "count",
    "customers": "count", "mrr": "money", "currency": "text",
}
CAC = {
    "month": "month", "cac": "money", "payback_months": "ratio", "reason": "text", "sales_marketing": "money",
    "new_customers": "count", "arpu": "money", "gross_margin": "ratio", "gross_profit_per_customer": "money",
    "currency": "text",
}
BREAKEVEN = {
    "month": "month", "breakeven_customers": "count", "customers": "count", "gap": "count", "fixed_costs": "money",
    "fixed_costs_source": "text", "variable_costs": "money", "variable_cost_per_customer": "money", "arpu": "money",
    "contribution_margin_per_customer": "money", "mrr": "money", "currency": "text",
}
CASHFLOW = {
    "month": "month", "starting_cash": "money", "subscriptions": "money", "services": "money", "other": "money",
    "inflows": "money", "operations": "money", "marketing": "money", "capex": "money", "outflows": "money",
    "net": "money", "ending_cash": "money", "currency": "text",
}
SUMMARY = {
    "month": "month", "mrr": "money", "mrr_mom_growth": "ratio", "arr": "money", "arr_yoy_growth": "ratio",
    "nrr": "ratio", "gross_margin": "ratio", "customers": "count", "cash": "money", "runway_months": "ratio",
    "new_customers": "count", "new_mrr": "money", "reactivation": "money", "expansion": "money",
    "contraction": "money", "churned_customers": "count", "churned_revenue": "money", "net_new_mrr": "money",
    "total_burn": "money", "revenue": "money", "net_burn": "money", "burn_rate": "money",
    "sales_marketing": "money", "cac": "money", "payback_months": "ratio", "currency": "text",
}


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "month":
        return pd.Period(str(value), freq="M")
    if kind == "ratio":
        return float(value)
    if kind in ("money", "count"):
        return int(value)
    return str(value) if kind == "text" else value


def frame(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, str], *, index: str | None = "month",
          warnings: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame of ``rows`` with ``columns`` (name → kind, in order), typed as DTYPES says."""
    rows = list(rows)
    df = pd.DataFrame({name: pd.array([_value(kind, r.get(name)) for r in rows], dtype=DTYPES[kind])
                       for name, kind in columns.items()})
    if index is not None:
        df = df.set_index(index)
    df.attrs["warnings"] = list(dict.fromkeys(warnings))
    return df


def _month(value: Month | str) -> Month:
    return value if isinstance(value, Month) else Month.parse(value, flag="month")


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings.load()


def _currency(currency: str | None, settings: Settings | None = None) -> str:
    from pmfin.metrics.mrr import check_currency

    return check_currency(currency if currency is not None else _settings(settings).currency, flag="currency")


@contextlib.contextmanager
def _conn(engine: Any) -> Iterator[Any]:
    from pmfin.metrics.mrr import connection

    with connection(engine) as conn:
        yield conn


def _plain(obj: Any) -> dict[str, Any]:
    return dict(vars(obj))


# ---------------------------------------------------------------- revenue metrics


def movements(engine: Any, first: Month | str, last: Month | str, currency: str | None = None) -> pd.DataFrame:
    """``report movements``: one row per month from ``first`` to ``last`` (index ``month``): MRR,
    ARR, customers, ARPU, the five movements, net new, MoM growth, the month before, the counts."""
    from pmfin.metrics.mrr import month_series

    series = month_series(engine, _month(first), _month(last), _currency(currency))
    return frame((_plain(m) for m in series), MRR, warnings=[w for m in series for w in m.warnings])


def mrr(engine: Any, month: Month | str, currency: str | None = None) -> pd.DataFrame:
    """``report mrr``: ``movements`` of one month (one row)."""
    return movements(engine, month, month, currency)


def churn(engine: Any, month: Month | str, currency: str | None = None) -> pd.DataFrame:
    """``report churn``: one row: logo, gross and net MRR churn rates and what they are made of."""
    from pmfin.metrics.mrr import churn_metrics

    c = churn_metrics(engine, _month(month), _currency(currency))
    return frame([_plain(c)], CHURN, warnings=c.warnings)


def churned_tenants(engine: Any, month: Month | str, currency: str | None = None) -> pd.DataFrame:
    """``report churn --tenants``: one row per tenant that churned or contracted in the month."""
    from pmfin.metrics.mrr import tenant_movements

    moves = tenant_movements(engine, _month(month), _currency(currency))
    return frame((_plain(t) for t in moves if t.movement in ("churn", "contraction")), TENANTS, index=None)


def retention(engine: Any, month: Month | str, window: int = 12, currency: str | None = None) -> pd.DataFrame:
    """``report retention``: one row: NRR and GRR of the customers at the end of month − window."""
    from pmfin.metrics.retention import nrr_grr

    r = nrr_grr(engine, _month(month), window, _currency(currency))
    return frame([_plain(r)], RETENTION, warnings=r.warnings)


def cohorts(engine: Any, first: Month | str, last: Month | str, by: str = "logos",
            currency: str | None = None) -> pd.DataFrame:
    """``report cohorts`` in long form: one row per cohort and age (months since the cohort month),
    with the members still paying (``active``), their starting MRR (``active_mrr``) and the
    retention by ``by`` (logos or revenue); index (cohort, age)."""
    from pmfin.metrics.retention import cohort_matrix

    m = cohort_matrix(engine, _month(first), _month(last), by, _currency(currency))
    rows = [{"cohort": c.cohort, "age": age, "size": c.size, "starting_mrr": c.starting_mrr, "active": c.active[age],
             "active_mrr": c.active_mrr[age], "retention": c.retention[age], "currency": m.currency}
            for c in m.cohorts for age in range(len(c.retention))]
    return frame(rows, COHORTS, index=None, warnings=m.warnings).set_index(["cohort", "age"])


# ---------------------------------------------------------------- finance


def revenue(engine: Any, month: Month | str, currency: str | None = None,
            settings: Settings | None = None) -> pd.DataFrame:
    """``report revenue``: one row per stream (index ``stream``); the month's totals and
    ``connect_volume`` in ``df.attrs``."""
    from pmfin.metrics.revenue import revenue_by_stream

    s = _settings(settings)
    with _conn(engine) as conn:
        r = revenue_by_stream(conn, _month(month), _currency(currency, s), s)
    df = frame((_plain(x) for x in r.streams), REVENUE, index="stream", warnings=r.warnings)
    df.attrs.update({k: getattr(r, k) for k in ("month", "currency", "gross", "refunded", "net", "disputed",
                                                 "connect_volume")})
    return df


def costs(engine: Any, month: Month | str, currency: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """``report costs``: one row per cost line of the month (index ``category``)."""
    from pmfin.metrics.costs import cost_report

    s = _settings(settings)
    with _conn(engine) as conn:
        r = cost_report(conn, _month(month), _currency(currency, s), s, trend=1)
    return frame((_plain(line) for line in r.lines), COSTS, index="category", warnings=r.warnings)


def cost_trend(engine: Any, month: Month | str, trend: int = 6, currency: str | None = None,
               settings: Settings | None = None) -> pd.DataFrame:
    """``report costs``' trend: one row per month of the ``trend`` months ending with ``month``."""
    from pmfin.metrics.costs import cost_report

    s = _settings(settings)
    with _conn(engine) as conn:
        r = cost_report(conn, _month(month), _currency(currency, s), s, trend=trend)
    return frame((_plain(t) for t in r.trend), COST_TREND, warnings=r.warnings)


def ltv(engine: Any, month: Month | str, churn_window: int = 6, currency: str | None = None,
        settings: Settings | None = None) -> pd.DataFrame:
    """``report ltv``: one row."""
    from pmfin.metrics.finance import ltv as service

    s = _settings(settings)
    with _conn(engine) as conn:
        r = service(conn, _month(month), _currency(currency, s), s, churn_window=churn_window)
    return frame([_plain(r)], LTV, warnings=r.warnings)


def cac(engine: Any, month: Month | str, currency: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """``report cac``: one row (CAC and payback months)."""
    from pmfin.metrics.finance import cac as service

    s = _settings(settings)
    with _conn(engine) as conn:
        r = service(conn, _month(month), _currency(currency, s), s)
    return frame([_plain(r)], CAC, warnings=r.warnings)


def breakeven(engine: Any, month: Month | str, fixed_costs: int | None = None, currency: str | None = None,
              settings: Settings | None = None) -> pd.DataFrame:
    """``report breakeven``: one row; ``fixed_costs`` in minor units replaces the month's. Raises
    ``pmfin.metrics.finance.UndefinedMetric`` where the command exits 2."""
    from pmfin.metrics.finance import breakeven as service

    s = _settings(settings)
    with _conn(engine) as conn:
        r = service(conn, _month(month), _currency(currency, s), s, fixed_costs=fixed_costs)
    return frame([_plain(r)], BREAKEVEN, warnings=r.warnings)


def cashflow(engine: Any, first: Month | str, starting_cash: int, months: int = 12, *,
             growth: Decimal | None = None, churn: Decimal | None = None, cost_growth: Decimal | None = None,
             currency: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """``report cashflow``: one row per projected month; ``starting_cash`` in minor units. The
    assumptions (with their sources), ``runway_months``, ``cash_out_month`` and ``runway`` are in
    ``df.attrs``."""
    from pmfin.metrics.cashflow import cash_flow
    from pmfin.output import to_plain

    s = _settings(settings)
    with _conn(engine) as conn:
        p = cash_flow(conn, _month(first), months, _currency(currency, s), s, starting_cash=starting_cash,
                      growth=growth, churn=churn, cost_growth=cost_growth)
    df = frame((_plain(m) for m in p.months), CASHFLOW, warnings=p.warnings)
    df.attrs.update(assumptions=to_plain(p.assumptions), runway_months=p.runway_months,
                    cash_out_month=p.cash_out_month, runway=p.runway)
    return df


def summary(engine: Any, month: Month | str, cash: int | None = None, currency: str | None = None,
            settings: Settings | None = None) -> pd.DataFrame:
    """``report summary``: one row with the overview, growth, burn and unit-economics figures
    (the CSV's metric names); the revenue breakdown and cost structure are ``revenue`` and
    ``costs``. ``cash`` in minor units enables the runway."""
    from pmfin.metrics.summary import executive_summary

    s = _settings(settings)
    with _conn(engine) as conn:
        e = executive_summary(conn, _month(month), _currency(currency, s), s, cash=cash)
    row = {**_plain(e.unit_economics), **_plain(e.burn), **_plain(e.growth), **_plain(e.overview),
           "month": e.month, "currency": e.currency}
    return frame([row], SUMMARY, warnings=e.warnings)


__all__ = [
    "breakeven", "cac", "cashflow", "churn", "churned_tenants", "cohorts", "cost_trend", "costs", "frame", "ltv",
    "movements", "mrr", "retention", "revenue", "summary",
]
