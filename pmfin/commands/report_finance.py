"""``pmfin report`` commands for revenue, costs, unit economics, cash flow and the executive summary.

Each command parses its flags, calls one service function of ``pmfin.metrics`` and renders.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Optional

import typer

from pmfin.context import get_app
from pmfin.errors import UsageError
from pmfin.money import format_money
from pmfin.months import Month, report_month
from pmfin.output import Col, Format, FormatOption, render, render_sections, warn

MonthOption = Annotated[
    Optional[str],
    typer.Option("--month", "-m", help="The month (YYYY-MM, UTC). Default: the last complete month.", show_default=False),
]


CurrencyOption = Annotated[
    Optional[str],
    typer.Option(
        "--currency",
        help="Reporting currency (default: PMFIN_CURRENCY, else usd). Other currencies are converted "
        "with the month's FX rate (pmfin fx) or left out with a warning.",
        show_default=False,
    ),
]


def _currency(ctx: typer.Context, value: str | None) -> str:
    from pmfin.metrics.mrr import check_currency

    return get_app(ctx).settings.currency if value is None else check_currency(value)


def _warn_all(warnings: list[str]) -> None:
    for w in warnings:
        warn(w)


# ---------------------------------------------------------------- revenue

REVENUE_COLUMNS = [  # for people; JSON and CSV also have the gross and the payment count
    Col("label", "stream"),
    Col("net", kind="money"),
    Col("share", kind="ratio"),
    Col("refunded", kind="money"),
    Col("disputed", kind="money"),
]
REVENUE_CSV_COLUMNS = [
    Col("stream"),
    Col("currency"),
    Col("payments", kind="int"),
    Col("gross", kind="money"),
    Col("refunded", kind="money"),
    Col("net", kind="money"),
    Col("share", kind="ratio"),
    Col("disputed", kind="money"),
]
REVENUE_TOTAL_COLUMNS = [
    Col("month"),
    Col("gross", kind="money"),
    Col("refunded", kind="money"),
    Col("net", "net revenue", kind="money"),
    Col("disputed", "disputed (lost)", kind="money"),
    Col("connect_volume", "Connect volume (tenants' money, net of refunds)", kind="money"),
]


def revenue_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Revenue of a month by stream: subscriptions, add-ons, services, marketplace, Connect platform fees.

    Cash basis: the payments created in the month; failed and pending payments are left out.
    Refunds are netted in the month of the payment (refunded_cents; the whole amount when the
    status is refunded). For Connect charges only the platform's application fee is revenue
    (connect_platform_share × amount where no fee was recorded); a refund reverses it in
    proportion; beside the revenue, Connect volume = the Connect charges net of their refunds (the
    tenants' money). Disputed payments are counted as lost while disputed: shown in their own
    column, not in net revenue or the shares. A payment without a known stream is 'other'.
    Share = the stream's net ÷ the month's net revenue.
    """
    from pmfin.metrics.revenue import revenue_by_stream

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    with app.engine.connect() as conn:
        report = revenue_by_stream(conn, m, cur, app.settings)
    _warn_all(report.warnings)
    if fmt is Format.csv:
        render(report.streams, fmt, columns=REVENUE_CSV_COLUMNS)
        return
    total = {k: getattr(report, k) for k in ("month", "currency", "gross", "refunded", "net", "disputed", "connect_volume")}
    render_sections(
        [(f"Revenue by stream, {m} ({cur.upper()})", report.streams, REVENUE_COLUMNS), ("Total", total, REVENUE_TOTAL_COLUMNS)],
        fmt,
        document=report,
    )


# ---------------------------------------------------------------- costs

COST_LINE_COLUMNS = [
    Col("category"),
    Col("kind"),
    Col("amount", kind="money"),
    Col("share", kind="ratio"),
    Col("computed", kind="bool"),
]
TREND_COLUMNS = [
    Col("month"),
    Col("fixed", kind="money"),
    Col("variable", kind="money"),
    Col("total", kind="money"),
    Col("change", "change vs month before", kind="ratio"),
]


