"""``pmfin invoices``: tenants' invoices at Stripe — list, show, pay, void, PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pmfin.commands.common import QueueOption, TenantOption, YesOption, confirm, parse_tenant, queue_instead, stripe_client
from pmfin.context import get_app
from pmfin.errors import PmfinError, UsageError
from pmfin.instants import parse_date
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections

service = lazy_module("pmfin.stripe_ops.invoices")

app = typer.Typer(
    help="Tenants' invoices at Stripe: list, show (lines, attempts, the dunning case), pay one with a "
    "saved card, void, download the PDF.",
    no_args_is_help=True,
)

InvoiceArg = Annotated[str, typer.Argument(metavar="ID", help="Stripe invoice id (in_…).", show_default=False)]

LIST_COLUMNS = [
    Col("id"),
    Col("number"),
    Col("tenant_name", "tenant"),
    Col("status"),
    Col("amount_due", "due", kind="money"),
    Col("amount_paid", "paid", kind="money"),
    Col("amount_remaining", "remaining", kind="money"),
    Col("attempt_count", "attempts", kind="int"),
    Col("created"),
]
JSON_COLUMNS = [
    Col("id"), Col("number"), Col("status"), Col("tenant_id"), Col("tenant_name"), Col("customer_id"), Col("currency"),
    Col("total"), Col("amount_due"), Col("amount_paid"), Col("amount_remaining"), Col("attempt_count"),
    Col("created"), Col("due_date"), Col("hosted_invoice_url"), Col("invoice_pdf"),
]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    status: Annotated[
        Optional[str], typer.Option("--status", help="draft, open, paid, uncollectible or void.", show_default=False)
    ] = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Created on or after this date (YYYY-MM-DD, UTC).", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Invoices newest first, with their tenant (matched by `tenant_config.stripe_customer_id`)."""
    tenant_id = parse_tenant(tenant)
    status_ = service.parse_status(status) if status is not None else None
    since_ = parse_date(since, flag="--since") if since is not None else None
    app_ctx = get_app(ctx)
    rows = service.list_invoices(app_ctx.engine, stripe_client(app_ctx), tenant_id=tenant_id, status=status_, since=since_)
    render(rows, fmt, columns=LIST_COLUMNS if fmt is Format.table else JSON_COLUMNS, title="Invoices")


@app.command("show")
def show_cmd(ctx: typer.Context, invoice: InvoiceArg, fmt: FormatOption = Format.table) -> None:
    """One invoice: lines, tax and totals, amounts due/paid/remaining, Stripe's payments, every
    attempt pmfin made (when, card, outcome, decline code), the dunning case, hosted page, PDF."""
    invoice_id = service.parse_invoice_id(invoice)
    app_ctx = get_app(ctx)
    d = service.show_invoice(app_ctx.engine, stripe_client(app_ctx), invoice_id)
    if fmt is Format.json:
        render(d, fmt)
        return
    head = [
        Col("id"), Col("number"), Col("status"), Col("tenant_name", "tenant"), Col("tenant_id", "tenant id"),
        Col("customer_id", "customer"), Col("subtotal", kind="money"), Col("tax", kind="money"), Col("total", kind="money"),
        Col("amount_due", "amount due", kind="money"), Col("amount_paid", "amount paid", kind="money"),
        Col("amount_remaining", "amount remaining", kind="money"), Col("attempt_count", "Stripe attempt count", kind="int"),
        Col("created"), Col("due_date", "due"), Col("hosted_invoice_url", "hosted page"), Col("invoice_pdf", "PDF"),
    ]
    sections = [
        (f"Invoice {d.number or d.id}", d, head),
        ("Lines", [dict(vars(li), currency=li.currency) for li in d.lines],
         [Col("description"), Col("quantity", kind="int"), Col("amount", kind="money"), Col("period_start", "from"),
          Col("period_end", "to"), Col("proration", kind="bool")]),
        ("Stripe payments", [dict(vars(p), currency=d.currency) for p in d.payments],
         [Col("id"), Col("status"), Col("amount_requested", "requested", kind="money"), Col("amount_paid", "paid", kind="money"),
          Col("payment"), Col("created"), Col("paid_at", "paid at")]),
        ("Attempts by pmfin", d.attempts,
         [Col("started_at", "when"), Col("origin"), Col("slot", kind="int"), Col("card"), Col("payment_method_id", "payment method"),
          Col("outcome"), Col("code"), Col("decline_code", "decline code"), Col("message")]),
    ]
    if d.case is not None:
        sections.append(("Dunning case", d.case, CASE_COLUMNS))
    render_sections(sections, fmt)
    if d.case is None and fmt is Format.table:
        note("no dunning case for this invoice")


