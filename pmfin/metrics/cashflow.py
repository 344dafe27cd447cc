"""Cash-flow projection (DESIGN.md §3): a pure engine, and its assumptions from the trailing history.

The engine (``project``), month t = 1 … n after the last month with actuals:

- subscriptions (projected MRR collected) = MRR₀ × (1 + growth − churn)ᵗ, where MRR₀ is the MRR at
  the end of the month before ``--from``; growth is the monthly MRR growth from new customers and
  expansion *before* churn, churn the monthly share of MRR lost (logo churn). MRR is assumed
  collected in the month it is earned (annual prepayments are spread as MRR).
- services and other inflows: the same amount every month.
- operations and marketing outflows = their base × (1 + cost growth)ᵗ; capex the same every month.
- net = inflows − outflows; ending cash = starting cash + net; the next month starts with it.
- runway = the number of months before the first month whose ending cash is below zero; "not
  within the horizon" when that never happens in the projected months.

Every amount is exact until it is rounded once per month and line (``round_minor``), so each row
of the table adds up exactly.

Assumptions from history (``assumptions_from_history``), over the ``window`` months before
``--from``: growth = average month-over-month net MRR growth + average logo churn (so that
growth − churn reproduces the historic net growth); churn = pooled logo churn (Σ churned ÷ Σ
customers at month start); services = average monthly services revenue; other = average monthly
marketplace + Connect platform fees + other revenue; operations = the last month's costs except
marketing, sales and capex (imported and computed); marketing = the last month's marketing +
sales; capex = average monthly ``capex`` costs; cost growth = average month-over-month change of
operations + marketing costs. Both growths follow one rule: the mean of the window's ``window``
month-over-month changes, each month against the one before it (so the first compares with the
month before the window), a change from zero left out. Each can be overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy.engine import Connection

from pmfin.errors import UsageError
from pmfin.metrics.amounts import ratio
from pmfin.metrics.costs import SALES_MARKETING, month_costs
from pmfin.metrics.finance import pooled_logo_churn
from pmfin.metrics.mrr import month_series, require_tables
from pmfin.metrics.revenue import revenue_by_stream
from pmfin.money import round_minor
from pmfin.months import Month
from pmfin.settings import Settings

MAX_MONTHS = 120
MIN_GROWTH = Decimal(-1)  # −100% a month: growth and cost growth cannot take away more than everything
MAX_GROWTH = Decimal(10)  # +1000% a month; beyond that a projection is meaningless (and 11¹²⁰ is already huge)


def parse_rate(text: str, flag: str, *, minimum: Decimal | None = None, maximum: Decimal | None = None) -> Decimal:
    """``0.05`` or ``5%`` → Decimal('0.05'); UsageError for anything else or outside the bounds."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        number = Decimal(raw[:-1].strip() if percent else raw)  # exact: no context, no overflow
    except InvalidOperation:
        raise UsageError(f"{flag} must be a rate like 0.05 or 5%, got {text!r}") from None
    if not number.is_finite():
        raise UsageError(f"{flag} must be a finite rate, got {text!r}")
    scale = 100 if percent else 1
    # Compare before dividing: "1e999999999%" must be out of range, not a decimal.Overflow.
    if minimum is not None and number < minimum * scale:
        raise UsageError(f"{flag} must be at least {minimum * 100:g}%, got {text!r}")
    if maximum is not None and number > maximum * scale:
        raise UsageError(f"{flag} must be at most {maximum * 100:g}%, got {text!r}")
    return number / 100 if percent else number


@dataclass(frozen=True)
class Assumptions:
    first: Month  # first projected month
    months: int
    currency: str
    starting_cash: int
    mrr: int  # MRR at the end of the month before ``first``
    growth: Decimal  # monthly MRR growth from new customers and expansion, before churn
    churn: Decimal  # monthly share of MRR lost
    services: int  # per month
    other: int  # per month
    operations: int  # at the end of the history; grows with cost_growth
    marketing: int  # marketing + sales; grows with cost_growth
    capex: int  # per month
    cost_growth: Decimal
    sources: dict[str, str] = field(default_factory=dict)  # assumption → 'history …' or 'flag'


@dataclass(frozen=True)
class ProjectedMonth:
    month: str
    currency: str
    starting_cash: int
    subscriptions: int
    services: int
    other: int
    inflows: int
    operations: int
    marketing: int
    capex: int
    outflows: int
    net: int
    ending_cash: int


@dataclass
class Projection:
    assumptions: Assumptions
    months: list[ProjectedMonth]
    runway_months: int | None  # None: cash stays ≥ 0 within the horizon
    cash_out_month: str | None  # the first month whose ending cash is negative
    runway: str  # for people
    warnings: list[str] = field(default_factory=list)