def costs_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    trend: Annotated[int, typer.Option("--trend", min=1, max=60, help="Months of trend, ending with --month.")] = 6,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Cost structure of a month (fixed and variable, by category, share of total) and its trend.

    Imported costs come from pmfin_costs (pmfin costs import). Two variable lines are computed:
    payment_processing = Σ payments.fee_cents of the month's payments, and for a captured charge
    (succeeded, refunded, partially refunded, disputed) without a recorded fee the fee model
    PMFIN_STRIPE_FEE_PERCENT % × amount + the fixed fee of the charge's currency (PMFIN_STRIPE_FEE_FIXED; rounded once);
    email_delivery = emails with sent_at in the month × PMFIN_EMAIL_COST_CENTS (rounded once).
    The trend shows fixed, variable and total costs of the --trend months ending with --month,
    with the change of the total against the month before.
    """
    from pmfin.metrics.costs import cost_report

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    with app.engine.connect() as conn:
        report = cost_report(conn, m, cur, app.settings, trend=trend)
    _warn_all(report.warnings)
    lines = report.lines
    trend_rows = report.trend
    if fmt is Format.csv:
        render(lines, fmt, columns=[Col("category"), Col("kind"), Col("amount", kind="money"), Col("currency"), Col("share", kind="ratio"), Col("computed", kind="bool")])
        return
    summary = {
        "month": report.month,
        "currency": cur,
        "fixed": report.fixed,
        "variable": report.variable,
        "total": report.total,
        "emails_sent": report.emails_sent,
    }
    render_sections(
        [
            (f"Costs {m} ({cur.upper()})", lines, COST_LINE_COLUMNS),
            ("Total", summary, [Col("fixed", kind="money"), Col("variable", kind="money"), Col("total", kind="money"), Col("emails_sent", "emails sent", kind="int")]),
            (f"Trend, last {len(trend_rows)} months", trend_rows, TREND_COLUMNS),
        ],
        fmt,
        document=report,
    )


# ---------------------------------------------------------------- unit economics


def ltv_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    churn_window: Annotated[
        int, typer.Option("--churn-window", min=1, max=60, help="Months of churn history, ending with --month.")
    ] = 6,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Customer lifetime value: ARPU × gross margin ÷ average monthly logo churn.

    ARPU = MRR ÷ customers at the end of the month. Gross margin = (net revenue − cost of revenue)
    ÷ net revenue of the month, cost of revenue = payment processing + email delivery +
    infrastructure + customer_success (see report costs). Churn is pooled over the window:
    Σ churned customers ÷ Σ customers at the start of each month. With zero churn, no customers
    or no revenue LTV is undefined: ltv is null and reason says why (exit 0).
    """
    from pmfin.metrics.finance import ltv

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    with app.engine.connect() as conn:
        result = ltv(conn, m, cur, app.settings, churn_window=churn_window)
    _warn_all(result.warnings)
    render(
        result,
        fmt,
        columns=[
            Col("month"), Col("currency"), Col("ltv", "LTV", kind="money"), Col("reason"),
            Col("arpu", "ARPU", kind="money"), Col("gross_margin", "gross margin", kind="ratio"),
            Col("avg_logo_churn", "avg monthly logo churn", kind="ratio"), Col("churn_window", "churn window (months)", kind="int"),
            Col("churned_customers", "churned customers (window)", kind="int"),
            Col("customer_months", "customers at month starts (window)", kind="int"),
            Col("customers", kind="int"), Col("mrr", "MRR", kind="money"),
        ],
        title=f"LTV {m}",
    )