CASE_COLUMNS = [
    Col("status"), Col("stage"), Col("day0", "day 0"), Col("day", kind="int"), Col("amount_due", "amount due", kind="money"),
    Col("attempts", kind="int"), Col("next_attempt", "next attempt"), Col("close_reason", "closed as"),
]


@app.command("pay")
def pay_cmd(
    ctx: typer.Context,
    invoice: InvoiceArg,
    payment_method: Annotated[
        Optional[str],
        typer.Option("--payment-method", help="A saved card of the customer (pm_…). Default: the invoice's, else the customer's default.", show_default=False),
    ] = None,
    queue: QueueOption = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Try once to pay an open invoice with one saved card (off-session).

    Exit 0 paid; 1 declined (the reason on stderr); 2 not payable (paid, void, draft) or bad
    input. The request carries the idempotency key `pmfin:invoices:pay:<invoice>:<attempt
    count>:<pm>`, recorded before it is sent: a rerun after a lost answer sends the same key
    again and gets Stripe's stored answer, never a second charge."""
    invoice_id = service.parse_invoice_id(invoice)
    pm = service.parse_payment_method(payment_method) if payment_method is not None else None
    app_ctx = get_app(ctx)
    try:
        result = service.pay_invoice(app_ctx.engine, stripe_client(app_ctx), app_ctx.settings, invoice_id, payment_method=pm)
    except PmfinError as err:
        from pmfin.instants import utc_now
        from pmfin.stripe_ops.outbox import queued_pay_key

        if queue and queue_instead(app_ctx, err, "invoices.pay", {"invoice_id": invoice_id, "payment_method": pm},
                                   queued_pay_key(invoice_id, pm, utc_now()), tenant_id=None, fmt=fmt):
            return
        raise
    render(result, fmt, columns=[
        Col("invoice_id", "invoice"), Col("number"), Col("tenant_id", "tenant"), Col("amount", kind="money"),
        Col("card"), Col("payment_method", "payment method"), Col("outcome"), Col("reason"), Col("message"),
        Col("idempotency_key", "idempotency key"), Col("replayed", "answer replayed", kind="bool"),
        Col("case_closed", "dunning case closed", kind="bool"), Col("hosted_invoice_url", "hosted page"),
    ], title="Invoice payment")
    if result.outcome == "declined":
        raise PmfinError(f"invoice {invoice_id} was declined on {result.card} ({result.reason}): {result.message or ''}".rstrip(": "),
                         exit_code=1)
    if result.outcome != "succeeded":
        raise UsageError(f"Stripe refused to pay invoice {invoice_id} ({result.reason}): {result.message or ''}".rstrip(": "))


@app.command("void")
def void_cmd(ctx: typer.Context, invoice: InvoiceArg, yes: YesOption = False, fmt: FormatOption = Format.table) -> None:
    """Void an open or uncollectible invoice (Stripe cannot undo this). Asks on a terminal;
    without one only with --yes. An open dunning case for it is written off."""
    invoice_id = service.parse_invoice_id(invoice)
    app_ctx = get_app(ctx)
    client = stripe_client(app_ctx)
    inv = service.preview_void(client, invoice_id)
    from pmfin.money import format_money

    amount = format_money(int(inv.get("amount_due") or 0), (inv.get("currency") or "usd").lower())
    confirm(f"Void invoice {inv.get('number') or invoice_id} ({amount}, customer {inv.get('customer')})?", yes=yes)
    result = service.void_invoice(app_ctx.engine, client, app_ctx.settings, invoice_id)
    render(result, fmt, columns=[Col("invoice_id", "invoice"), Col("number"), Col("status"), Col("amount_due", "amount", kind="money"),
                                 Col("case_closed", "dunning case written off", kind="bool")], title="Invoice voided")


@app.command("pdf")
def pdf_cmd(
    ctx: typer.Context,
    invoice: InvoiceArg,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write. Default: <invoice number>.pdf here.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Download the invoice's PDF and check that it is one."""
    invoice_id = service.parse_invoice_id(invoice)
    app_ctx = get_app(ctx)
    result = service.download_pdf(stripe_client(app_ctx), invoice_id, output)
    render(result, fmt, columns=[Col("invoice_id", "invoice"), Col("number"), Col("path"), Col("bytes", kind="int")],
           title="Invoice PDF")