def project(a: Assumptions) -> Projection:
    """The month-by-month projection of ``a`` (pure: no database)."""
    if not 1 <= a.months <= MAX_MONTHS:
        raise UsageError(f"--months must be between 1 and {MAX_MONTHS}, got {a.months}")
    mrr_factor = max(Decimal(1) + a.growth - a.churn, Decimal(0))
    cost_factor = Decimal(1) + a.cost_growth
    cash = a.starting_cash
    rows: list[ProjectedMonth] = []
    runway: int | None = None
    out_month: str | None = None
    for t in range(1, a.months + 1):
        month = a.first.add(t - 1)
        subscriptions = round_minor(a.mrr * mrr_factor**t)
        operations = round_minor(a.operations * cost_factor**t)
        marketing = round_minor(a.marketing * cost_factor**t)
        inflows = subscriptions + a.services + a.other
        outflows = operations + marketing + a.capex
        net = inflows - outflows
        row = ProjectedMonth(
            str(month), a.currency, cash, subscriptions, a.services, a.other, inflows,
            operations, marketing, a.capex, outflows, net, cash + net,
        )
        rows.append(row)
        if row.ending_cash < 0 and runway is None:
            runway, out_month = t - 1, str(month)
        cash = row.ending_cash
    if runway is None:
        text = f"not within the horizon: cash stays at or above zero through {rows[-1].month}"
    else:
        text = f"{runway} month(s): cash runs out in {out_month}"
    return Projection(a, rows, runway, out_month, text)


def _average(values: list[int]) -> int:
    return round_minor(Decimal(sum(values)) / len(values)) if values else 0


def _mean(values: list[Decimal]) -> Decimal:
    return sum(values, Decimal(0)) / len(values) if values else Decimal(0)


def assumptions_from_history(
    conn: Connection,
    first: Month,
    months: int,
    currency: str,
    settings: Settings,
    *,
    starting_cash: int,
    window: int = 6,
    growth: Decimal | None = None,
    churn: Decimal | None = None,
    cost_growth: Decimal | None = None,
) -> tuple[Assumptions, list[str]]:
    """The projection's assumptions from the ``window`` months before ``first``; flags override."""
    require_tables(conn)
    last = first.prev()
    hist_first = first.add(-window)
    span = f"history {hist_first}…{last}"
    series = month_series(conn, hist_first, last, currency)
    revenue = [revenue_by_stream(conn, m.month, currency, settings) for m in series]
    # the month before the window too: each of its months has a change against the month before
    before, *costs = [month_costs(conn, hist_first.add(i), currency, settings) for i in range(-1, window)]
    warnings = list(dict.fromkeys(
        [w for m in series for w in m.warnings]
        + [w for r in revenue for w in r.warnings]
        + [w for c in (before, *costs) for w in c.warnings]
    ))

    # One rule for both growths: the mean of the window's month-over-month changes (each month
    # against the one before it), a change from zero left out.
    net_growth = _mean([m.mom_growth for m in series if m.mom_growth is not None])
    _, _, pooled = pooled_logo_churn(series)
    hist_churn = pooled or Decimal(0)
    opex = [c.total - c.amount(*SALES_MARKETING) - c.capex for c in costs]
    marketing = [c.amount(*SALES_MARKETING) for c in costs]
    spend = [c.total - c.capex for c in (before, *costs)]  # operations + marketing
    changes = [ratio(b - a, a) for a, b in zip(spend, spend[1:]) if a > 0]
    if not any(c.has_imported for c in costs):
        warnings.append(f"no costs imported for {hist_first}…{last}: outflows are only the computed costs (pmfin costs import)")

    sources = {
        "mrr": f"MRR at the end of {last}",
        "growth": f"{span}: average MoM net MRR growth {net_growth:.4%} (each month against the one before) + churn",
        "churn": f"{span}: pooled logo churn",
        "services": f"{span}: average services revenue",
        "other": f"{span}: average marketplace, Connect fee and other revenue",
        "operations": f"costs of {last} except marketing, sales, capex",
        "marketing": f"marketing + sales costs of {last}",
        "capex": f"{span}: average capex costs",
        "cost_growth": f"{span}: average MoM change of operations + marketing costs (each month against the one before)",
    }
    values = {"growth": net_growth + hist_churn, "churn": hist_churn, "cost_growth": _mean([c for c in changes if c is not None])}
    for name, given in (("growth", growth), ("churn", churn), ("cost_growth", cost_growth)):
        if given is not None:
            values[name] = given
            sources[name] = "flag"
    a = Assumptions(
        first=first,
        months=months,
        currency=currency,
        starting_cash=starting_cash,
        mrr=series[-1].mrr,
        growth=values["growth"],
        churn=values["churn"],
        services=_average([r.stream("services").net for r in revenue]),
        other=_average([r.net - r.recurring - r.stream("services").net for r in revenue]),
        operations=opex[-1],
        marketing=marketing[-1],
        capex=_average([c.capex for c in costs]),
        cost_growth=values["cost_growth"],
        sources=sources,
    )
    return a, warnings


def cash_flow(
    conn: Connection, first: Month, months: int, currency: str, settings: Settings, **given
) -> Projection:
    """Assumptions from the trailing history, overridden by the ``given`` keywords of
    ``assumptions_from_history`` (starting_cash, growth, churn, cost_growth, window), then the projection."""
    if not 1 <= months <= MAX_MONTHS:
        raise UsageError(f"--months must be between 1 and {MAX_MONTHS}, got {months}")
    a, warnings = assumptions_from_history(conn, first, months, currency, settings, **given)
    result = project(a)
    result.warnings = warnings
    return result


__all__ = ["Assumptions", "ProjectedMonth", "Projection", "assumptions_from_history", "cash_flow", "parse_rate", "project"]