def cac_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Customer acquisition cost and payback months.

    CAC = sales & marketing costs of the month (categories marketing + sales in pmfin_costs)
    ÷ new customers of the month (first-time customers; reactivations are not acquisitions).
    Payback months = CAC ÷ (ARPU × gross margin), the months of gross profit a new customer
    needs to repay its acquisition. No new customers → CAC undefined (null, with the reason).
    """
    from pmfin.metrics.finance import cac

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    with app.engine.connect() as conn:
        result = cac(conn, m, cur, app.settings)
    _warn_all(result.warnings)
    render(
        result,
        fmt,
        columns=[
            Col("month"), Col("currency"), Col("cac", "CAC", kind="money"), Col("payback_months", "payback (months)", kind="decimal"),
            Col("reason"), Col("sales_marketing", "sales & marketing", kind="money"), Col("new_customers", "new customers", kind="int"),
            Col("arpu", "ARPU", kind="money"), Col("gross_margin", "gross margin", kind="ratio"),
            Col("gross_profit_per_customer", "gross profit per customer", kind="money"),
        ],
        title=f"CAC {m}",
    )


def breakeven_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    fixed_costs: Annotated[
        Optional[str],
        typer.Option("--fixed-costs", help="Monthly fixed costs (major units, e.g. 25000) instead of the month's fixed costs in pmfin_costs.", show_default=False),
    ] = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Break-even customers: ceil(fixed costs ÷ (ARPU − variable cost per customer)).

    Fixed costs: the month's fixed rows of pmfin_costs, or --fixed-costs. Variable cost per
    customer = the month's variable costs (imported variable rows + payment processing + email
    delivery) ÷ customers. Also shows current customers and the gap (customers still needed;
    zero or negative: at or above break-even). No customers, or a contribution margin
    (ARPU − variable cost per customer) ≤ 0, is an error with the reason (exit 2).
    """
    from pmfin.metrics.finance import breakeven
    from pmfin.money import parse_amount

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    fixed = parse_amount(fixed_costs, cur, what="--fixed-costs") if fixed_costs is not None else None
    with app.engine.connect() as conn:
        result = breakeven(conn, m, cur, app.settings, fixed_costs=fixed)
    _warn_all(result.warnings)
    render(
        result,
        fmt,
        columns=[
            Col("month"), Col("currency"), Col("breakeven_customers", "break-even customers", kind="int"),
            Col("customers", "current customers", kind="int"), Col("gap", "gap (customers needed)", kind="int"),
            Col("fixed_costs", "fixed costs", kind="money"), Col("fixed_costs_source", "fixed costs from"),
            Col("arpu", "ARPU", kind="money"), Col("variable_cost_per_customer", "variable cost per customer", kind="money"),
            Col("contribution_margin_per_customer", "contribution margin per customer", kind="money"),
            Col("variable_costs", "variable costs", kind="money"), Col("mrr", "MRR", kind="money"),
        ],
        title=f"Break-even {m}",
    )


# ---------------------------------------------------------------- cash flow

PROJECTION_COLUMNS = [
    Col("month"),
    Col("currency"),
    Col("starting_cash", kind="money"),
    Col("subscriptions", kind="money"),
    Col("services", kind="money"),
    Col("other", kind="money"),
    Col("inflows", kind="money"),
    Col("operations", kind="money"),
    Col("marketing", kind="money"),
    Col("capex", kind="money"),
    Col("outflows", kind="money"),
    Col("net", kind="money"),
    Col("ending_cash", kind="money"),
]


def _projection_tables(months, cur: str) -> list[tuple[str, list[dict], list[Col]]]:
    """For people: two narrow tables in whole major units (JSON and CSV keep minor units)."""
    from pmfin.money import exponent, round_minor

    unit = 10 ** exponent(cur)

    def rows(keys: tuple[str, ...]) -> list[dict]:
        return [{"month": m.month, **{k: round_minor(Decimal(getattr(m, k)) / unit) for k in keys}} for m in months]

    cash = ("starting_cash", "inflows", "outflows", "net", "ending_cash")
    flows = ("subscriptions", "services", "other", "operations", "marketing", "capex")
    headers = {"starting_cash": "start", "inflows": "in", "outflows": "out", "ending_cash": "end", "subscriptions": "MRR collected"}
    return [
        (f"Cash ({cur.upper()}, whole units)", rows(cash), [Col("month"), *(Col(k, headers.get(k), kind="int") for k in cash)]),
        ("Inflows and outflows", rows(flows), [Col("month"), *(Col(k, headers.get(k), kind="int") for k in flows)]),
    ]


def _rate(value: str | None, flag: str, **bounds):
    from pmfin.metrics.cashflow import parse_rate

    return parse_rate(value, flag, **bounds) if value is not None else None


