"""``pmfin subscription change``: a plan change at Stripe, previewed with Stripe's prorations,
confirmed, applied and recorded in the platform's subscriptions history."""

from __future__ import annotations

import getpass
from typing import Annotated, Optional

import typer

from pmfin.commands.common import QueueOption, TenantOption, YesOption, confirm, parse_tenant, queue_instead, stripe_client
from pmfin.context import get_app
from pmfin.errors import PmfinError, ProblemsFound
from pmfin.instants import parse_instant
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, to_plain, warn

service = lazy_module("pmfin.stripe_ops.subscriptions")
plans = lazy_module("pmfin.metrics.plans")

app = typer.Typer(help="Change a tenant's plan at Stripe, with Stripe's proration preview, and record it in the "
                  "platform's subscriptions history.", no_args_is_help=True)

PREVIEW_COLUMNS = [
    Col("tenant"), Col("change"), Col("quantity", kind="int"), Col("proration_date", "proration date"),
    Col("credit", "credit for unused time", kind="money"), Col("charge", "new charge", kind="money"),
    Col("total", "total due now", kind="money"), Col("amount_due", "charged now", kind="money"),
    Col("next", "then"), Col("idempotency_key", "idempotency key"),
]
RESULT_COLUMNS = [
    Col("status"), Col("change"), Col("proration_date", "effective"), Col("total", "total due now", kind="money"),
    Col("stripe_invoice_id", "invoice"), Col("invoice_status", "invoice status"),
    Col("amount_paid", "paid now", kind="money"), Col("subscription_status", "subscription"),
    Col("ended_row_id", "history: ended row"), Col("started_row_id", "history: new row"),
    Col("replayed", "answer replayed", kind="bool"), Col("message"),
]


def _preview_row(p) -> dict:
    from pmfin.money import format_money

    nxt = (f"{format_money(p.next_amount, p.currency)} / {p.billing_cycle} from {p.next_renewal:%Y-%m-%d}"
           if p.next_renewal else f"{format_money(p.next_amount, p.currency)} / {p.billing_cycle}")
    return dict(to_plain(p), tenant=f"{p.tenant_name} ({p.tenant_id})", change=f"{p.from_plan} → {p.to_plan} ({p.direction})",
                next=nxt, currency=p.currency)


def _result_row(r) -> dict:
    return dict(to_plain(r), change=f"{r.from_plan} → {r.to_plan}")


