"""``pmfin payment-methods``: a tenant's saved cards, its default card, and the default cards about to expire."""

from __future__ import annotations

import getpass
from typing import Annotated, Optional

import typer

from pmfin.commands.common import TenantOption, parse_tenant, stripe_client
from pmfin.context import get_app
from pmfin.errors import ProblemsFound, UsageError
from pmfin.instants import parse_instant
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, warn

service = lazy_module("pmfin.stripe_ops.payment_methods")
invoices = lazy_module("pmfin.stripe_ops.invoices")

app = typer.Typer(help="Tenants' saved cards at Stripe: list them, set the default (not during a dunning retry "
                  "window), and find the default cards about to expire — before dunning has to.", no_args_is_help=True)

CARD_COLUMNS = [Col("payment_method_id", "payment method"), Col("brand"), Col("last4", "last 4"),
                Col("expiry"), Col("expires_on", "works through"), Col("default", kind="bool"), Col("expired", kind="bool")]
EXPIRING_COLUMNS = [
    Col("tenant"), Col("card"), Col("expires_on", "works through"), Col("status"), Col("days_left", "days left", kind="int"),
    Col("plan_id", "plan"), Col("renews_at", "first renewal after"), Col("amount", kind="money"), Col("notified"),
]
EXPIRING_DATA_COLUMNS = [
    Col("tenant_id"), Col("tenant_name"), Col("customer_id"), Col("payment_method_id"), Col("card"), Col("expires_on"),
    Col("status"), Col("days_left"), Col("plan_id"), Col("renews_at"), Col("amount"), Col("currency"), Col("notified"),
]


def _within(value: int) -> int:
    if not 0 <= value <= 366:
        raise UsageError(f"--within must be a whole number of days from 0 to 366, got {value}")
    return value


@app.command("list")
def list_cmd(ctx: typer.Context, tenant: TenantOption = None, fmt: FormatOption = Format.table) -> None:
    """The tenant's saved cards (brand, last 4, expiry, default flag): the default first, then the
    others oldest first — the order dunning tries them in. A card works through the last day of
    its expiry month."""
    tenant_id = parse_tenant(tenant, required=True)
    app_ctx = get_app(ctx)
    found = service.list_cards(app_ctx.engine, stripe_client(app_ctx), tenant_id)
    rows = [dict(vars(c), expiry=f"{c.exp_month:02d}/{c.exp_year}" if c.exp_month and c.exp_year else None,
                 tenant_id=found.tenant_id, customer_id=found.customer_id) for c in found.cards]
    columns = CARD_COLUMNS if fmt is Format.table else [Col("tenant_id"), Col("customer_id"), *CARD_COLUMNS[:3],
                                                        Col("exp_month"), Col("exp_year"), *CARD_COLUMNS[4:]]
    render(rows, fmt, columns=columns, title=f"Cards of {found.tenant_name} (customer {found.customer_id})")
    if fmt is Format.table and not found.cards:
        note("no saved cards")


@app.command("set-default")
def set_default_cmd(
    ctx: typer.Context,
    payment_method: Annotated[str, typer.Argument(metavar="PM", help="A saved card of the tenant (pm_…).", show_default=False)],
    tenant: TenantOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Make a saved card the tenant's default (`invoice_settings.default_payment_method`).

    Refused (exit 2, with the reason and when it will be allowed) while the tenant is inside a
    dunning retry window: an open dunning case with a retry still to come. Also refused: a card
    the customer does not have, an expired card. Recorded with who and when."""
    tenant_id = parse_tenant(tenant, required=True)
    pm = invoices.parse_payment_method(payment_method)
    app_ctx = get_app(ctx)
    result = service.set_default(app_ctx.engine, stripe_client(app_ctx), app_ctx.settings, tenant_id, pm,
                                 by=getpass.getuser())
    render(result, fmt, columns=[Col("tenant_id", "tenant"), Col("customer_id", "customer"),
                                 Col("payment_method_id", "default card"), Col("card"),
                                 Col("previous_default", "previous default"), Col("changed", kind="bool"),
                                 Col("idempotency_key", "idempotency key"), Col("replayed", "answer replayed", kind="bool")],
           title="Default card")
    if fmt is Format.table and not result.changed:
        note(f"{result.card} already was the default: nothing was sent to Stripe")


@app.command("expiring")
def expiring_cmd(
    ctx: typer.Context,
    within: Annotated[int, typer.Option("--within", metavar="DAYS", callback=_within,
                                        help="Default cards whose last valid day is at most this many days away "
                                        "(already expired ones too).")] = 30,
    notify: Annotated[bool, typer.Option("--notify", help="Tell each tenant (email and dashboard alert), once per card "
                                         "and expiry month.")] = False,
    as_of: Annotated[
        Optional[str],
        typer.Option("--as-of", metavar="TIMESTAMP", show_default=False,
                     help="Evaluate at this instant (ISO 8601), for replays and tests. Default: now."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Every tenant whose default card expires within the window — a card works through the last
    day of its expiry month — and whose subscription renews after that: the renewal would fail.
    Pre-dunning: with --notify each is told once per card and expiry month, through the same
    notifications as dunning (an email to the billing contact, a dashboard alert).

    Exit 0; 1 when emails could not be sent (they stay pending for `pmfin notifications send`)."""
    at = parse_instant(as_of, flag="--as-of") if as_of is not None else None
    app_ctx = get_app(ctx)
    report = service.expiring(app_ctx.engine, stripe_client(app_ctx), app_ctx.settings, within=within, as_of=at,
                              notify=notify)
    summary = service.summary(report)
    if fmt is Format.json:
        render({"summary": summary, "cards": report.cards}, fmt)
    else:
        rows = [dict(vars(c), tenant=c.tenant_name or c.tenant_id,
                     notified={True: "now", False: "before", None: "—"}[c.notified]) for c in report.cards]
        if fmt is Format.csv:
            render([dict(r, notified=c.notified) for r, c in zip(rows, report.cards)], fmt, columns=EXPIRING_DATA_COLUMNS)
        else:
            render(rows, fmt, columns=EXPIRING_COLUMNS,
                   title=f"Default cards expiring by {report.as_of.date() + _days(within)} (as of {report.as_of:%Y-%m-%d %H:%M} UTC)")
            _notes(report, summary, notify)
    n = report.notifications
    if n is not None and n.error:
        raise ProblemsFound(f"emails not sent: {n.error} ({n.pending} pending for `pmfin notifications send`)")


def _days(n: int):
    import datetime as dt

    return dt.timedelta(days=n)


def _notes(report, summary: dict, notify: bool) -> None:
    note(f"{summary['cards']} default card(s) to replace among {summary['tenants_checked']} paying tenant(s) with a Stripe customer"
         + (f"; {summary['no_default_card']} without a default card" if summary["no_default_card"] else ""))
    if report.demo_skipped:
        note(f"{report.demo_skipped} demo tenant(s) skipped: their Stripe customers were made up by pmfin demo")
    if notify:
        note(f"told now: {summary['notified']}, told before: {summary['already_notified']}")
        if not report.smtp_configured:
            warn("no SMTP configured (PMFIN_SMTP_HOST): notifications are dashboard alerts only")
        elif report.notifications is not None:
            note(f"emails: {summary['emails_sent']} sent, {summary['emails_pending']} pending")
