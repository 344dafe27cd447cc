"""One tenant's billing on one screen (``pmfin billing show``, issue 10): what support needs to
answer "why was my payment declined?", "why am I charged this amount?" and "why can't I change my
payment method?".

From the database: the tenant and its billing status with the reason (the open dunning case, its
stage and dates), the subscription row in force and its add-ons, MRR (``pmfin.metrics.mrr``, in
the subscription's currency), usage against the plan's limits (``pmfin.metrics.usage``, the same
figures as ``pmfin usage report``), the plan history (with the proration figures of the changes
pmfin made), the last payments with their failure reasons, the Connect status as the last
``connect sync`` stored it, the open dunning case and whether the default card may be changed.

From Stripe (only for a tenant with a real Stripe customer): the next invoice
(``POST /v1/invoices/create_preview`` of the subscription: its date, amount and lines, pending
prorations included) and the invoices — every open one and the five newest — with their PDF
links. When Stripe cannot be reached (or refuses), those parts are left out and ``stripe_error``
says why; the rest is still shown. Without a Stripe subscription the next invoice is the plan's
price at the end of the current period, from the database.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.migrate import existing_tables, require_contract
from pmfin.demo.marks import is_made_up
from pmfin.errors import UsageError
from pmfin.metrics.mrr import tenants_mrr
from pmfin.metrics.plans import CurrentSubscription, current_subscription
from pmfin.metrics.usage import TenantUsage, one_tenant
from pmfin.money import format_money
from pmfin.months import Month
from pmfin.settings import Settings
from pmfin.stripe_ops.client import PmfinStripeClient, StripeRequestError, StripeUnavailable
from pmfin.stripe_ops.connect import AccountStatus, all_statuses
from pmfin.stripe_ops.dunning import CaseSummary, Policy, case_summary, open_cases
from pmfin.stripe_ops.invoices import InvoiceSummary, plain, stripe_call, summary_from
from pmfin.stripe_ops.payment_methods import retry_window
from pmfin.stripe_ops.subscriptions import PreviewLine, preview_lines

RECENT_INVOICES = 5


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    name: str | None
    billing_email: str | None
    country: str | None
    currency: str
    stripe_customer_id: str | None
    billing_status: str
    why: str  # the reason for the billing status, in words


@dataclass(frozen=True)
class AddonRow:
    addon_id: str
    name: str | None
    quantity: int
    price: int  # per billing cycle
    billing_cycle: str
    currency: str
    started_at: dt.datetime


@dataclass(frozen=True)
class NextInvoice:
    source: str  # stripe / database
    date: dt.datetime | None
    amount_due: int
    total: int
    currency: str
    proration: int  # the pending proration lines' sum (part of the total)
    lines: list[PreviewLine] = field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True)
class HistoryRow:
    plan_id: str
    price: int  # per billing cycle
    currency: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    end_reason: str | None
    status: str | None
    change_credit: int | None  # pmfin's plan change that started this row: its proration credit …
    change_charge: int | None  # … and charge
    change_invoice: str | None  # the invoice it made


@dataclass(frozen=True)
class PaymentRow:
    created_at: dt.datetime
    revenue_stream: str | None
    amount: int
    refunded: int
    currency: str
    status: str
    failure_code: str | None
    failure_message: str | None
    stripe_invoice_id: str | None


@dataclass(frozen=True)
class DunningCase:
    case: CaseSummary
    restricted_at: dt.datetime
    suspended_at: dt.datetime
    retries_left: list[int]
    card_change: str  # whether the default card may be changed now, and until when not


@dataclass
class Overview:
    tenant: Tenant
    as_of: dt.datetime
    subscription: CurrentSubscription | None
    addons: list[AddonRow]
    mrr: int
    mrr_currency: str
    usage: TenantUsage | None
    next_invoice: NextInvoice | None
    plan_history: list[HistoryRow]
    payments: list[PaymentRow]
    invoices: list[InvoiceSummary] | None  # None: not read (no Stripe customer, or Stripe failed)
    connect: AccountStatus | None
    dunning: list[DunningCase]
    stripe_error: str | None = None
    notes: list[str] = field(default_factory=list)


def _tenant_row(conn: Connection, tenant_id: uuid.UUID):
    row = conn.execute(
        text("SELECT t.name, t.deleted, tc.billing_email, tc.country, lower(coalesce(tc.currency, 'usd')::text) AS currency, "
             "tc.stripe_customer_id, coalesce(tc.billing_status, 'active') AS billing_status "
             "FROM tenants t LEFT JOIN tenant_config tc ON tc.tenant_id = t.id WHERE t.id = :t"),
        {"t": str(tenant_id)},
    ).one_or_none()
    if row is None:
        raise UsageError(f"no tenant with id {tenant_id}")
    return row


def _why(status: str, cases: list[DunningCase]) -> str:
    if not cases:
        if status == "active":
            return "no open dunning case"
        return f"{status} with no open dunning case: set outside pmfin's dunning"
    worst = max(cases, key=lambda c: ("grace", "restricted", "suspended").index(c.case.stage))
    c = worst.case
    owed = f"invoice {c.invoice_number or c.invoice_id} ({format_money(c.amount_due, c.currency)}) unpaid since {c.day0:%Y-%m-%d %H:%M} UTC (day {c.day})"
    if c.stage == "suspended":
        return f"suspended: {owed}; restored as soon as it is paid"
    if c.stage == "restricted":
        return f"restricted (campaign limits): {owed}; suspended from {worst.suspended_at:%Y-%m-%d %H:%M} UTC unless paid"
    return f"in dunning grace: {owed}; restricted from {worst.restricted_at:%Y-%m-%d %H:%M} UTC unless paid"


_HISTORY_SQL = """
SELECT s.plan_id, s.unit_price_cents * s.quantity AS price, lower(s.currency::text) AS currency, s.started_at,
       s.ended_at, s.end_reason, s.status, {change}
