"""``pmfin report`` commands for revenue, costs, unit economics, cash flow and the executive summary.

Each command parses its flags, calls one service function of ``pmfin.metrics`` and renders.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.context import get_app
from pmfin.months import Month
from pmfin.output import Col, Format, FormatOption, render, render_sections, warn

MonthOption = Annotated[str, typer.Option("--month", "-m", help="The month (YYYY-MM, UTC).", show_default=False)]
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
    from pmfin.errors import UsageError

    if value is None:
        return get_app(ctx).settings.currency
    cur = value.strip().lower()
    if len(cur) != 3 or not cur.isalpha():
        raise UsageError(f"--currency must be a 3-letter ISO code like usd, got {value!r}")
    return cur


def _warn_all(warnings: list[str]) -> None:
    for w in warnings:
        warn(w)


# ---------------------------------------------------------------- revenue

REVENUE_COLUMNS = [
    Col("label", "stream"),
    Col("payments", kind="int"),
    Col("gross", kind="money"),
    Col("refunded", kind="money"),
    Col("net", kind="money"),
    Col("share", kind="ratio"),
    Col("disputed", kind="money"),
]
REVENUE_CSV_COLUMNS = [Col("stream"), Col("currency"), *REVENUE_COLUMNS[1:]]
REVENUE_TOTAL_COLUMNS = [
    Col("month"),
    Col("gross", kind="money"),
    Col("refunded", kind="money"),
    Col("net", "net revenue", kind="money"),
    Col("disputed", "disputed (lost)", kind="money"),
    Col("connect_volume", "Connect volume (tenants' money)", kind="money"),
]


def revenue_cmd(
    ctx: typer.Context,
    month: MonthOption,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Revenue of a month by stream: subscriptions, add-ons, services, marketplace, Connect platform fees.

    Cash basis: the payments created in the month; failed and pending payments are left out.
    Refunds are netted in the month of the payment (refunded_cents; the whole amount when the
    status is refunded). For Connect charges only the platform's application fee is revenue
    (connect_platform_share × amount where no fee was recorded); a refund reverses it in
    proportion. Disputed payments are counted as lost while disputed: shown in their own column,
    not in net revenue or the shares. A payment without a known stream is 'other'.
    Share = the stream's net ÷ the month's net revenue.
    """
    from pmfin.metrics.revenue import revenue_by_stream

    m = Month.parse(month)
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
    Col("amount_cents", "amount", kind="money"),
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
    month: MonthOption,
    trend: Annotated[int, typer.Option("--trend", min=1, max=60, help="Months of trend, ending with --month.")] = 6,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Cost structure of a month (fixed and variable, by category, share of total) and its trend.

    Imported costs come from pmfin_costs (pmfin costs import). Two variable lines are computed:
    payment_processing = Σ payments.fee_cents of the month's payments, and for a captured charge
    (succeeded, refunded, partially refunded, disputed) without a recorded fee the fee model
    PMFIN_STRIPE_FEE_PERCENT % × amount + PMFIN_STRIPE_FEE_FIXED_CENTS (rounded once);
    email_delivery = emails with sent_at in the month × PMFIN_EMAIL_COST_CENTS (rounded once).
    The trend shows fixed, variable and total costs of the --trend months ending with --month,
    with the change of the total against the month before.
    """
    from pmfin.metrics.costs import cost_report

    m = Month.parse(month)
    app = get_app(ctx)
    cur = _currency(ctx, currency)
    with app.engine.connect() as conn:
        report = cost_report(conn, m, cur, app.settings, trend=trend)
    _warn_all(report.warnings)
    lines = [{**vars(line), "currency": cur} for line in report.lines]
    trend_rows = report.trend
    if fmt is Format.csv:
        render(lines, fmt, columns=[Col("category"), Col("kind"), Col("amount_cents", kind="money"), Col("currency"), Col("share", kind="ratio"), Col("computed", kind="bool")])
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


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``pmfin report`` app."""
    app.command("revenue")(revenue_cmd)
    app.command("costs")(costs_cmd)
