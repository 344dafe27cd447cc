"""Unit economics: gross margin, LTV, CAC and payback, break-even (DESIGN.md §3).

Definitions (README "Finance metrics"); MRR, customers, ARPU and churn come from
``pmfin.metrics.mrr``, revenue from ``pmfin.metrics.revenue``, costs from ``pmfin.metrics.costs``:

- **Gross margin** of M = (revenue − cost of revenue) ÷ revenue, where revenue is the month's net
  revenue from payments (``report revenue``) and cost of revenue = payment processing + email
  delivery + infrastructure + customer_success. Undefined when the month has no revenue.
- **LTV** = ARPU × gross margin ÷ average monthly logo churn. ARPU = MRR ÷ customers at the end
  of M (exact, rounded once at the end). The churn average is pooled over the trailing window
  M−w+1 … M: Σ churned customers ÷ Σ customers at the start of each month (a month with 1
  customer who left weighs as much as its one customer, not as a 100% month). Zero churn, no
  customers or no gross margin → undefined, with the reason.
- **CAC** = sales & marketing cost of M (categories marketing + sales) ÷ new customers in M
  (first-time customers; reactivations are not acquisitions). **Payback months** = CAC ÷ (ARPU ×
  gross margin).
- **Break-even customers** = ceil(fixed costs ÷ (ARPU − variable cost per customer)), with
  variable cost per customer = all variable costs of M (imported and computed) ÷ customers.
  A contribution margin ≤ 0, or no customers, is an error (exit 2) with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy.engine import Connection

from pmfin.errors import PmfinError, UsageError
from pmfin.metrics.amounts import ratio
from pmfin.metrics.costs import MonthCosts, month_costs
from pmfin.metrics.mrr import MonthMetrics, month_series, require_tables
from pmfin.metrics.revenue import RevenueReport, revenue_by_stream
from pmfin.money import format_money, round_minor
from pmfin.months import Month
from pmfin.settings import Settings

TWO_PLACES = Decimal("0.01")


def no_costs_warning(month: object, consequence: str) -> str:
    """The warning for a month without any pmfin_costs row: its costs are only the computed lines."""
    return f"no costs imported for {month} (pmfin costs import): {consequence}"


class UndefinedMetric(PmfinError):
    """A metric that cannot be computed from this data (e.g. break-even with no contribution margin): exit 2."""

    exit_code = 2


def months_2dp(value: Decimal | None) -> Decimal | None:
    """A number of months, to two decimals (half-even) for people and programs alike."""
    return None if value is None else value.quantize(TWO_PLACES, rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------- gross margin


@dataclass
class GrossMargin:
    month: str
    currency: str
    revenue: int
    cost_of_revenue: int
    payment_processing: int
    email_delivery: int
    infrastructure: int
    customer_success: int
    gross_profit: int
    gross_margin: Decimal | None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


def gross_margin_from(revenue: RevenueReport, costs: MonthCosts) -> GrossMargin:
    cor = costs.cost_of_revenue
    margin = ratio(revenue.net - cor, revenue.net) if revenue.net > 0 else None
    reason = None if margin is not None else f"no revenue in {revenue.month}: gross margin is undefined"
    return GrossMargin(
        month=revenue.month,
        currency=revenue.currency,
        revenue=revenue.net,
        cost_of_revenue=cor,
        payment_processing=costs.payment_processing,
        email_delivery=costs.email_delivery,
        infrastructure=costs.amount("infrastructure"),
        customer_success=costs.amount("customer_success"),
        gross_profit=revenue.net - cor,
        gross_margin=margin,
        reason=reason,
        warnings=list(dict.fromkeys([*revenue.warnings, *costs.warnings, *_gm_costs_warning(revenue.month, costs)])),
    )


def _gm_costs_warning(month: object, costs: MonthCosts) -> list[str]:
    if costs.has_imported:
        return []
    return [no_costs_warning(month, "gross margin counts only payment processing and email delivery")]


def gross_margin(conn: Connection, month: Month, currency: str, settings: Settings) -> GrossMargin:
    return gross_margin_from(
        revenue_by_stream(conn, month, currency, settings), month_costs(conn, month, currency, settings)
    )


def _exact_arpu(m: MonthMetrics) -> Decimal | None:
    return ratio(m.mrr, m.customers)


# ---------------------------------------------------------------- LTV


@dataclass
class Ltv:
    month: str
    currency: str
    churn_window: int
    customers: int
    mrr: int
    arpu: int | None
    gross_margin: Decimal | None
    churned_customers: int  # Σ over the window
    customer_months: int  # Σ customers at the start of each month of the window
    avg_logo_churn: Decimal | None
    ltv: int | None
    reason: str | None
    warnings: list[str] = field(default_factory=list)


def pooled_logo_churn(series: list[MonthMetrics]) -> tuple[int, int, Decimal | None]:
    """(Σ churned customers, Σ customers at the start of each month, their ratio or None)."""
    churned = sum(m.churned_customers for m in series)
    base = sum(m.prev_customers for m in series)
    return churned, base, ratio(churned, base)


def ltv_from(series: list[MonthMetrics], gm: GrossMargin) -> Ltv:
    """LTV from the window's month metrics (the last one is M) and M's gross margin (pure)."""
    cur = series[-1]
    churned, base, churn = pooled_logo_churn(series)
    arpu = _exact_arpu(cur)
    reason = None
    if arpu is None:
        reason = f"no customers at the end of {cur.month}: ARPU is undefined"
    elif gm.gross_margin is None:
        reason = gm.reason
    elif base == 0:
        reason = f"no customers during {series[0].month}…{cur.month}: churn is undefined"
    elif churned == 0:
        reason = f"no customer churned during {series[0].month}…{cur.month}: with zero churn LTV is unbounded"
    value = None if reason else round_minor(arpu * gm.gross_margin / churn)
    return Ltv(
        month=str(cur.month),
        currency=cur.currency,
        churn_window=len(series),
        customers=cur.customers,
        mrr=cur.mrr,
        arpu=cur.arpu if cur.customers else None,
        gross_margin=gm.gross_margin,
        churned_customers=churned,
        customer_months=base,
        avg_logo_churn=churn,
        ltv=value,
        reason=reason,
        warnings=list(dict.fromkeys([w for m in series for w in m.warnings] + gm.warnings)),
    )


def check_window(window: int, flag: str = "--churn-window") -> int:
    if window < 1:
        raise UsageError(f"{flag} must be at least 1 month, got {window}")
    return window


def ltv(conn: Connection, month: Month, currency: str, settings: Settings, *, churn_window: int = 6) -> Ltv:
    check_window(churn_window)
    require_tables(conn)
    series = month_series(conn, month.add(1 - churn_window), month, currency)
    return ltv_from(series, gross_margin(conn, month, currency, settings))


# ---------------------------------------------------------------- CAC and payback


@dataclass
class Cac:
    month: str
    currency: str
    sales_marketing: int
    new_customers: int
    cac: int | None
    arpu: int | None
    gross_margin: Decimal | None
    gross_profit_per_customer: int | None  # ARPU × gross margin, per month
    payback_months: Decimal | None
    reason: str | None
    warnings: list[str] = field(default_factory=list)


def cac_from(m: MonthMetrics, costs: MonthCosts, gm: GrossMargin) -> Cac:
    """CAC and payback from M's metrics, costs and gross margin (pure)."""
    sm = costs.sales_marketing
    exact_cac = ratio(sm, m.new_customers)
    arpu = _exact_arpu(m)
    profit = arpu * gm.gross_margin if arpu is not None and gm.gross_margin is not None else None
    reason = None
    payback = None
    if exact_cac is None:
        reason = f"no new customers in {m.month}: CAC is undefined"
    elif arpu is None:
        reason = f"no customers at the end of {m.month}: ARPU and payback are undefined"
    elif profit is None:
        reason = f"{gm.reason}; payback is undefined"
    elif profit <= 0:
        reason = "gross profit per customer is not positive: CAC is never paid back"
    else:
        payback = months_2dp(exact_cac / profit)
    return Cac(
        month=str(m.month),
        currency=m.currency,
        sales_marketing=sm,
        new_customers=m.new_customers,
        cac=round_minor(exact_cac) if exact_cac is not None else None,
        arpu=m.arpu if m.customers else None,
        gross_margin=gm.gross_margin,
        gross_profit_per_customer=round_minor(profit) if profit is not None else None,
        payback_months=payback,
        reason=reason,
        warnings=list(dict.fromkeys([
            *m.warnings,
            *gm.warnings,
            *([] if costs.has_imported else [no_costs_warning(m.month, "CAC counts no sales and marketing cost")]),
        ])),
    )


