"""``pmfin reconcile``: fees and payments against Stripe's ledger, month by month (issue 8)."""

from __future__ import annotations

import getpass
from typing import Annotated, Optional

import typer

from pmfin.commands.common import TenantOption, parse_tenant, progress, stripe_client
from pmfin.context import get_app
from pmfin.errors import ProblemsFound
from pmfin.lazy import lazy_module
from pmfin.months import Month
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, to_plain

service = lazy_module("pmfin.stripe_ops.reconcile")

app = typer.Typer(
    help="Reconcile a month against Stripe's ledger, charge by charge: the fees Stripe took and the split "
    "of every Connect charge (`fees`), and every payments row against Stripe's charges (`payments`). "
    "Exit 1 when a difference is found, 0 when the month is clean.",
    no_args_is_help=True,
)
adjustments_app = typer.Typer(help="Adjustments proposed by `--record-adjustments`, for a person to approve or reject.",
                              no_args_is_help=True)
app.add_typer(adjustments_app, name="adjustments")

MonthOption = Annotated[str, typer.Option("--month", "-m", help="The month, YYYY-MM (UTC).", show_default=False)]
RecordOption = Annotated[bool, typer.Option("--record-adjustments", help="Propose one adjustment per difference (pmfin_reconcile_adjustments) for a person to approve; pmfin never writes payments.")]
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", "-j", min=1, max=16, help="Day slices of the month read at once (every request paced by PMFIN_STRIPE_RATE).")]
TOLERANCE_HELP = "Differences of at most this many minor units are accepted (PMFIN_RECONCILE_TOLERANCE, default 0: exact)."

DIFF_COLUMNS = [
    Col("kind"),
    Col("stripe_charge_id", "charge"),
    Col("tenant_id", "tenant"),
    Col("expected_text", "expected"),
    Col("actual_text", "actual"),
    Col("detail_text", "detail"),
]
CSV_COLUMNS = [Col("run"), Col("month"), Col("kind"), Col("stripe_charge_id"), Col("payment_id"), Col("tenant_id"),
               Col("expected"), Col("actual"), Col("currency"), Col("at_stake"), Col("detail")]


def _show(value, currency: str | None) -> str:
    from pmfin.money import format_money

    if isinstance(value, int) and currency:
        return format_money(value, currency)
    return "—" if value is None else str(value)


def _detail(d) -> str:
    parts = []
    for k, v in d.detail.items():
        if k == "fee_details" and isinstance(v, dict):
            v = ", ".join(f"{t} {_show(a, d.currency)}" for t, a in v.items()) or "—"
        parts.append(f"{k}: {v}")
    return "; ".join(parts)


def _render(report, fmt: Format, title: str) -> None:
    diffs = report.differences
    if fmt is Format.json:
        render({"run": report.run, "month": report.month, "kind": report.kind, "tenant_id": report.tenant_id,
                "resumed": report.resumed, "charges_read": report.charges_read, "summary": report.summary,
                "changes": report.changes, "differences": [
                    {"kind": d.kind, "stripe_charge_id": d.stripe_charge_id, "payment_id": d.payment_id,
                     "tenant_id": d.tenant_id, "expected": d.expected, "actual": d.actual, "currency": d.currency,
                     "at_stake": d.at_stake, "detail": d.detail} for d in diffs]}, fmt)
        return
    if fmt is Format.csv:
        render([{"run": report.run, "month": report.month, **to_plain(d)} for d in diffs], fmt, columns=CSV_COLUMNS)
        return
    s = report.summary
    head = {"run": report.run, "month": report.month, "charges read": f"{report.charges_read:,}" + (" (resumed)" if report.resumed else ""),
            "checked": s["checked"], "matched": s["matched"], "differences": s["differences"]}
    head.update({kind: n for kind, n in s["by_kind"].items()})
    stake = [{"tenant": x["tenant_id"] or "(no tenant)", "amount": x["amount"], "currency": x["currency"] or "usd"}
             for x in s["at_stake"]]
    rows = [{**to_plain(d), "expected_text": _show(d.expected, d.currency), "actual_text": _show(d.actual, d.currency),
             "detail_text": _detail(d)} for d in diffs]
    render_sections([
        (title, head, None),
        ("Amount at stake per tenant", stake, [Col("tenant"), Col("amount", kind="money"), Col("currency")]),
        ("Differences", rows, DIFF_COLUMNS),
    ], fmt)
    if report.changes is not None:
        c = report.changes
        note(f"since run {report.previous_run} of {report.month}: {len(c['resolved'])} resolved, {len(c['new'])} new, "
             f"{len(c['still_open'])} still open")
    if report.adjustments:
        note(f"{report.adjustments} adjustment(s) proposed: pmfin reconcile adjustments list --status proposed")