FROM subscriptions s {join}
WHERE s.tenant_id = :t
ORDER BY s.started_at DESC, s.id
LIMIT :n
"""


def _history(conn: Connection, tenant_id: uuid.UUID, tables: set[str], limit: int) -> list[HistoryRow]:
    if "pmfin_plan_changes" in tables:
        change = "c.credit, c.charge, c.stripe_invoice_id"
        join = "LEFT JOIN pmfin_plan_changes c ON c.tenant_id = s.tenant_id AND c.to_row_id = s.id AND c.status = 'applied'"
    else:
        change, join = "NULL::bigint AS credit, NULL::bigint AS charge, NULL::text AS stripe_invoice_id", ""
    rows = conn.execute(text(_HISTORY_SQL.format(change=change, join=join)), {"t": str(tenant_id), "n": limit}).all()
    return [HistoryRow(r.plan_id, int(r.price), r.currency, r.started_at, r.ended_at, r.end_reason, r.status,
                       None if r.credit is None else int(r.credit), None if r.charge is None else int(r.charge),
                       r.stripe_invoice_id) for r in rows]


def _payments(conn: Connection, tenant_id: uuid.UUID, limit: int) -> list[PaymentRow]:
    rows = conn.execute(
        text("SELECT created_at, revenue_stream, amount_cents, refunded_cents, lower(currency::text) AS currency, status, "
             "failure_code, failure_message, stripe_invoice_id FROM payments WHERE tenant_id = :t "
             "ORDER BY created_at DESC, id LIMIT :n"),
        {"t": str(tenant_id), "n": limit},
    ).all()
    return [PaymentRow(r.created_at, r.revenue_stream, int(r.amount_cents), int(r.refunded_cents or 0), r.currency,
                       r.status, r.failure_code, r.failure_message, r.stripe_invoice_id) for r in rows]


def _addons(conn: Connection, tenant_id: uuid.UUID, at: dt.datetime) -> list[AddonRow]:
    rows = conn.execute(
        text("SELECT sa.addon_id, a.name, sa.quantity, sa.unit_price_cents * sa.quantity AS price, "
             "coalesce(a.billing_cycle, 'month') AS cycle, lower(sa.currency::text) AS currency, sa.started_at "
             "FROM subscription_addons sa LEFT JOIN addons a ON a.id = sa.addon_id WHERE sa.tenant_id = :t "
             "AND sa.started_at <= :at AND (sa.ended_at IS NULL OR sa.ended_at > :at) ORDER BY sa.started_at, sa.id"),
        {"t": str(tenant_id), "at": at},
    ).all()
    return [AddonRow(r.addon_id, r.name, int(r.quantity), int(r.price), r.cycle, r.currency, r.started_at) for r in rows]


def _dunning(conn: Connection, tenant_id: uuid.UUID, policy: Policy, tables: set[str], at: dt.datetime) -> list[DunningCase]:
    if "pmfin_dunning_cases" not in tables:
        return []
    out = []
    for case in open_cases(conn, str(tenant_id)):
        summary = case_summary(conn, case.invoice_id, policy)
        if summary is None:
            continue
        window = retry_window(case, policy)
        if window is None:
            change = "allowed: every retry of this invoice has run"
        else:
            change = (f"blocked until the day-{window.remaining[-1]} retry (due {window.last_retry:%Y-%m-%d %H:%M} UTC) "
                      "has run, or the invoice is paid")
        out.append(DunningCase(summary, policy.restricted_at(case.day0), policy.suspended_at(case.day0),
                               list(window.remaining) if window else [], change))
    return out


def overview(engine: Engine, client: Callable[[], PmfinStripeClient], settings: Settings, tenant_id: uuid.UUID, *,
             payments: int = 5, history: int = 5, now: dt.datetime | None = None) -> Overview:
    """The tenant's billing overview (module docstring). ``client`` is a factory: a tenant without
    a Stripe customer needs no Stripe client at all."""
    now = now or dt.datetime.now(dt.timezone.utc)
    month = Month.of(now)
    policy = Policy.from_settings(settings)
    with engine.connect() as conn:
        require_contract(conn, ("tenants", "tenant_config", "plans", "addons", "subscriptions", "subscription_addons",
                                "payments", "emails", "tenant_users", "ip_allocations"))
        tables = existing_tables(conn)
        t = _tenant_row(conn, tenant_id)
        cur = current_subscription(conn, tenant_id, now) if t.deleted is None else None
        currency = cur.currency if cur else t.currency
        dunning = _dunning(conn, tenant_id, policy, tables, now)
        tenant = Tenant(str(tenant_id), t.name, t.billing_email, t.country, currency, t.stripe_customer_id,
                        t.billing_status, _why(t.billing_status, dunning))
        mrr = tenants_mrr(conn, [tenant_id], month, currency).get(str(tenant_id), 0)
        usage = one_tenant(conn, tenant_id, month, now=now)
        made_up = bool(t.stripe_customer_id) and is_made_up(conn, tenant_id, t.stripe_customer_id, "customer")
        result = Overview(
            tenant=tenant, as_of=now, subscription=cur, addons=_addons(conn, tenant_id, now),
            mrr=mrr, mrr_currency=currency, usage=usage, next_invoice=None,
            plan_history=_history(conn, tenant_id, tables, history), payments=_payments(conn, tenant_id, payments),
            invoices=None, connect=None, dunning=dunning,
        )
    if t.deleted is not None:
        result.notes.append(f"the tenant was deleted on {t.deleted:%Y-%m-%d}")
    if {"pmfin_connect_accounts", "pmfin_connect_failures"} <= tables:  # what the last `connect sync` stored
        connect = all_statuses(engine, tenant_id)
        result.connect = connect[0] if connect else None
    if not t.stripe_customer_id:
        result.notes.append("no Stripe customer (tenant_config.stripe_customer_id): nothing read from Stripe")
    elif made_up:
        result.notes.append(f"the Stripe customer {t.stripe_customer_id} was made up by pmfin demo: nothing read from Stripe")
    else:
        try:
            _from_stripe(client(), result, cur, now)
        except (StripeUnavailable, StripeRequestError) as err:
            result.stripe_error = err.message
    if result.next_invoice is None and cur is not None and result.stripe_error is None:
        result.next_invoice = _next_from_database(cur)
    return result


def _next_from_database(cur) -> NextInvoice:
    if cur.cancel_at_period_end:
        return NextInvoice("database", None, 0, 0, cur.currency, 0,
                           note=f"none: the subscription ends at the end of its period ({_date(cur.current_period_end)})")
    return NextInvoice("database", cur.current_period_end, cur.price, cur.price, cur.currency, 0,
                       note="the plan's price at the end of the current period (add-ons not included)")


def _date(at: dt.datetime | None) -> str:
    return f"{at:%Y-%m-%d}" if at else "unknown"


def _from_stripe(client: PmfinStripeClient, result: Overview, cur, now: dt.datetime) -> None:
    customer = result.tenant.stripe_customer_id
    with stripe_call(client, f"list the invoices of customer {customer}"):
        recent = [plain(i) for i in client.v1.invoices.list({"customer": customer, "limit": RECENT_INVOICES}).data]
        open_ = [plain(i) for i in client.v1.invoices.list({"customer": customer, "status": "open", "limit": 100}).auto_paging_iter()]
    seen = {i["id"]: i for i in [*recent, *open_]}
    tenants = {customer: (result.tenant.tenant_id, result.tenant.name)}
    result.invoices = sorted((summary_from(i, tenants) for i in seen.values()),
                             key=lambda s: (s.created or now, s.id), reverse=True)
    sub_id = cur.stripe_subscription_id if cur else None
    if not sub_id:
        return
    if cur.cancel_at_period_end:
        result.next_invoice = NextInvoice("stripe", None, 0, 0, cur.currency, 0,
                                          note=f"none: the subscription ends on {_date(cur.current_period_end)}")
        return
    with stripe_call(client, f"preview the next invoice of subscription {sub_id}"):
        inv = plain(client.v1.invoices.create_preview({"customer": customer, "subscription": sub_id}))
    lines = preview_lines(inv, -1)
    date = inv.get("period_end") or inv.get("next_payment_attempt")  # the upcoming invoice is made as the period ends
    result.next_invoice = NextInvoice(
        "stripe", dt.datetime.fromtimestamp(date, dt.timezone.utc) if date else None, int(inv.get("amount_due") or 0),
        int(inv.get("total") or 0), (inv.get("currency") or cur.currency).lower(),
        sum(ln.amount for ln in lines if ln.proration), lines,
        note=_balance_note(inv),
    )


def _balance_note(inv: dict) -> str | None:
    balance = int(inv.get("starting_balance") or 0)
    if balance < 0:
        return f"the customer's credit balance of {format_money(-balance, (inv.get('currency') or 'usd').lower())} is applied"
    if balance > 0:
        return f"{format_money(balance, (inv.get('currency') or 'usd').lower())} owed from before is added"
    return None