def cac(conn: Connection, month: Month, currency: str, settings: Settings) -> Cac:
    require_tables(conn)
    m = month_series(conn, month, month, currency)[0]
    revenue = revenue_by_stream(conn, month, currency, settings)
    costs = month_costs(conn, month, currency, settings)
    return cac_from(m, costs, gross_margin_from(revenue, costs))


# ---------------------------------------------------------------- break-even


@dataclass
class BreakEven:
    month: str
    currency: str
    fixed_costs: int
    fixed_costs_source: str  # 'pmfin_costs' or '--fixed-costs'
    variable_costs: int
    customers: int
    mrr: int
    arpu: int
    variable_cost_per_customer: int
    contribution_margin_per_customer: int
    breakeven_customers: int
    gap: int  # breakeven − customers: > 0 customers still needed, ≤ 0 already above break-even
    warnings: list[str] = field(default_factory=list)


def breakeven_from(m: MonthMetrics, costs: MonthCosts, fixed_costs: int | None = None) -> BreakEven:
    """Break-even customers (pure); UndefinedMetric (exit 2) without customers or contribution margin."""
    source = "pmfin_costs" if fixed_costs is None else "--fixed-costs"
    fixed = costs.fixed if fixed_costs is None else fixed_costs
    variable = costs.variable
    cur = m.currency
    if m.customers == 0:
        raise UndefinedMetric(
            f"no customers at the end of {m.month}: ARPU and variable cost per customer are undefined, "
            "so break-even cannot be computed"
        )
    # ARPU − variable cost per customer = (MRR − variable costs) ÷ customers, kept exact.
    margin_total = m.mrr - variable
    if margin_total <= 0:
        raise UndefinedMetric(
            f"contribution margin per customer is not positive in {m.month}: ARPU "
            f"{format_money(round_minor(Decimal(m.mrr) / m.customers), cur)} − variable cost per customer "
            f"{format_money(round_minor(Decimal(variable) / m.customers), cur)} = "
            f"{format_money(round_minor(Decimal(margin_total) / m.customers), cur)}; no number of customers breaks even"
        )
    needed = -((-fixed * m.customers) // margin_total)  # ceil(fixed ÷ (margin_total ÷ customers)), exact
    return BreakEven(
        month=str(m.month),
        currency=cur,
        fixed_costs=fixed,
        fixed_costs_source=source,
        variable_costs=variable,
        customers=m.customers,
        mrr=m.mrr,
        arpu=m.arpu,
        variable_cost_per_customer=round_minor(Decimal(variable) / m.customers),
        contribution_margin_per_customer=round_minor(Decimal(margin_total) / m.customers),
        breakeven_customers=needed,
        gap=needed - m.customers,
        warnings=list(dict.fromkeys([*m.warnings, *costs.warnings, *_breakeven_costs_warning(m, costs, fixed_costs)])),
    )


def _breakeven_costs_warning(m: MonthMetrics, costs: MonthCosts, fixed_costs: int | None) -> list[str]:
    """Without imported costs the fixed costs are 0 (unless --fixed-costs), and with --fixed-costs
    the variable costs are still only the computed lines."""
    if costs.has_imported:
        return []
    if fixed_costs is None:
        return [no_costs_warning(m.month, "fixed costs are 0 unless --fixed-costs is given")]
    return [no_costs_warning(m.month, "variable costs are only payment processing and email delivery")]


def breakeven(
    conn: Connection, month: Month, currency: str, settings: Settings, *, fixed_costs: int | None = None
) -> BreakEven:
    require_tables(conn)
    m = month_series(conn, month, month, currency)[0]
    return breakeven_from(m, month_costs(conn, month, currency, settings), fixed_costs)
