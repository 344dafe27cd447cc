"""``pmfin billing show``: one tenant's billing on one screen."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pmfin.commands.common import TenantOption, parse_tenant, stripe_client
from pmfin.context import get_app
from pmfin.errors import PmfinError, UsageError
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, to_plain

service = lazy_module("pmfin.stripe_ops.overview")

app = typer.Typer(
    help="A tenant's billing on one screen: plan, billing status and why, usage against limits, MRR, "
    "the next invoice, payments, invoices, Connect and dunning.",
    no_args_is_help=True,
)


def _count(flag: str):
    def check(value: int) -> int:
        if not 0 <= value <= 100:
            raise UsageError(f"{flag} must be a whole number from 0 to 100, got {value}")
        return value

    return check


def _share(value) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def _usage_rows(u) -> list[dict[str, Any]]:
    if u is None:
        return []
    limit = lambda v: "unlimited" if v is None else f"{v:,}"  # noqa: E731
    rows = [
        {"what": "emails sent", "used": f"{u.emails_sent:,}", "limit": limit(u.email_limit), "share": _share(u.email_share)},
        {"what": "seats", "used": f"{u.seats:,}", "limit": limit(u.seat_limit), "share": _share(u.seat_share)},
        {"what": "IPs", "used": f"{u.ips:,}", "limit": limit(u.ip_limit), "share": _share(u.ip_share)},
        {"what": "IP reputation (average)", "used": "—" if u.avg_reputation is None else f"{u.avg_reputation}",
         "limit": "", "share": ""},
    ]
    for r, key in zip(rows, ("emails", "seats", "ips")):
        if key in u.over_limits:
            r["share"] += " OVER"
    return rows


def _document(o) -> dict[str, Any]:
    """The one JSON object: money as integer minor units with ``currency`` beside it."""
    doc = to_plain(o)
    doc["mrr"] = {"mrr": o.mrr, "currency": o.mrr_currency}
    doc.pop("mrr_currency", None)
    for case in doc["dunning"]:
        case.update(case.pop("case"))
    return doc


def _headline(o) -> dict[str, Any]:
    from pmfin.money import format_money

    t, s = o.tenant, o.subscription
    plan = "none"
    if s is not None:
        plan = f"{s.plan.name or s.plan.id} ({s.plan.id}), {format_money(s.price, s.currency)} / {s.plan.billing_cycle}"
        if s.quantity > 1:
            plan += f" ({s.quantity} × {format_money(s.unit_price, s.currency)})"
        plan += f", {s.status or 'status unknown'}"
        if s.cancel_at_period_end:
            plan += ", ends at the period's end"
    period = f"{s.current_period_start:%Y-%m-%d} – {s.current_period_end:%Y-%m-%d}" if s and s.current_period_start and s.current_period_end else "—"
    n = o.next_invoice
    if n is None:
        nxt = f"unknown ({o.stripe_error})" if o.stripe_error else "—"
    elif n.date is None:
        nxt = n.note or "—"
    else:
        nxt = f"{n.date:%Y-%m-%d}: {format_money(n.amount_due, n.currency)} (from {n.source})"
    addons = ", ".join(f"{a.name or a.addon_id} × {a.quantity} ({format_money(a.price, a.currency)} / {a.billing_cycle})"
                       for a in o.addons) or "none"
    c = o.connect
    connect = "—" if c is None else c.status + (f" ({c.stripe_account_id})" if c.stripe_account_id else "")
    return {
        "tenant": f"{t.name} ({t.tenant_id})",
        "billing email": t.billing_email or "—",
        "Stripe customer": t.stripe_customer_id or "—",
        "billing status": t.billing_status,
        "why": t.why,
        "plan": plan,
        "current period": period,
        "add-ons": addons,
        "MRR": format_money(o.mrr, o.mrr_currency),
        "next invoice": nxt,
        "Connect": connect,
    }


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    payments: Annotated[int, typer.Option("--payments", help="How many of the last payments to show (0 … 100).",
                                          callback=_count("--payments"))] = 5,
    fmt: FormatOption = Format.table,
) -> None:
    """One tenant's billing: plan and price, billing status (active / restricted / suspended) and
    why, usage this month against the plan's limits, MRR, the next invoice (date, amount, lines —
    pending prorations included), plan history, the last payments with their failure reasons,
    open and recent invoices with PDF links, Connect status, the open dunning case.

    Exit 0; 1 when Stripe could not be read (the database's part is still shown, `stripe_error` says
    why); 2 bad input."""
    tenant_id = parse_tenant(tenant, required=True)
    app_ctx = get_app(ctx)
    o = service.overview(app_ctx.engine, lambda: stripe_client(app_ctx), app_ctx.settings, tenant_id, payments=payments)
    if fmt is Format.json:
        render(_document(o), fmt)
    else:
        _render(o, fmt)
    if o.stripe_error:
        raise PmfinError(f"{o.stripe_error} — the invoices and the next invoice are left out", exit_code=1)


def _render(o, fmt: Format) -> None:
    month = o.usage.month if o.usage else None
    sections = [
        (f"Billing of {o.tenant.name or o.tenant.tenant_id}", _headline(o), None),
        (f"Usage {month} (seats and IPs now)", _usage_rows(o.usage),
         [Col("what"), Col("used"), Col("limit"), Col("share")]),
    ]
    if o.next_invoice is not None and o.next_invoice.lines:
        n = o.next_invoice
        sections.append((f"Next invoice {n.date:%Y-%m-%d}: {_money(n.amount_due, n.currency)} due"
                         + (f" ({n.note})" if n.note else ""),
                         [dict(to_plain(ln), currency=ln.currency) for ln in n.lines],
                         [Col("description"), Col("amount", kind="money"), Col("period_start", "from"),
                          Col("period_end", "to"), Col("proration", kind="bool")]))
    sections += [
        ("Plan history", [dict(to_plain(h)) for h in o.plan_history],
         [Col("plan_id", "plan"), Col("price", "price / cycle", kind="money"), Col("started_at", "from"),
          Col("ended_at", "to"), Col("end_reason", "ended by"), Col("change_credit", "credit", kind="money"),
          Col("change_charge", "charge", kind="money"), Col("change_invoice", "invoice")]),
        ("Last payments", [to_plain(p) for p in o.payments],
         [Col("created_at", "when"), Col("revenue_stream", "stream"), Col("amount", kind="money"), Col("status"),
          Col("failure_code", "failure"), Col("failure_message", "message"), Col("stripe_invoice_id", "invoice")]),
    ]
    if o.invoices is not None:
        sections.append(("Invoices (open ones and the newest; --format json has the payment page links)",
                         [to_plain(i) for i in o.invoices],
                         [Col("id"), Col("number"), Col("status"), Col("amount_due", "due", kind="money"),
                          Col("amount_remaining", "remaining", kind="money"), Col("created"), Col("invoice_pdf", "PDF")]))
    if o.dunning:
        sections.append(("Open dunning case", [dict(to_plain(d.case), retries_left=d.retries_left, card_change=d.card_change)
                                               for d in o.dunning],
                         [Col("invoice_number", "invoice"), Col("amount_due", "amount due", kind="money"),
                          Col("day0", "day 0"), Col("day", kind="int"), Col("stage"), Col("next_attempt", "next retry"),
                          Col("card_change", "default card change")]))
    render_sections(sections, fmt)
    if fmt is Format.table:
        for line in o.notes:
            note(line)
        if not o.dunning:
            note("no open dunning case")


def _money(amount: int, currency: str) -> str:
    from pmfin.money import format_money

    return format_money(amount, currency)