def cashflow_cmd(
    ctx: typer.Context,
    first: Annotated[str, typer.Option("--from", help="First projected month (YYYY-MM); history is the months before it.", show_default=False)],
    starting_cash: Annotated[str, typer.Option("--starting-cash", help="Cash at the start of --from (major units, e.g. 250000).", show_default=False)],
    months: Annotated[int, typer.Option("--months", help="Months to project (1–120).")] = 12,
    growth: Annotated[Optional[str], typer.Option("--growth", help="Monthly MRR growth from new customers and expansion, before churn (0.05 or 5%).", show_default=False)] = None,
    churn: Annotated[Optional[str], typer.Option("--churn", help="Monthly share of MRR lost to churn (0.02 or 2%).", show_default=False)] = None,
    cost_growth: Annotated[Optional[str], typer.Option("--cost-growth", help="Monthly growth of operations and marketing costs (0.01 or 1%).", show_default=False)] = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Month-by-month cash-flow projection and runway.

    Each month: starting cash + inflows (subscriptions = projected MRR, assumed collected;
    services; other = marketplace, Connect platform fees, other) − outflows (operations = all
    costs but marketing, sales and capex; marketing = marketing + sales; capex) = ending cash.
    MRR grows by (1 + growth − churn) a month; operations and marketing by (1 + cost growth).

    Assumptions come from the 6 months before --from and are printed with the result: growth =
    average MoM net MRR growth + churn; churn = pooled logo churn; services and other = their
    monthly averages; operations and marketing = the last month's; capex = the monthly average of
    the capex category; cost growth = average MoM change of operations + marketing. Both growths
    average the 6 month-over-month changes of those months (each against the month before; a change
    from zero left out). --growth, --churn and --cost-growth override them. Runway = months before the first month whose ending
    cash is below zero, or "not within the horizon".
    """
    from pmfin.metrics.cashflow import MAX_GROWTH, MAX_MONTHS, MIN_GROWTH, cash_flow
    from pmfin.money import parse_amount

    start = Month.parse(first, flag="--from")
    if start > Month.current().next():  # its history (the months before it) would not have happened yet
        raise UsageError(f"--from must not be after the month after the current one ({Month.current().next()}), "
                         f"got '{start}'")
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    # A negative balance is refused: the runway would be "0 month(s)" for cash already gone.
    cash = parse_amount(starting_cash, cur, what="--starting-cash")
    if not 1 <= months <= MAX_MONTHS:
        raise UsageError(f"--months must be between 1 and {MAX_MONTHS}, got {months}")
    g = _rate(growth, "--growth", minimum=MIN_GROWTH, maximum=MAX_GROWTH)
    c = _rate(churn, "--churn", minimum=Decimal(0), maximum=Decimal(1))
    cg = _rate(cost_growth, "--cost-growth", minimum=MIN_GROWTH, maximum=MAX_GROWTH)
    with app.engine.connect() as conn:
        result = cash_flow(conn, start, months, cur, app.settings, starting_cash=cash, growth=g, churn=c, cost_growth=cg)
    _warn_all(result.warnings)
    a = result.assumptions
    assumptions = [
        {"assumption": "starting cash", "value": format_money(a.starting_cash, cur), "source": "--starting-cash"},
        {"assumption": "MRR", "value": format_money(a.mrr, cur), "source": a.sources["mrr"]},
        {"assumption": "growth", "value": _pct(a.growth), "source": a.sources["growth"]},
        {"assumption": "churn", "value": _pct(a.churn), "source": a.sources["churn"]},
        {"assumption": "services / month", "value": format_money(a.services, cur), "source": a.sources["services"]},
        {"assumption": "other / month", "value": format_money(a.other, cur), "source": a.sources["other"]},
        {"assumption": "operations", "value": format_money(a.operations, cur), "source": a.sources["operations"]},
        {"assumption": "marketing", "value": format_money(a.marketing, cur), "source": a.sources["marketing"]},
        {"assumption": "capex / month", "value": format_money(a.capex, cur), "source": a.sources["capex"]},
        {"assumption": "cost growth", "value": _pct(a.cost_growth), "source": a.sources["cost_growth"]},
    ]
    if fmt is Format.csv:
        render(result.months, fmt, columns=PROJECTION_COLUMNS)
        return
    render_sections(
        [
            ("Assumptions", assumptions, [Col("assumption"), Col("value"), Col("source")]),
            *_projection_tables(result.months, cur),
            ("Runway", {"runway": result.runway}, None),
        ],
        fmt,
        document=result,
    )


def _pct(value: Decimal) -> str:
    return f"{value * 100:.2f}%"


# ---------------------------------------------------------------- executive summary


def summary_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    cash: Annotated[
        Optional[str],
        typer.Option("--cash", help="Cash balance now (major units), for the runway. Default: PMFIN_CASH "
                     "(environment or .env).", show_default=False),
    ] = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The executive overview (the Financial Dashboard): MRR, ARR, NRR, gross margin, runway, revenue, growth, costs, burn, CAC.

    MRR with its MoM growth; ARR with its growth against 12 months before; NRR over 12 months;
    gross margin as report ltv; revenue breakdown as report revenue; growth trends = the month's
    MRR movements; cost structure as report costs. Total burn = all costs of the month; burn rate
    = average net burn (costs − net revenue) of the last 3 months; cash runway = --cash ÷ burn
    rate (unknown without --cash; not limited when the burn rate is ≤ 0). CAC and payback as
    report cac. JSON: one document with the keys overview, revenue_breakdown, growth,
    cost_structure, burn, unit_economics, warnings. CSV: one block per section (metric, value,
    currency, note); money in integer minor units, ratios and months as plain numbers, an
    undefined value empty with the reason in note. --cash must not be negative.
    """
    from pmfin.metrics.summary import executive_summary
    from pmfin.money import parse_amount

    m = report_month(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    # A negative balance is refused: cash ÷ burn rate would be a negative runway.
    if cash is not None:  # the flag, then PMFIN_CASH from the environment or .env
        balance: int | None = parse_amount(cash, cur, what="--cash")
    elif app.settings.cash is not None:
        balance = parse_amount(app.settings.cash, cur, what="PMFIN_CASH")
    else:
        balance = None
    with app.engine.connect() as conn:
        s = executive_summary(conn, m, cur, app.settings, cash=balance)
    _warn_all(s.warnings)
    if fmt is Format.csv:
        _summary_csv(s)
        return
    o = s.overview
    overview = [
        {"metric": "MRR", "value": format_money(o.mrr, cur), "trend": _trend(o.mrr_mom_growth, "MoM")},
        {"metric": "ARR", "value": format_money(o.arr, cur), "trend": _trend(o.arr_yoy_growth, "YoY")},
        {"metric": "NRR (12 months)", "value": _pct_or(o.nrr), "trend": ""},
        {"metric": "Gross Margin", "value": _pct_or(o.gross_margin), "trend": ""},
        {"metric": "Customers", "value": f"{o.customers:,}", "trend": ""},
        {"metric": "Cash Runway", "value": o.runway, "trend": ""},
    ]
    g = s.growth
    growth_rows = [
        {"metric": "New Customers", "value": f"{g.new_customers:,} this month"},
        {"metric": "New MRR", "value": format_money(g.new_mrr, cur)},
        {"metric": "Expansion Revenue", "value": format_money(g.expansion, cur)},
        {"metric": "Churned Revenue", "value": f"{format_money(g.churned_revenue, cur)} ({g.churned_customers:,} customers)"},
        {"metric": "Contraction", "value": format_money(g.contraction, cur)},
        {"metric": "Net New MRR", "value": format_money(g.net_new_mrr, cur)},
    ]
    b, u = s.burn, s.unit_economics
    trend_rows = [
        {"metric": "Total Burn", "value": f"{format_money(b.total_burn, cur)} this month"},
        {"metric": "Burn Rate", "value": f"{format_money(b.burn_rate, cur)} per month (net, {b.burn_months[0]}…{b.burn_months[-1]})"},
        {"metric": "CAC", "value": f"{format_money(u.cac, cur)} per customer" if u.cac is not None else f"undefined: {u.reason}"},
        {"metric": "CAC Payback", "value": f"{u.payback_months} months" if u.payback_months is not None else f"undefined: {u.reason}"},
    ]
    metric_cols = [Col("metric"), Col("value")]
    render_sections(
        [
            (f"Financial Overview {s.month} ({cur.upper()})", overview, [Col("metric"), Col("value"), Col("trend")]),
            ("Revenue Breakdown", s.revenue_breakdown, [Col("label", "stream"), Col("net", kind="money"), Col("share", "of total", kind="ratio")]),
            ("Growth Trends", growth_rows, metric_cols),
            ("Cost Structure", s.cost_structure, [Col("category"), Col("kind"), Col("amount", kind="money"), Col("share", "of total", kind="ratio")]),
            ("Cost Trends", trend_rows, metric_cols),
        ],
        fmt,
        document=s,
    )


SUMMARY_METRIC_COLUMNS = [Col("metric"), Col("value"), Col("currency"), Col("note")]


def _number(value: Decimal | None) -> str | None:
    """A ratio or a number of months for CSV: fixed-point digits, never 6.3e-05."""
    return None if value is None else format(value, "f")


def _metric(metric: str, value, currency: str = "", note: str | None = None) -> dict:
    if isinstance(value, Decimal):
        value = _number(value)
    return {"metric": metric, "value": value, "currency": currency, "note": note}


def _summary_csv(s) -> None:
    """The summary as machine data: money in integer minor units with its currency, ratios and
    months as plain numbers; the metric names are the JSON keys. An undefined value is empty,
    with the reason in ``note``."""
    cur, o, g, b, u = s.currency, s.overview, s.growth, s.burn, s.unit_economics
    overview = [
        _metric("mrr", o.mrr, cur),
        _metric("mrr_mom_growth", o.mrr_mom_growth),
        _metric("arr", o.arr, cur),
        _metric("arr_yoy_growth", o.arr_yoy_growth),
        _metric("nrr", o.nrr),
        _metric("gross_margin", o.gross_margin),
        _metric("customers", o.customers),
        _metric("cash", o.cash, cur),
        _metric("runway_months", o.runway_months, note=o.runway),
    ]
    growth = [
        _metric("new_customers", g.new_customers),
        _metric("new_mrr", g.new_mrr, cur),
        _metric("reactivation", g.reactivation, cur),
        _metric("expansion", g.expansion, cur),
        _metric("contraction", g.contraction, cur),
        _metric("churned_customers", g.churned_customers),
        _metric("churned_revenue", g.churned_revenue, cur),
        _metric("net_new_mrr", g.net_new_mrr, cur),
    ]
    span = f"{b.burn_months[0]}…{b.burn_months[-1]}"
    burn = [
        _metric("total_burn", b.total_burn, cur, f"all costs of {s.month}"),
        _metric("revenue", b.revenue, cur, f"net revenue of {s.month}"),
        _metric("net_burn", b.net_burn, cur, f"{s.month}"),
        _metric("burn_rate", b.burn_rate, cur, f"average net burn {span}"),
    ]
    unit = [
        _metric("sales_marketing", u.sales_marketing, cur),
        _metric("new_customers", u.new_customers),
        _metric("cac", u.cac, cur, u.reason if u.cac is None else None),
        _metric("payback_months", u.payback_months, note=u.reason if u.payback_months is None else None),
    ]
    revenue = [{**vars(r), "share": _number(r.share)} for r in s.revenue_breakdown]
    costs = [{**vars(c), "share": _number(c.share)} for c in s.cost_structure]
    render_sections(
        [
            (f"overview {s.month}", overview, SUMMARY_METRIC_COLUMNS),
            ("revenue_breakdown", revenue, [Col("stream"), Col("currency"), Col("net", kind="money"), Col("share", kind="ratio")]),
            ("growth", growth, SUMMARY_METRIC_COLUMNS),
            ("cost_structure", costs, [Col("category"), Col("kind"), Col("currency"), Col("amount", kind="money"), Col("share", kind="ratio")]),
            ("burn", burn, SUMMARY_METRIC_COLUMNS),
            ("unit_economics", unit, SUMMARY_METRIC_COLUMNS),
        ],
        Format.csv,
    )


def _pct_or(value: Decimal | None) -> str:
    return "undefined" if value is None else f"{value * 100:.1f}%"


def _trend(value: Decimal | None, label: str) -> str:
    if value is None:
        return f"— {label}"
    arrow = "↑" if value > 0 else "↓" if value < 0 else "→"
    return f"{arrow}{abs(value) * 100:.1f}% {label}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``pmfin report`` app."""
    app.command("revenue")(revenue_cmd)
    app.command("costs")(costs_cmd)
    app.command("ltv")(ltv_cmd)
    app.command("cac")(cac_cmd)
    app.command("breakeven")(breakeven_cmd)
    app.command("cashflow")(cashflow_cmd)
    app.command("summary")(summary_cmd)
