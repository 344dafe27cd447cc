"""``pmfin report``: revenue metrics and reports (DESIGN.md §3)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from pmfin.context import get_app
from pmfin.lazy import lazy_module
from pmfin.months import Month, report_month
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, stdout_console, warn

chart = lazy_module("pmfin.metrics.chart")
mrr_service = lazy_module("pmfin.metrics.mrr")
retention_service = lazy_module("pmfin.metrics.retention")


DEFINITIONS = """\
Definitions (the PenguinMails metric contract; choices as ChartMogul / Stripe Billing analytics make them):
a subscription or add-on row counts at the end of month M when it started before M ended,
had not ended (a row ending exactly at the first instant of M+1 still counts for M), and was
not in a trial (a trial ending exactly at M's end is still a trial). Status does not matter:
past_due counts until the row ends. Annual prices are divided by 12. A tenant's MRR is the
exact sum of its rows, rounded once to the cent, half to even. One-off payments, taxes, refunds
and Connect charges are not MRR. Amounts in other currencies are converted with the FX rate
of the month (pmfin fx import); without a rate they are left out, with a warning.

Finance reports: revenue is cash-basis (payments created in the month, refunds netted, a
Connect charge counts only as the platform's fee, disputed payments count as lost); gross
margin = (revenue − payment processing − email delivery − infrastructure − customer success)
÷ revenue; LTV divides by logo churn pooled over the trailing window; CAC counts first-time
customers only (a reactivation is not an acquisition). Each command's --help says more.
"""

app = typer.Typer(help="Revenue metrics and reports.\n\n" + DEFINITIONS, no_args_is_help=True)

CurrencyOption = Annotated[
    Optional[str],
    typer.Option("--currency", help="Reporting currency (default: PMFIN_CURRENCY, else usd).", show_default=False),
]
MonthOption = Annotated[
    Optional[str],
    typer.Option("--month", "-m", help="Month YYYY-MM (UTC). Default: the last complete month.", show_default=False),
]
FromOption = Annotated[
    Optional[str],
    typer.Option("--from", help="First month YYYY-MM. Default: 11 months before --to.", show_default=False),
]
ToOption = Annotated[
    Optional[str],
    typer.Option("--to", help="Last month YYYY-MM. Default: the last complete month.", show_default=False),
]

METRIC_COLUMNS = [
    Col("month"),
    Col("mrr", "MRR", kind="money"),
    Col("arr", "ARR", kind="money"),
    Col("customers", kind="int"),
    Col("arpu", "ARPU", kind="money"),
    Col("new", kind="money"),
    Col("reactivation", kind="money"),
    Col("expansion", kind="money"),
    Col("contraction", kind="money"),
    Col("churn", kind="money"),
    Col("net_new", "net new", kind="money"),
    Col("mom_growth", "MoM growth", kind="ratio"),
]
EXTRA_COLUMNS = [
    Col("prev_mrr", "MRR a month before", kind="money"),
    Col("prev_customers", "customers a month before", kind="int"),
    Col("new_customers", "new customers", kind="int"),
    Col("reactivated_customers", "reactivated customers", kind="int"),
    Col("churned_customers", "churned customers", kind="int"),
    Col("currency"),
]


def _currency(ctx: typer.Context, currency: str | None) -> str:
    return mrr_service.check_currency(currency or get_app(ctx).settings.currency)


def _span(first: str | None, last: str | None) -> tuple[Month, Month]:
    to = report_month(last, "--to")
    frm = Month.parse(first, flag="--from") if first is not None else to.add(-11)
    if to < frm:
        from pmfin.errors import UsageError

        raise UsageError(f"--from ({frm}) is after --to ({to})")
    return frm, to


_MISSING_RATE = re.compile(r"^no FX rate (\S+) for (\d{4}-\d{2}):")
_SHOWN_PER_PAIR = 3


def _warn_all(warnings: list[str]) -> None:
    """Each warning once; a currency pair missing its rate for many months is shown for the first
    few and then summed up in one line, so a year of movements does not print a page of them."""
    hidden: dict[str, list[str]] = {}
    shown: dict[str, int] = {}
    for w in dict.fromkeys(warnings):
        m = _MISSING_RATE.match(w)
        if m and shown.get(m.group(1), 0) >= _SHOWN_PER_PAIR:
            hidden.setdefault(m.group(1), []).append(m.group(2))
            continue
        if m:
            shown[m.group(1)] = shown.get(m.group(1), 0) + 1
        warn(w)
    for pair, months in hidden.items():
        warn(f"no FX rate {pair} for {len(months)} more month(s), {months[0]} … {months[-1]}: "
             "their amounts are left out too (import rates with `pmfin fx import`)")


@app.command("mrr", epilog=DEFINITIONS)
def mrr_cmd(ctx: typer.Context, month: MonthOption = None, currency: CurrencyOption = None,
            fmt: FormatOption = Format.table) -> None:
    """MRR, ARR, customers, ARPU and the MRR movements of one month.

    MRR is measured at the last instant of the month. Movements compare each tenant's MRR at
    the end of the month before (prev) with the end of this month (cur): new = cur when prev
    is 0 and the tenant never had MRR before (over all history); reactivation = cur when prev
    is 0 and it had; expansion = cur − prev when cur > prev > 0; contraction = prev − cur when
    prev > cur > 0; churn = prev when cur is 0. net new = MRR − previous MRR = new +
    reactivation + expansion − contraction − churn. Customers = tenants with MRR > 0;
    ARR = 12 × MRR; ARPU = MRR ÷ customers (rounded half-even; 0 without customers);
    MoM growth = net new ÷ previous MRR (empty when the previous MRR is 0).
    """
    m = mrr_service.month_metrics(get_app(ctx).engine, report_month(month), _currency(ctx, currency))
    _warn_all(m.warnings)
    render(m.as_row(), fmt, columns=METRIC_COLUMNS + EXTRA_COLUMNS, title=f"MRR {m.month}")



@app.command("movements", epilog=DEFINITIONS)
def movements_cmd(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    png: Annotated[
        Optional[Path],
        typer.Option("--png", help="Also write a chart (MRR line, movement bars) to this PNG file.", show_default=False),
    ] = None,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """MRR and its movements month by month, with a chart.

    One row per month from --from to --to, with the same figures as `pmfin report mrr`
    (computed in one query over all history, so "new" vs "reactivation" looks at every earlier
    month, not only the window). The table format adds a terminal chart: MRR bars, then the
    movements as a diverging bar (churn and contraction to the left, new, reactivation and
    expansion to the right). --png writes the same as an image for a deck (1800×1012 px).
    """
    frm, to = _span(first, last)
    series = mrr_service.month_series(get_app(ctx).engine, frm, to, _currency(ctx, currency))
    _warn_all([w for m in series for w in m.warnings])
    # For people the table leaves out ARR and ARPU (to fit a terminal); JSON and CSV have them.
    columns = [c for c in METRIC_COLUMNS if c.key not in ("arr", "arpu")] if fmt is Format.table else METRIC_COLUMNS
    render([m.as_row() for m in series], fmt, columns=columns + ([] if fmt is Format.table else EXTRA_COLUMNS),
           title=f"MRR movements {frm} – {to}")
    if fmt is Format.table:
        console = stdout_console(soft_wrap=False, highlight=False)
        console.print()
        for line in chart.terminal_lines(series):
            console.print(line)
    if png is not None:
        try:
            chart.write_png(series, png)
        except OSError as exc:
            from pmfin.errors import UsageError

            raise UsageError(f"cannot write {png}: {exc.strerror or exc}") from None
        note(f"wrote {png}")


@app.command("churn", epilog=DEFINITIONS)
def churn_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    tenants: Annotated[bool, typer.Option("--tenants", help="Also list who churned and who contracted.")] = False,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Logo churn, gross and net MRR churn of one month.

    Logo churn rate = customers lost in the month (MRR > 0 at the end of the month before, 0 at
    its end) ÷ customers at the end of the month before. Gross MRR churn rate = (churned MRR +
    contraction) ÷ MRR at the end of the month before; net MRR churn rate = (churned MRR +
    contraction − expansion) ÷ the same (negative when expansion outweighs losses). Rates are
    empty when there was nothing at the start. A downgrade is contraction, not churn; a tenant
    that leaves and comes back later is churn now and reactivation then.
    """
    engine = get_app(ctx).engine
    m = report_month(month)
    cur = _currency(ctx, currency)
    c = mrr_service.churn_metrics(engine, m, cur)
    _warn_all(c.warnings)
    columns = [
        Col("month"),
        Col("customers_start", "customers at start", kind="int"),
        Col("mrr_start", "MRR at start", kind="money"),
        Col("churned_customers", "churned customers", kind="int"),
        Col("churned_mrr", "churned MRR", kind="money"),
        Col("contraction", kind="money"),
        Col("contraction_customers", "contracted customers", kind="int"),
        Col("expansion", kind="money"),
        Col("logo_churn_rate", "logo churn rate", kind="ratio"),
        Col("gross_mrr_churn_rate", "gross MRR churn rate", kind="ratio"),
        Col("net_mrr_churn_rate", "net MRR churn rate", kind="ratio"),
        Col("currency"),
    ]
    row = c.as_row()
    row.pop("warnings")
    if not tenants:
        render(row, fmt, columns=columns, title=f"Churn {m}")
        return
    moves = [t for t in mrr_service.tenant_movements(engine, m, cur) if t.movement in ("churn", "contraction")]
    tenant_cols = [Col("tenant_id", "tenant id"), Col("name"), Col("prev", kind="money"), Col("cur", kind="money"),
                   Col("movement"), Col("amount", kind="money")]
    if fmt is not Format.table:  # for programs, money always has its currency beside it
        tenant_cols.append(Col("currency"))
    tenant_rows = [dict(vars(t)) for t in moves]
    render_sections(
        [(f"Churn {m}", row, columns), ("Churned and contracted tenants", tenant_rows, tenant_cols)],
        fmt,
        document={"churn": {k: row[k] for k in (c.key for c in columns)},
                  "tenants": [{k.key: r[k.key] for k in tenant_cols} for r in tenant_rows]},
    )


@app.command("retention", epilog=DEFINITIONS)
def retention_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    window: Annotated[int, typer.Option("--window", "-w", help="Window in months (≥ 1).")] = 12,
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Net and gross revenue retention (NRR, GRR) over a window ending at a month.

    The cohort is the tenants with MRR > 0 at the end of month − window (customers who start
    paying during the window are not in it). NRR = their MRR at the end of the month ÷ their
    MRR at the start (expansion counts, so it can exceed 100%); GRR = Σ per tenant
    min(end, start) ÷ the same start (expansion does not count: at most 100%).
    Empty when the cohort is empty.
    """
    r = retention_service.nrr_grr(get_app(ctx).engine, report_month(month), window, _currency(ctx, currency))
    _warn_all(r.warnings)
    row = r.as_row()
    row.pop("warnings")
    render(
        row,
        fmt,
        columns=[
            Col("month"), Col("window", "window (months)", kind="int"), Col("start_month", "cohort at end of"),
            Col("cohort_size", "cohort size", kind="int"), Col("start_mrr", "MRR at start", kind="money"),
            Col("end_mrr", "MRR at end", kind="money"), Col("retained_mrr", "retained MRR (Σ min)", kind="money"),
            Col("nrr", "NRR", kind="ratio"), Col("grr", "GRR", kind="ratio"), Col("currency"),
        ],
        title=f"Revenue retention {r.start_month} → {r.month}",
    )


@app.command("cohorts", epilog=DEFINITIONS)
def cohorts_cmd(
    ctx: typer.Context,
    first: FromOption = None,
    last: ToOption = None,
    by: Annotated[str, typer.Option("--by", help="Retention by 'logos' (customers) or 'revenue' (starting MRR).")] = "logos",
    currency: CurrencyOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The cohort retention matrix: one row per monthly cohort, one column per age in months.

    A tenant's cohort is the first month at whose end it had MRR > 0 (over all history). The
    value at age n is the share of the cohort with MRR > 0 at the end of cohort month + n:
    by logos, the share of its customers; by revenue, the share of its starting MRR (each
    member's MRR at the end of its cohort month) held by members still paying — expansion and
    contraction of the survivors do not move it (that is NRR's job). A tenant that comes back
    counts again. Cohorts are observed up to the end of --to.
    """
    frm, to = _span(first, last)
    matrix = retention_service.cohort_matrix(get_app(ctx).engine, frm, to, by, _currency(ctx, currency))
    _warn_all(matrix.warnings)
    if fmt is Format.json:
        render([c.as_row() | {"currency": matrix.currency} for c in matrix.cohorts], fmt)
        return
    ages = to - frm + 1
    rows = []
    for c in matrix.cohorts:
        row = {"cohort": str(c.cohort), "size": c.size, "starting_mrr": c.starting_mrr, "currency": matrix.currency}
        row.update({f"m{n}": (c.retention[n] if n < len(c.retention) else None) for n in range(ages)})
        rows.append(row)
    columns = [Col("cohort"), Col("size", kind="int"), Col("starting_mrr", "starting MRR", kind="money")]
    columns += [Col(f"m{n}", f"+{n}", kind="ratio") for n in range(ages)]
    if fmt is Format.csv:
        columns.append(Col("currency"))
    render(rows, fmt, columns=columns, title=f"Cohort retention by {by}, {frm} – {to}")


def _register_finance() -> None:
    # Unit economics, cash flow, revenue/costs and the executive summary live in their own module.
    from pmfin.commands import report_finance

    report_finance.register(app)


_register_finance()