def _run(ctx: typer.Context, kind: str, month: str, tenant: str | None, record: bool, tolerance: int | None,
         concurrency: int, fmt: Format) -> None:
    from pmfin.fees import FeeModel

    m = Month.parse(month, flag="--month")
    tenant_id = parse_tenant(tenant)
    app_ctx = get_app(ctx)
    settings = app_ctx.settings
    tol = tolerance if tolerance is not None else settings.reconcile_tolerance
    with progress(f"reading Stripe's charges of {m}", enabled=fmt is Format.table) as advance:
        report = service.reconcile(app_ctx.engine, stripe_client(app_ctx), FeeModel.from_settings(settings), kind, m,
                                   tenant_id=str(tenant_id) if tenant_id else None, tolerance=tol,
                                   record_adjustments=record, on_page=lambda n: advance(None, n, 0),
                                   concurrency=concurrency)
    _render(report, fmt, f"Reconciliation of {kind}, {m}")
    if report.differences:
        raise ProblemsFound(f"{len(report.differences)} difference(s) in {kind} of {m} (run {report.run})")


@app.command("fees")
def fees_cmd(
    ctx: typer.Context,
    month: MonthOption,
    tenant: TenantOption = None,
    record_adjustments: RecordOption = False,
    tolerance: Annotated[Optional[int], typer.Option("--tolerance", min=0, help=TOLERANCE_HELP, show_default=False)] = None,
    concurrency: ConcurrencyOption = 4,
    fmt: FormatOption = Format.table,
) -> None:
    """Every succeeded Connect charge of the month against the fee model and the platform's
    records: fee_mismatch (Stripe's fee ≠ the model's; the detail gives fee_details by type),
    application_fee_mismatch (≠ the platform share), transfer_mismatch (the tenant's net ≠ its
    share, or the transfer went to another account), recorded_fee_mismatch (the payments row ≠
    Stripe, one per fee), negative_margin (the application fee does not cover Stripe's fee)."""
    _run(ctx, "fees", month, tenant, record_adjustments, tolerance, concurrency, fmt)


@app.command("payments")
def payments_cmd(
    ctx: typer.Context,
    month: MonthOption,
    tenant: TenantOption = None,
    record_adjustments: RecordOption = False,
    concurrency: ConcurrencyOption = 4,
    fmt: FormatOption = Format.table,
) -> None:
    """Every payments row of the month against Stripe's charges, matched by stripe_charge_id:
    missing_in_stripe, missing_in_db, amount_mismatch, currency_mismatch, status_mismatch,
    refund_mismatch. Both sides are read with a day's margin, so a charge the other side dated in
    the neighbouring month is matched, not missing."""
    _run(ctx, "payments", month, tenant, record_adjustments, None, concurrency, fmt)


@app.command("show")
def show_cmd(ctx: typer.Context, run: Annotated[int, typer.Argument(metavar="RUN", help="The run number.")],
             fmt: FormatOption = Format.table) -> None:
    """A past run: its summary and differences, and what changed since the run before it."""
    report = service.show_run(get_app(ctx).engine, run)
    _render(report, fmt, f"Reconciliation of {report.kind}, {report.month}")


ADJ_COLUMNS = [Col("id", kind="int"), Col("status"), Col("kind"), Col("tenant_id", "tenant"), Col("stripe_charge_id", "charge"),
               Col("field"), Col("current_value", "current"), Col("proposed_value", "proposed"), Col("action"),
               Col("decided_by", "decided by"), Col("note")]


@adjustments_app.command("list")
def adjustments_list(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option("--status", help="proposed, approved or rejected.", show_default=False)] = None,
    run: Annotated[Optional[int], typer.Option("--run", help="Only those of this run.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Proposed, approved and rejected adjustments."""
    rows = service.list_adjustments(get_app(ctx).engine, status=status, run_id=run)
    render(rows, fmt, columns=ADJ_COLUMNS if fmt is Format.table else None, title="Adjustments")


def _decide(ctx: typer.Context, adjustment: int, decision: str, note_text: str | None, fmt: Format) -> None:
    result = service.decide(get_app(ctx).engine, adjustment, decision, by=getpass.getuser(), note=note_text)
    render(result, fmt, columns=ADJ_COLUMNS if fmt is Format.table else None, title=f"Adjustment {adjustment}")


NoteOption = Annotated[Optional[str], typer.Option("--note", help="Why (kept with the decision).", show_default=False)]
AdjArg = Annotated[int, typer.Argument(metavar="ID", help="The adjustment's id.")]


@adjustments_app.command("approve")
def adjustments_approve(ctx: typer.Context, adjustment: AdjArg, note_text: NoteOption = None, fmt: FormatOption = Format.table) -> None:
    """Approve a proposed adjustment (recorded with who and when; the platform's team applies it)."""
    _decide(ctx, adjustment, "approve", note_text, fmt)


@adjustments_app.command("reject")
def adjustments_reject(ctx: typer.Context, adjustment: AdjArg, note_text: NoteOption = None, fmt: FormatOption = Format.table) -> None:
    """Reject a proposed adjustment."""
    _decide(ctx, adjustment, "reject", note_text, fmt)
