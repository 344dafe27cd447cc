"""The executive summary: the seed's "Financial Dashboard" for one month, from the other metrics.

- MRR with its month-over-month growth; ARR (12 × MRR) with its growth against 12 months before.
- NRR over 12 months (``pmfin.metrics.retention``); gross margin (``pmfin.metrics.finance``).
- Revenue breakdown: net revenue per stream and its share (``report revenue``).
- Growth trends: new customers, new MRR, expansion, churned MRR (churn; contraction beside it),
  net new MRR — the MRR movements of the month.
- Cost structure: every cost line of the month and its share (``report costs``).
- Total burn = all costs of the month (gross burn). Net burn of a month = costs − net revenue.
  Burn rate = the average net burn of the last 3 months (M−2 … M).
- Cash runway = cash ÷ burn rate, in months, when the burn rate is positive; needs the cash
  balance (``cash``), otherwise "unknown". With a burn rate ≤ 0 the business is not burning cash
  and runway is not limited by it (``report cashflow`` projects cash month by month).
- CAC and payback as ``report cac``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.engine import Connection

from pmfin.metrics.amounts import ratio
from pmfin.metrics.costs import month_costs
from pmfin.metrics.finance import cac_from, gross_margin_from, months_2dp, no_costs_warning
from pmfin.metrics.mrr import month_series, require_tables
from pmfin.metrics.retention import nrr_grr
from pmfin.metrics.revenue import revenue_by_stream
from pmfin.money import round_minor
from pmfin.months import Month
from pmfin.settings import Settings

NRR_WINDOW = 12
BURN_MONTHS = 3


@dataclass
class Overview:
    currency: str
    mrr: int
    mrr_mom_growth: Decimal | None
    arr: int
    arr_yoy_growth: Decimal | None  # ARR ÷ ARR 12 months before − 1; None when that was 0
    nrr: Decimal | None  # 12-month window
    gross_margin: Decimal | None
    customers: int
    cash: int | None
    runway_months: Decimal | None
    runway: str  # for people: "14.20 months", "unknown: pass --cash", …


@dataclass
class RevenueShare:
    stream: str
    label: str
    currency: str
    net: int
    share: Decimal | None


@dataclass
class Growth:
    currency: str
    new_customers: int
    new_mrr: int
    reactivation: int
    expansion: int
    contraction: int
    churned_customers: int
    churned_revenue: int
    net_new_mrr: int


@dataclass
class CostShare:
    category: str
    kind: str
    currency: str
    amount: int
    share: Decimal | None


@dataclass
class Burn:
    currency: str
    total_burn: int  # all costs of the month
    revenue: int  # net revenue of the month
    net_burn: int  # total_burn − revenue (negative: cash-flow positive)
    burn_rate: int  # average net burn of the burn months
    burn_months: list[str]


@dataclass
class UnitEconomics:
    currency: str
    sales_marketing: int
    new_customers: int
    cac: int | None
    payback_months: Decimal | None
    reason: str | None


@dataclass
class ExecutiveSummary:
    month: str
    currency: str
    overview: Overview
    revenue_breakdown: list[RevenueShare]
    growth: Growth
    cost_structure: list[CostShare]
    burn: Burn
    unit_economics: UnitEconomics
    warnings: list[str] = field(default_factory=list)


def runway_from(cash: int | None, burn_rate: int) -> tuple[Decimal | None, str]:
    """Months of runway (two decimals) and the sentence a person reads."""
    if cash is None:
        return None, "unknown: pass --cash (or set PMFIN_CASH)"
    if cash < 0:  # the CLI refuses a negative --cash; a caller of this function gets no runway
        return None, "already out of cash: the cash balance is negative"
    if burn_rate <= 0:
        return None, "not burning cash: net burn over the last 3 months is zero or negative"
    months = months_2dp(Decimal(cash) / burn_rate)
    return months, f"{months} months at the current burn rate"


def executive_summary(
    conn: Connection, month: Month, currency: str, settings: Settings, cash: int | None = None
) -> ExecutiveSummary:
    """Every figure of the dashboard for ``month`` in ``currency``; ``cash`` enables the runway."""
    require_tables(conn)
    series = month_series(conn, month.add(-NRR_WINDOW), month, currency)
    m, year_ago = series[-1], series[0]
    retention = nrr_grr(conn, month, NRR_WINDOW, currency)
    burn_months = [month.add(-i) for i in range(BURN_MONTHS - 1, -1, -1)]
    revenues = [revenue_by_stream(conn, b, currency, settings) for b in burn_months]
    costs_list = [month_costs(conn, b, currency, settings) for b in burn_months]
    revenue, costs = revenues[-1], costs_list[-1]
    gm = gross_margin_from(revenue, costs)
    cac = cac_from(m, costs, gm)

    net_burns = [c.total - r.net for c, r in zip(costs_list, revenues)]
    burn_rate = round_minor(Decimal(sum(net_burns)) / len(net_burns))
    runway_months, runway_text = runway_from(cash, burn_rate)

    # The summary says once that the month has no imported costs (below), not once per figure.
    per_figure = no_costs_warning(month, "")
    warnings = list(dict.fromkeys(
        [*m.warnings, *retention.warnings]
        + [w for w in [*gm.warnings, *cac.warnings] if not w.startswith(per_figure)]
        + [w for r in revenues for w in r.warnings]
        + [w for c in costs_list for w in c.warnings]
    ))
    if not costs.has_imported:
        warnings.append(f"no costs imported for {month}: costs are only the computed lines (pmfin costs import)")
    return ExecutiveSummary(
        month=str(month),
        currency=currency,
        overview=Overview(
            currency=currency,
            mrr=m.mrr,
            mrr_mom_growth=m.mom_growth,
            arr=m.arr,
            arr_yoy_growth=ratio(m.arr - year_ago.arr, year_ago.arr) if year_ago.arr > 0 else None,
            nrr=retention.nrr,
            gross_margin=gm.gross_margin,
            customers=m.customers,
            cash=cash,
            runway_months=runway_months,
            runway=runway_text,
        ),
        revenue_breakdown=[RevenueShare(s.stream, s.label, currency, s.net, s.share) for s in revenue.streams],
        growth=Growth(
            currency=currency,
            new_customers=m.new_customers,
            new_mrr=m.new,
            reactivation=m.reactivation,
            expansion=m.expansion,
            contraction=m.contraction,
            churned_customers=m.churned_customers,
            churned_revenue=m.churn,
            net_new_mrr=m.net_new,
        ),
        cost_structure=[CostShare(c.category, c.kind, currency, c.amount, c.share) for c in costs.lines],
        burn=Burn(
            currency=currency,
            total_burn=costs.total,
            revenue=revenue.net,
            net_burn=net_burns[-1],
            burn_rate=burn_rate,
            burn_months=[str(b) for b in burn_months],
        ),
        unit_economics=UnitEconomics(
            currency=currency,
            sales_marketing=cac.sales_marketing,
            new_customers=cac.new_customers,
            cac=cac.cac,
            payback_months=cac.payback_months,
            reason=cac.reason,
        ),
        warnings=warnings,
    )