@app.command("change")
def change_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    to: Annotated[Optional[str], typer.Option("--to", help="The new plan's id (see `pmfin plans list`).", show_default=False)] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Only show Stripe's proration preview; change nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Downgrade even below the seats or IPs in use.")] = False,
    proration_date: Annotated[
        Optional[str],
        typer.Option("--proration-date", metavar="TIMESTAMP", show_default=False,
                     help="The instant the change takes effect and is prorated from (ISO 8601), within the current "
                     "billing period and not in the future. Default: now."),
    ] = None,
    yes: YesOption = False,
    queue: QueueOption = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Preview the change with Stripe's prorations — the credit for the unused time of the old plan,
    the charge for the remaining time of the new one, the total due now (the proration lines, not
    the next period) — ask, then apply it at Stripe with the same proration date and behaviour
    (`always_invoice`: charged now) and record it in the platform's subscriptions history.

    Refused, with nothing changed (exit 2): an unknown plan, the same plan, a tenant without a
    Stripe subscription, a downgrade below the seats or IPs in use (unless --force). A declined
    card refuses the change at Stripe (exit 1, nothing changed). A change whose answer was lost is
    finished by the next run for the tenant under the same idempotency key: it cannot apply twice."""
    tenant_id = parse_tenant(tenant, required=True)
    plan_id = plans.parse_plan_id(to)
    at = parse_instant(proration_date, flag="--proration-date") if proration_date is not None else None
    app_ctx = get_app(ctx)
    try:
        _change(app_ctx, tenant_id, plan_id, at, preview=preview, force=force, yes=yes, fmt=fmt)
    except PmfinError as err:
        from pmfin.stripe_ops.outbox import unreachable

        if not queue or preview or not unreachable(err):  # checked before the question below
            raise
        from pmfin.instants import utc_now

        when = (at or utc_now()).replace(microsecond=0)
        confirm(f"Stripe cannot be reached: queue the change of tenant {tenant_id} to {plan_id}, prorated from "
                f"{when:%Y-%m-%d %H:%M:%S} UTC, to be applied unseen when Stripe answers?", yes=yes)
        params = {"tenant_id": str(tenant_id), "to": plan_id, "proration_date": f"{when:%Y-%m-%dT%H:%M:%SZ}", "force": force}
        key = f"pmfin:outbox:subscription.change:{tenant_id}:{plan_id}:{int(when.timestamp())}"
        queue_instead(app_ctx, err, "subscription.change", params, key, tenant_id=str(tenant_id), fmt=fmt)


def _change(app_ctx, tenant_id, plan_id: str, at, *, preview: bool, force: bool, yes: bool, fmt: Format) -> None:
    client = stripe_client(app_ctx)
    finished = [] if preview else service.finish_pending(app_ctx.engine, client, tenant_id)
    if fmt is not Format.json:
        for done in finished:
            _render_result(done, fmt, title="An earlier change, finished now (its answer had been lost)")
    earlier = next((d for d in finished if d.to_plan == plan_id and d.status == "applied"), None)
    if earlier is not None:  # what was asked is done
        if fmt is Format.json:
            render({"finished_earlier": finished, "preview": None, "result": earlier}, fmt)
        return
    p = service.preview_change(app_ctx.engine, client, tenant_id, plan_id, proration_date=at, force=force)
    if preview:
        _render_preview(p, fmt)
        return
    if fmt is Format.table:
        _render_preview(p, fmt)
    from pmfin.money import format_money

    confirm(f"Change {p.tenant_name} from {p.from_plan} to {p.to_plan}, {format_money(p.total, p.currency)} due now?", yes=yes)
    result = service.apply_change(app_ctx.engine, client, p, by=getpass.getuser())
    if fmt is Format.json:
        render({"finished_earlier": finished, "preview": p, "result": result}, fmt)
    else:
        _render_result(result, fmt, title="Plan changed")
    for r in [*finished, result]:
        if r.status == "declined":
            raise ProblemsFound(f"the change of tenant {r.tenant_id} to {r.to_plan} was declined: {r.message}")


def _render_preview(p, fmt: Format) -> None:
    if fmt is Format.json:
        render(p, fmt)
        return
    if fmt is Format.csv:
        render(_preview_row(p), fmt, columns=[*PREVIEW_COLUMNS, Col("currency")])
        return
    lines = [dict(to_plain(ln)) for ln in p.lines]
    render_sections([
        ("Plan change preview (Stripe, proration behaviour always_invoice)", _preview_row(p), PREVIEW_COLUMNS),
        ("Lines of the invoice the change makes now", lines,
         [Col("description"), Col("amount", kind="money"), Col("period_start", "from"), Col("period_end", "to"),
          Col("proration", kind="bool"), Col("due_now", "due now", kind="bool")]),
    ], fmt)
    if p.total < 0:
        note(f"the credit is more than the charge: the customer's balance keeps {_money(-p.total, p.currency)} for its next invoices")
    for loss in p.losses:
        note(("FORCED past: " if loss in p.forced else "the tenant would lose: ") + loss)
    for w in p.warnings:
        warn(w)


def _render_result(r, fmt: Format, *, title: str) -> None:
    if fmt is Format.csv:
        render(_result_row(r), fmt, columns=[*RESULT_COLUMNS, Col("currency")])
    else:
        render(_result_row(r), fmt, columns=RESULT_COLUMNS, title=title)


def _money(amount: int, currency: str) -> str:
    from pmfin.money import format_money

    return format_money(amount, currency)
