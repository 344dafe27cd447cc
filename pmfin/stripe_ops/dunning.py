"""Dunning: the failed-payment journey, run nightly from cron (DESIGN.md §4, issue 7).

The policy, exactly:

- **Cases.** One per invoice whose payment failed (today: ``payments`` rows with status
  'failed' and a ``stripe_invoice_id``; day 0 = the earliest such ``created_at``). Never for a
  paid, void or uncollectible invoice; an invoice Stripe does not know is reported, not acted
  on; the demo's made-up invoices are skipped with a note.
- **Retries** at day 0 + 1, 3, 5 days (``PMFIN_DUNNING_RETRY_DAYS``). A retry first reads the
  invoice (paid or voided elsewhere closes the case, no charge), then tries the customer's
  saved cards, default first, then the others oldest first, until one succeeds. A card with a
  hard decline on this invoice is not tried again; an expired card is not tried. A late run
  makes one retry, for the latest slot due, and records the earlier ones as skipped.
- **Stages** (``tenant_config.billing_status``): grace ('active') until day 0 + 7 days, then
  'restricted', from day 0 + 14 days 'suspended'; a tenant's status is its worst open case.
  Paid → recovered, the tenant 'active' again when no other case is open; void/uncollectible →
  written off, no longer acting on the tenant.
- **Outage.** Every stage change and every retry is decided on a fresh read of the invoice.
  When Stripe cannot be reached nothing about that case changes; the slot stays due.

How a run is made safe (``run``): one run at a time (a session advisory lock); every case is
worked on under its invoice's advisory lock (shared with ``invoices pay``/``void``); each
attempt is committed before its Stripe call (``pmfin:dunning:<invoice>:<slot>:<pm>``) and an
unfinished one is re-sent with the same key by the next run; every state change commits in one
transaction with its notification and the tenant's status. ``--dry-run`` is the same code with
the executing half switched off: ``plan_case`` decides, ``_execute`` acts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.own import readable
from pmfin.demo.marks import made_up_sql
from pmfin.errors import ConfigError, PmfinError
from pmfin.money import format_money
from pmfin.notify import Notice, record, resolve_alerts
from pmfin.stripe_ops.client import PmfinStripeClient, StripeUnavailable, idempotency_key
from pmfin.stripe_ops.invoices import (
    AttemptResult,
    Card,
    attempt_payment,
    attempts_for,
    customer_cards,
    invoice_lock,
    is_not_found,
    is_unreachable,
    resolve_unfinished,
    retrieve_invoice,
)

if TYPE_CHECKING:
    from pmfin.notify import SendReport
    from pmfin.settings import Settings

STAGES = ("grace", "restricted", "suspended")
BILLING_STATUS = {"grace": "active", "restricted": "restricted", "suspended": "suspended"}
RUN_LOCK = 0x706D66696E64756E  # "pmfindun": one dunning run at a time
DAY = dt.timedelta(days=1)
CLOSED = {"paid": "paid_elsewhere", "void": "voided", "uncollectible": "uncollectible"}
RECOVERED = ("paid_by_retry", "paid_elsewhere")


# -- the policy (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    retry_days: tuple[int, ...] = (1, 3, 5)
    grace_days: int = 7
    suspend_days: int = 14
    lookback_days: int = 30

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.dunning_retry_days, settings.dunning_grace_days, settings.dunning_suspend_days,
                   settings.dunning_lookback_days)

    def due(self, day0: dt.datetime, slot: int) -> dt.datetime:
        return day0 + slot * DAY

    def restricted_at(self, day0: dt.datetime) -> dt.datetime:
        return day0 + self.grace_days * DAY

    def suspended_at(self, day0: dt.datetime) -> dt.datetime:
        return day0 + self.suspend_days * DAY

    def stage_at(self, day0: dt.datetime, at: dt.datetime) -> str:
        if at >= self.suspended_at(day0):
            return "suspended"
        if at >= self.restricted_at(day0):
            return "restricted"
        return "grace"

    def next_slot(self, day0: dt.datetime, at: dt.datetime, done: set[int] | dict) -> tuple[int, dt.datetime] | None:
        """The first slot not yet acted on that falls due after ``at``."""
        for slot in self.retry_days:
            if slot not in done and self.due(day0, slot) > at:
                return slot, self.due(day0, slot)
        return None


def stage_rank(stage: str) -> int:
    return STAGES.index(stage)


def dunning_key(invoice_id: str, slot: int, pm: str) -> str:
    return idempotency_key("dunning", invoice_id, slot, pm)


# -- cases (database) ---------------------------------------------------------------------------


@dataclass
class Case:
    tenant_id: str
    invoice_id: str
    day0: dt.datetime
    customer_id: str | None = None
    invoice_number: str | None = None
    amount_due: int = 0
    currency: str = "usd"
    hosted_invoice_url: str | None = None
    source: str = "payments"
    status: str = "open"
    stage: str = "grace"
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    close_reason: str | None = None
    tenant_name: str | None = None
    slots: dict[int, str] = field(default_factory=dict)  # slot → outcome
    new: bool = False  # opened by this run (in a dry run: would be)


_CASE_COLUMNS = """
c.tenant_id, c.invoice_id, c.day0, c.customer_id, c.invoice_number, c.amount_due, c.currency,
c.hosted_invoice_url, c.source, c.status, c.stage, c.opened_at, c.closed_at, c.close_reason, t.name AS tenant_name,
coalesce((SELECT jsonb_object_agg(s.slot, s.outcome) FROM pmfin_dunning_slots s
          WHERE s.tenant_id = c.tenant_id AND s.invoice_id = c.invoice_id), '{}'::jsonb) AS slots
"""


def _case(row) -> Case:
    slots = row.slots if isinstance(row.slots, dict) else json.loads(row.slots or "{}")
    return Case(
        str(row.tenant_id), row.invoice_id, row.day0, row.customer_id, row.invoice_number, int(row.amount_due),
        row.currency.strip().lower(), row.hosted_invoice_url, row.source, row.status, row.stage, row.opened_at,
        row.closed_at, row.close_reason, row.tenant_name, {int(k): v for k, v in slots.items()},
    )


def load_case(conn: Connection, invoice_id: str) -> Case | None:
    row = conn.execute(
        text(f"SELECT {_CASE_COLUMNS} FROM pmfin_dunning_cases c LEFT JOIN tenants t ON t.id = c.tenant_id "
             "WHERE c.invoice_id = :i"),
        {"i": invoice_id},
    ).one_or_none()
    return _case(row) if row else None


def open_cases(conn: Connection, tenant_id: str | None = None) -> list[Case]:
    where = "c.status = 'open'" + (" AND c.tenant_id = :t" if tenant_id else "")
    rows = conn.execute(
        text(f"SELECT {_CASE_COLUMNS} FROM pmfin_dunning_cases c LEFT JOIN tenants t ON t.id = c.tenant_id "
             f"WHERE {where} ORDER BY c.day0, c.invoice_id"),
        {"t": tenant_id},
    ).all()
    return [_case(r) for r in rows]


def pending_card_retries(conn: Connection, invoice_id: str) -> list[str]:
    """Payment methods saved since the case opened that no run has tried yet (one retry each)."""
    if "pmfin_dunning_card_retries" not in _tables(conn):
        return []
    return list(conn.execute(
        text("SELECT payment_method_id FROM pmfin_dunning_card_retries WHERE invoice_id = :i AND attempted_at IS NULL "
             "ORDER BY created_at, payment_method_id"), {"i": invoice_id}).scalars())


def request_card_retry(engine: Engine, tenant_id: str, payment_method_id: str, *, saved_at: dt.datetime,
                       event_id: str | None = None) -> list[str]:
    """A tenant with an open dunning case saved a card (at ``saved_at``): the next run tries it once
    on each open invoice whose payment failed before the card was saved — a card older than the
    failure is not new, the retries already try it. Returns the invoices it will be tried on (none
    when the card was already requested)."""
    with engine.begin() as conn:
        return list(conn.execute(
            text(
                """
                INSERT INTO pmfin_dunning_card_retries (tenant_id, invoice_id, payment_method_id, event_id)
                SELECT c.tenant_id, c.invoice_id, :pm, :event FROM pmfin_dunning_cases c
                WHERE c.tenant_id = :t AND c.status = 'open' AND c.day0 < :saved
                ON CONFLICT DO NOTHING
                RETURNING invoice_id
                """
            ),
            {"t": tenant_id, "pm": payment_method_id, "event": event_id, "saved": saved_at},
        ).scalars())


def set_tenant_status(conn: Connection, tenant_id: str) -> str:
    """``tenant_config.billing_status`` := the worst stage among the tenant's open cases."""
    worst = conn.execute(
        text(
            """
            SELECT coalesce(max(CASE stage WHEN 'suspended' THEN 2 WHEN 'restricted' THEN 1 ELSE 0 END), 0)
            FROM pmfin_dunning_cases WHERE tenant_id = :t AND status = 'open'
            """
        ),
        {"t": tenant_id},
    ).scalar_one()
    status = BILLING_STATUS[STAGES[worst]]
    conn.execute(
        text(
            "UPDATE tenant_config SET billing_status = :s, updated = now() "
            "WHERE tenant_id = :t AND billing_status IS DISTINCT FROM :s"
        ),
        {"s": status, "t": tenant_id},
    )
    return status


def owed(invoice: dict, fallback: int) -> int:
    """What the tenant still owes on an open invoice; for a settled one, what was owed before
    (``fallback``, the case's last figure), so messages and reports keep the amount at stake."""
    if invoice.get("status") not in ("open", "uncollectible"):
        return fallback
    remaining = invoice.get("amount_remaining")
    return int(remaining if remaining is not None else invoice.get("amount_due") or 0)


def _refresh_case(conn: Connection, case: Case, invoice: dict) -> None:
    case.amount_due = owed(invoice, case.amount_due)
    case.invoice_number = invoice.get("number") or case.invoice_number
    case.hosted_invoice_url = invoice.get("hosted_invoice_url") or case.hosted_invoice_url
    conn.execute(
        text(
            """
            UPDATE pmfin_dunning_cases
            SET amount_due = CASE WHEN status = 'open' THEN :amount ELSE amount_due END,
                invoice_number = :number, hosted_invoice_url = :url, invoice_status = :status, checked_at = now()
            WHERE tenant_id = :t AND invoice_id = :i
            """
        ),
        {"amount": case.amount_due, "number": case.invoice_number, "url": case.hosted_invoice_url,
         "status": invoice.get("status"), "t": case.tenant_id, "i": case.invoice_id},
    )


# -- messages ------------------------------------------------------------------------------------


def _date(at: dt.datetime) -> str:
    return f"{at:%Y-%m-%d}"


def _invoice_name(case: Case) -> str:
    return case.invoice_number or case.invoice_id


def _pay_line(case: Case) -> str:
    if case.hosted_invoice_url:
        return f"Pay the invoice or update your card here: {case.hosted_invoice_url}"
    return "Please update your payment method in PenguinMails (Settings → Billing)."


def notice_for(kind: str, case: Case, policy: Policy, *, at: dt.datetime, slot: int | None = None,
               tried: list[AttemptResult] | None = None, reason: str | None = None) -> Notice:
    """The email and banner of one dunning event. Every message says the amount, the invoice
    number and where to pay."""
    amount = format_money(case.amount_due, case.currency)
    name = _invoice_name(case)
    restricted, suspended = policy.restricted_at(case.day0), policy.suspended_at(case.day0)
    retries = [policy.due(case.day0, s) for s in policy.retry_days if policy.due(case.day0, s) > at]
    base = dict(tenant_id=case.tenant_id, invoice_id=case.invoice_id)
    if kind == "payment_failed":
        when = ", ".join(_date(r) for r in retries) or "no further automatic retries"
        body = (
            f"We could not collect {amount} for invoice {name}.\n\n"
            f"We will try your saved cards again on: {when}.\n"
            f"If the invoice is still unpaid on {_date(restricted)}, campaign limits apply; "
            f"from {_date(suspended)} the account is suspended.\n\n{_pay_line(case)}\n"
        )
        return Notice(key=f"dunning:{case.invoice_id}:opened", kind=kind, severity="warning",
                      subject=f"Payment failed: invoice {name} ({amount})", body=body,
                      alert=f"Payment of {amount} for invoice {name} failed. Update your card to avoid restrictions on {_date(restricted)}.",
                      **base)
    if kind == "retry_declined":
        lines = [f"  - {r.card or r.payment_method_id}: declined ({r.reason})" for r in tried or []]
        cards = "\n".join(lines) if lines else "  (no saved card could be tried)"
        nxt = policy.next_slot(case.day0, at, set(case.slots) | {slot})
        then = f"The next attempt is on {_date(nxt[1])}." if nxt else "There are no further automatic retries."
        body = (f"Retry {policy.retry_days.index(slot) + 1} of {len(policy.retry_days)} for invoice {name} ({amount}) "
                f"did not go through:\n{cards}\n\n{then}\n\n{_pay_line(case)}\n")
        return Notice(key=f"dunning:{case.invoice_id}:retry:{slot}", kind=kind, severity="warning",
                      subject=f"Payment retry declined: invoice {name} ({amount})", body=body,
                      alert=f"Retry of invoice {name} ({amount}) declined. {then}", **base)
    if kind == "restricted":
        body = (f"Invoice {name} ({amount}) is still unpaid, so campaign limits now apply to your account.\n"
                f"If it is still unpaid on {_date(suspended)}, the account is suspended.\n\n{_pay_line(case)}\n")
        return Notice(key=f"dunning:{case.invoice_id}:restricted", kind=kind, severity="critical",
                      subject=f"Account restricted: invoice {name} ({amount}) unpaid", body=body,
                      alert=f"Campaign limits apply until invoice {name} ({amount}) is paid; suspension on {_date(suspended)}.",
                      **base)
    if kind == "suspended":
        body = (f"Invoice {name} ({amount}) is still unpaid, so your account is suspended.\n"
                f"It is restored as soon as the invoice is paid.\n\n{_pay_line(case)}\n")
        return Notice(key=f"dunning:{case.invoice_id}:suspended", kind=kind, severity="critical",
                      subject=f"Account suspended: invoice {name} ({amount}) unpaid", body=body,
                      alert=f"Account suspended until invoice {name} ({amount}) is paid.", **base)
    if kind == "recovered":
        how = {"paid_by_retry": "Our retry went through", "paid_elsewhere": "We received your payment"}.get(reason or "", "Paid")
        page = f"\nThe invoice: {case.hosted_invoice_url}\n" if case.hosted_invoice_url else ""
        body = f"{how}: invoice {name} ({amount}) is paid. Thank you — your account is fully active.\n{page}"
        return Notice(key=f"dunning:{case.invoice_id}:recovered", kind=kind, severity="info",
                      subject=f"Payment received: invoice {name} ({amount})", body=body,
                      alert=f"Invoice {name} ({amount}) is paid.", resolved=True, **base)
    raise ValueError(f"unknown dunning notification {kind!r}")


# -- planning (pure) ----------------------------------------------------------------------------


@dataclass
class CardStep:
    payment_method_id: str
    card: str
    action: str  # try / skip
    reason: str | None = None
    key: str | None = None
    outcome: str | None = None  # filled by the run: succeeded / declined (code) / refused / unreachable


@dataclass
class CasePlan:
    """What a run decides for one case (and, after a real run, what happened)."""

    invoice_id: str
    tenant_id: str
    tenant_name: str | None
    invoice_number: str | None
    amount_due: int
    currency: str
    day0: dt.datetime
    day: int  # whole days since day 0
    stage: str  # before this run
    invoice_status: str | None = None
    opened: bool = False
    close: str | None = None  # paid_elsewhere / voided / uncollectible
    skipped_slots: list[int] = field(default_factory=list)
    slot: int | None = None
    cards: list[CardStep] = field(default_factory=list)
    new_cards: list[CardStep] = field(default_factory=list)  # a card the tenant just saved: one retry each
    resend: list[str] = field(default_factory=list)  # keys of unfinished attempts sent again
    stage_to: str | None = None
    notifications: list[str] = field(default_factory=list)
    next_retry: dt.datetime | None = None
    result: str = "planned"  # recovered / declined / written_off / stage / waiting / unchanged / planned
    note: str | None = None


def plan_case(policy: Policy, case: Case, invoice: dict, cards: list[Card] | None, attempts: list,
              at: dt.datetime, new_cards: list[Card] | None = None) -> CasePlan:
    """Decide what to do for ``case`` at ``at``, given a fresh read of its invoice (and the
    customer's cards, when a slot is due). Pure: the same plan drives the dry run and the run."""
    status = invoice.get("status")
    plan = CasePlan(
        case.invoice_id, case.tenant_id, case.tenant_name, invoice.get("number") or case.invoice_number,
        owed(invoice, case.amount_due),
        (invoice.get("currency") or case.currency).lower(), case.day0, max(0, (at - case.day0).days), case.stage,
        invoice_status=status, opened=case.new,
    )
    if case.new:
        plan.notifications.append("payment_failed")
    if status in CLOSED:
        plan.close = CLOSED[status]
        if status == "paid":
            plan.notifications.append("recovered")
        plan.result = "recovered" if status == "paid" else "written_off"
        return plan
    if status != "open":
        plan.result, plan.note = "unchanged", f"the invoice is {status}: nothing to do"
        return plan
    for card in new_cards or []:  # the best recovery tools retry the moment a card is updated
        plan.new_cards.append(CardStep(card.id, card.label, "try", "a new card",
                                       key=idempotency_key("dunning", case.invoice_id, "card", card.id)))
    due = [s for s in policy.retry_days if policy.due(case.day0, s) <= at and s not in case.slots]
    if due:
        plan.slot = max(due)
        plan.skipped_slots = [s for s in due if s < plan.slot]
        hard = {a.payment_method_id: a for a in attempts if a.outcome == "declined" and a.hard}
        in_slot = {a.payment_method_id: a for a in attempts if a.origin == "dunning" and a.slot == plan.slot and a.outcome}
        for card in cards or []:
            step = CardStep(card.id, card.label, "try", key=dunning_key(case.invoice_id, plan.slot, card.id))
            if card.id in hard:
                a = hard[card.id]
                when = f"in the day-{a.slot} retry" if a.slot else f"on {_date(a.started_at)}"
                step.action, step.reason = "skip", f"hard decline ({a.decline_code or a.code}) {when}"
            elif card.id in in_slot:
                step.action, step.reason = "skip", f"already tried in this slot: {in_slot[card.id].outcome}"
            elif card.expired(at):
                step.action, step.reason = "skip", f"expired {card.exp_month:02d}/{card.exp_year}"
            plan.cards.append(step)
        plan.notifications.append("retry_declined (if every card declines)")
    target = policy.stage_at(case.day0, at)
    if stage_rank(target) > stage_rank(case.stage):
        plan.stage_to = target
        plan.notifications.append(target + (" (unless the retry succeeds)" if plan.slot else ""))
    nxt = policy.next_slot(case.day0, at, set(case.slots) | set(due))
    plan.next_retry = nxt[1] if nxt else None
    plan.result = "retry" if (plan.slot or plan.new_cards) else ("stage" if plan.stage_to else "waiting")
    return plan


# -- a run ---------------------------------------------------------------------------------------


@dataclass
class Skipped:
    invoice_id: str
    tenant_id: str
    reason: str  # unknown_invoice / stripe_unreachable / demo / draft


@dataclass
class RunReport:
    as_of: dt.datetime
    dry_run: bool
    busy: bool = False
    run_id: int | None = None
    cases: list[CasePlan] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    demo_skipped: int = 0
    ignored: int = 0  # failed invoices found paid/void/uncollectible on first look: no case
    errors: list[str] = field(default_factory=list)
    notifications: SendReport | None = None
    smtp_configured: bool = True
    stripe_down: bool = False
    stripe_down_reason: str | None = None

    @property
    def exit_code(self) -> int:
        """0: the run did its work (declines are results); 1: something could not be done."""
        failed_send = self.notifications is not None and not self.notifications.ok
        return 1 if (self.errors or failed_send) else 0


class _Ctx:
    def __init__(self, engine, client, policy, at, dry_run, smtp_configured, on_progress):
        self.engine = engine
        self.client: PmfinStripeClient = client
        self.policy: Policy = policy
        self.at: dt.datetime = at
        self.dry_run: bool = dry_run
        self.smtp = smtp_configured
        self.on_progress = on_progress
        self.now = dt.datetime.now(dt.timezone.utc)


_CANDIDATES = f"""
WITH failed AS (
    SELECT p.stripe_invoice_id AS invoice_id,
           (array_agg(p.tenant_id ORDER BY p.created_at, p.id))[1] AS tenant_id,
           min(p.created_at) AS day0
    FROM payments p
    WHERE p.status = 'failed' AND p.stripe_invoice_id IS NOT NULL AND p.created_at <= :at
    GROUP BY p.stripe_invoice_id
    HAVING min(p.created_at) > :since
)
SELECT f.invoice_id, f.tenant_id, f.day0, t.name AS tenant_name, {made_up_sql("f.tenant_id", "f.invoice_id", "invoice")} AS demo
FROM failed f
LEFT JOIN tenants t ON t.id = f.tenant_id
WHERE NOT EXISTS (SELECT 1 FROM pmfin_dunning_cases c WHERE c.invoice_id = f.invoice_id)
  AND NOT EXISTS (SELECT 1 FROM pmfin_dunning_ignored i WHERE i.invoice_id = f.invoice_id)
ORDER BY f.day0, f.invoice_id
"""


def _open_case(conn: Connection, ctx: _Ctx, case: Case, invoice: dict) -> bool:
    """Insert the case and its 'payment failed' notification. False: another run opened it."""
    new = conn.execute(
        text(
            """
            INSERT INTO pmfin_dunning_cases
                (tenant_id, invoice_id, customer_id, invoice_number, amount_due, currency, hosted_invoice_url,
                 day0, source, opened_at, invoice_status, checked_at)
            VALUES (:t, :i, :customer, :number, :amount, :currency, :url, :day0, :source, :at, :status, now())
            ON CONFLICT (invoice_id) DO NOTHING
            RETURNING invoice_id
            """
        ),
        {"t": case.tenant_id, "i": case.invoice_id, "customer": invoice.get("customer"), "number": case.invoice_number,
         "amount": case.amount_due, "currency": case.currency, "url": case.hosted_invoice_url, "day0": case.day0,
         "source": case.source, "at": ctx.at, "status": invoice.get("status")},
    ).scalar_one_or_none()
    if new is None:
        return False
    record(conn, notice_for("payment_failed", case, ctx.policy, at=ctx.at), smtp_configured=ctx.smtp, at=ctx.at)
    return True


def open_case_from_event(engine: Engine, client: PmfinStripeClient, settings: Settings, *, tenant_id: str,
                         invoice: dict, day0: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Open a case for an ``invoice.payment_failed`` event: day 0 = the event's ``created``,
    ``invoice`` as Stripe shows it now (only an open invoice gets a case). True when opened."""
    if invoice.get("status") != "open":
        return False
    ctx = _Ctx(engine, client, Policy.from_settings(settings), now or dt.datetime.now(dt.timezone.utc), False,
               settings.smtp is not None, None)
    case = _case_from_invoice(tenant_id, invoice, day0, source="event")
    with engine.begin() as conn:
        if "pmfin_dunning_ignored" in _tables(conn):
            conn.execute(text("DELETE FROM pmfin_dunning_ignored WHERE invoice_id = :i"), {"i": invoice["id"]})
        return _open_case(conn, ctx, case, invoice)


def _case_from_invoice(tenant_id: str, invoice: dict, day0: dt.datetime, *, source: str, name: str | None = None) -> Case:
    return Case(
        tenant_id, invoice["id"], day0, invoice.get("customer"), invoice.get("number"),
        owed(invoice, int(invoice.get("amount_due") or 0)),
        (invoice.get("currency") or "usd").lower(), invoice.get("hosted_invoice_url"), source=source,
        tenant_name=name, new=True,
    )


def _discover(ctx: _Ctx, report: RunReport) -> list[tuple[Case, dict]]:
    """New cases from the platform's failed payments; each invoice read fresh from Stripe."""
    since = ctx.at - ctx.policy.lookback_days * DAY
    with ctx.engine.connect() as conn:
        candidates = conn.execute(readable(conn, _CANDIDATES), {"at": ctx.at, "since": since}).all()
    found: list[tuple[Case, dict]] = []
    for row in candidates:
        if row.demo:
            report.demo_skipped += 1
            continue
        if report.stripe_down:
            report.skipped.append(Skipped(row.invoice_id, str(row.tenant_id), "stripe_unreachable"))
            continue
        try:
            invoice = retrieve_invoice(ctx.client, row.invoice_id)
        except PmfinError as err:
            _stripe_failure(report, err, row.invoice_id, str(row.tenant_id))
            continue
        status = invoice.get("status")
        if status in CLOSED:
            report.ignored += 1
            if not ctx.dry_run:
                with ctx.engine.begin() as conn:
                    conn.execute(
                        text("INSERT INTO pmfin_dunning_ignored (tenant_id, invoice_id, invoice_status) "
                             "VALUES (:t, :i, :s) ON CONFLICT DO NOTHING"),
                        {"t": row.tenant_id, "i": row.invoice_id, "s": status},
                    )
            continue
        if status != "open":
            report.skipped.append(Skipped(row.invoice_id, str(row.tenant_id), f"invoice is {status}"))
            continue
        case = _case_from_invoice(str(row.tenant_id), invoice, row.day0, source="payments", name=row.tenant_name)
        found.append((case, invoice))
    return found


def _tables(conn: Connection) -> set[str]:
    from pmfin.db.migrate import existing_tables

    return existing_tables(conn)


def _stripe_failure(report: RunReport, err: PmfinError, invoice_id: str, tenant_id: str) -> None:
    if isinstance(err, ConfigError):  # a rejected key: every request would fail the same way
        raise err
    if is_not_found(err):
        report.skipped.append(Skipped(invoice_id, tenant_id, "unknown_invoice"))
        report.errors.append(f"Stripe does not know invoice {invoice_id} (tenant {tenant_id}): reported, not acted on")
        return
    report.skipped.append(Skipped(invoice_id, tenant_id, "stripe_unreachable"))
    if is_unreachable(err):
        if not report.stripe_down:
            report.errors.append(f"{err.message}; the remaining cases were left unchanged")
            report.stripe_down_reason = err.message
        report.stripe_down = True
    else:
        report.errors.append(err.message)


def run(
    engine: Engine,
    client: PmfinStripeClient | Callable[[], PmfinStripeClient],
    settings: Settings,
    *,
    as_of: dt.datetime | None = None,
    dry_run: bool = False,
    wait: bool = False,
    send: bool = True,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RunReport:
    """The cron job: discover new cases, work every open case, update tenants, send emails."""
    at = as_of or dt.datetime.now(dt.timezone.utc)
    report = RunReport(at, dry_run, smtp_configured=settings.smtp is not None)
    with engine.connect() as lock_conn:
        if not dry_run:
            if wait:
                lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": RUN_LOCK})
            elif not lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RUN_LOCK}).scalar():
                report.busy = True
                return report
            lock_conn.commit()
        try:
            stripe_client = client() if callable(client) else client
            ctx = _Ctx(engine, stripe_client, Policy.from_settings(settings), at, dry_run, report.smtp_configured, on_progress)
            if not dry_run:
                with engine.begin() as conn:
                    report.run_id = conn.execute(
                        text("INSERT INTO pmfin_dunning_runs (as_of) VALUES (:at) RETURNING id"), {"at": at}
                    ).scalar_one()
            _run_locked(ctx, report)
            if not dry_run and report.cases + report.skipped:
                from pmfin.stripe_ops.outbox import banner_follows

                banner_follows(engine, report.stripe_down_reason)
            if send and not dry_run:
                from pmfin.notify import send_pending

                report.notifications = send_pending(engine, settings.smtp)
            if not dry_run:
                with engine.begin() as conn:
                    conn.execute(
                        text("UPDATE pmfin_dunning_runs SET finished_at = now(), exit_code = :c, summary = CAST(:s AS jsonb) "
                             "WHERE id = :id"),
                        {"c": report.exit_code, "s": json.dumps(run_summary(report)), "id": report.run_id},
                    )
        finally:
            if not dry_run:
                if lock_conn.in_transaction():
                    lock_conn.rollback()
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": RUN_LOCK})
                lock_conn.commit()
    return report


def _run_locked(ctx: _Ctx, report: RunReport) -> None:
    new = _discover(ctx, report)
    with ctx.engine.connect() as conn:
        existing = open_cases(conn)
    work: list[tuple[Case, dict | None]] = [(c, inv) for c, inv in new] + [(c, None) for c in existing]
    work.sort(key=lambda w: (w[0].day0, w[0].invoice_id))
    total = len(work)
    for i, (case, invoice) in enumerate(work, 1):
        if ctx.on_progress:
            ctx.on_progress(case.invoice_id, i, total)
        if report.stripe_down:
            report.cases.append(_unchanged(case, ctx.at, "Stripe unreachable: left unchanged"))
            continue
        report.cases.append(_work_case(ctx, report, case, invoice))


def _unchanged(case: Case, at: dt.datetime, note: str) -> CasePlan:
    return CasePlan(case.invoice_id, case.tenant_id, case.tenant_name, case.invoice_number, case.amount_due,
                    case.currency, case.day0, max(0, (at - case.day0).days), case.stage, result="unchanged", note=note)


def _work_case(ctx: _Ctx, report: RunReport, case: Case, invoice: dict | None) -> CasePlan:
    if ctx.dry_run:
        return _plan_fresh(ctx, report, case, invoice)
    with invoice_lock(ctx.engine, case.invoice_id) as locked:
        if not locked:
            report.errors.append(f"invoice {case.invoice_id} was being paid or voided by another command: left for the next run")
            return _unchanged(case, ctx.at, "busy: another pmfin command holds this invoice")
        try:
            return _work_case_locked(ctx, report, case, invoice)
        except StripeUnavailable as err:
            _stripe_failure(report, err, case.invoice_id, case.tenant_id)
            return _unchanged(case, ctx.at, "Stripe unreachable: left unchanged, the slot stays due")


def _planned(ctx: _Ctx, case: Case, invoice: dict, attempts: list, wanted: list[str]) -> CasePlan:
    """``plan_case`` with the customer's cards read from Stripe only when a slot is due or a new
    card waits for its retry."""
    plan = plan_case(ctx.policy, case, invoice, None, attempts, ctx.at)
    if (plan.slot is not None or wanted) and plan.invoice_status == "open":
        cards = customer_cards(ctx.client, invoice["customer"]) if invoice.get("customer") else []
        new = [c for c in cards if c.id in wanted]
        plan = plan_case(ctx.policy, case, invoice, cards if plan.slot is not None else None, attempts, ctx.at, new)
    return plan


def _plan_fresh(ctx: _Ctx, report: RunReport, case: Case, invoice: dict | None) -> CasePlan:
    """Read the invoice (and the cards when a slot is due) and plan; no writes."""
    try:
        invoice = invoice or retrieve_invoice(ctx.client, case.invoice_id)
        with ctx.engine.connect() as conn:
            attempts = attempts_for(conn, case.invoice_id)
            wanted = pending_card_retries(conn, case.invoice_id)
        plan = _planned(ctx, case, invoice, attempts, wanted)
        plan.resend = [a.idempotency_key for a in attempts if a.outcome is None]
        return plan
    except PmfinError as err:
        _stripe_failure(report, err, case.invoice_id, case.tenant_id)
        return _unchanged(case, ctx.at, "Stripe unreachable: would be left unchanged")


def _work_case_locked(ctx: _Ctx, report: RunReport, case: Case, invoice: dict | None) -> CasePlan:
    engine = ctx.engine
    resent: list[str] = []
    # 1. Attempts whose answer never arrived (a run killed mid-charge): the same key again.
    with engine.connect() as conn:
        unfinished = [a for a in attempts_for(conn, case.invoice_id) if a.outcome is None]
    replays: list[AttemptResult] = []
    for attempt in unfinished:
        result = resolve_unfinished(engine, ctx.client, attempt, now=ctx.now)
        resent.append(attempt.idempotency_key)
        if result is not None:
            replays.append(result)
    # 2. A fresh read of the invoice decides everything (also for a case opened a moment ago,
    #    when a replay may have changed it).
    if invoice is None or replays:
        try:
            invoice = retrieve_invoice(ctx.client, case.invoice_id)
        except PmfinError as err:
            _stripe_failure(report, err, case.invoice_id, case.tenant_id)
            return _unchanged(case, ctx.at, "Stripe unreachable: left unchanged, the slot stays due")
    if case.new:
        with engine.begin() as conn:
            if not _open_case(conn, ctx, case, invoice):
                case.new = False  # another process opened it first: work it as an existing case
    with engine.begin() as conn:
        _refresh_case(conn, case, invoice)
        attempts = attempts_for(conn, case.invoice_id)
        wanted = pending_card_retries(conn, case.invoice_id)
    plan = _planned(ctx, case, invoice, attempts, wanted)
    plan.resend = resent
    paid_by = "paid_by_retry" if any(r.outcome == "succeeded" for r in replays) else None
    return _execute(ctx, case, invoice, plan, replays, paid_by)


def _execute(ctx: _Ctx, case: Case, invoice: dict, plan: CasePlan, replays: list[AttemptResult],
             paid_by: str | None) -> CasePlan:
    """Carry out ``plan``; afterwards the plan says what happened (``result``, each card's
    ``outcome``, the notifications actually recorded)."""
    engine, at = ctx.engine, ctx.at
    told = ["payment_failed"] if case.new else []
    plan.notifications = told
    if plan.close:
        reason = paid_by if (paid_by and plan.close == "paid_elsewhere") else plan.close
        with engine.begin() as conn:
            if _close(conn, ctx, case, reason, invoice) and reason in RECOVERED:
                told.append("recovered")
        plan.close = reason
        return plan
    tried_new: set[str] = set()
    for step in plan.new_cards:
        result = attempt_payment(engine, ctx.client, tenant_id=case.tenant_id, invoice=invoice, card=step.card,
                                 pm=step.payment_method_id, key=step.key, origin="dunning", slot=None)
        step.outcome = f"declined ({result.reason})" if result.outcome == "declined" else result.outcome
        tried_new.add(step.payment_method_id)
        with engine.begin() as conn:
            conn.execute(text("UPDATE pmfin_dunning_card_retries SET attempted_at = now(), outcome = :o "
                              "WHERE invoice_id = :i AND payment_method_id = :pm"),
                         {"o": step.outcome, "i": case.invoice_id, "pm": step.payment_method_id})
            if result.outcome == "succeeded" and _close(conn, ctx, case, "paid_by_retry", result.invoice or invoice):
                told.append("recovered")
        if result.outcome == "succeeded":
            plan.close, plan.result, plan.stage_to, plan.slot = "paid_by_retry", "recovered", None, None
            return plan
    for step in plan.cards:  # a new card just tried is not tried again in the same run
        if step.action == "try" and step.payment_method_id in tried_new:
            step.action, step.reason = "skip", "tried as a new card in this run"
    if plan.skipped_slots:
        with engine.begin() as conn:
            for slot in plan.skipped_slots:  # a late run: never two slots in one run
                _slot_row(conn, case, slot, "declined" if _slot_attempted(conn, case, slot) else "skipped", ctx)
                case.slots[slot] = "skipped"
    if plan.slot is not None:
        declined = [r for r in replays if r.outcome == "declined"]
        for step in plan.cards:
            if step.action != "try":
                continue
            try:
                result = attempt_payment(engine, ctx.client, tenant_id=case.tenant_id, invoice=invoice, card=step.card,
                                         pm=step.payment_method_id, key=step.key, origin="dunning", slot=plan.slot)
            except StripeUnavailable:
                step.outcome = "no answer"
                raise
            step.outcome = f"declined ({result.reason})" if result.outcome == "declined" else result.outcome
            if result.outcome == "declined":
                declined.append(result)
                continue
            if result.outcome == "succeeded":
                with engine.begin() as conn:
                    _slot_row(conn, case, plan.slot, "paid", ctx)
                    if _close(conn, ctx, case, "paid_by_retry", result.invoice or invoice):
                        told.append("recovered")
                plan.close, plan.result, plan.stage_to = "paid_by_retry", "recovered", None
                return plan
            # refused: Stripe would not take the payment (already paid, voided, card detached …)
            fresh = retrieve_invoice(ctx.client, case.invoice_id)
            if fresh.get("status") in CLOSED:
                reason = CLOSED[fresh["status"]]
                with engine.begin() as conn:
                    if _close(conn, ctx, case, reason, fresh) and reason in RECOVERED:
                        told.append("recovered")
                plan.close, plan.stage_to = reason, None
                plan.result = "recovered" if reason in RECOVERED else "written_off"
                return plan
        outcome = "declined" if any(s.action == "try" for s in plan.cards) else "no_card"
        with engine.begin() as conn:
            _slot_row(conn, case, plan.slot, outcome, ctx)
            case.slots[plan.slot] = outcome
            if record(conn, notice_for("retry_declined", case, ctx.policy, at=at, slot=plan.slot, tried=declined),
                      smtp_configured=ctx.smtp, at=at):
                told.append("retry_declined")
        plan.result = "declined"
    if plan.stage_to:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE pmfin_dunning_cases SET stage = :s WHERE tenant_id = :t AND invoice_id = :i AND status = 'open'"),
                {"s": plan.stage_to, "t": case.tenant_id, "i": case.invoice_id},
            )
            case.stage = plan.stage_to
            # A late run that crossed both thresholds tells the latest stage only.
            if record(conn, notice_for(plan.stage_to, case, ctx.policy, at=at), smtp_configured=ctx.smtp, at=at):
                told.append(plan.stage_to)
            set_tenant_status(conn, case.tenant_id)
        if plan.result != "declined":
            plan.result = "stage"
    return plan


def _slot_attempted(conn: Connection, case: Case, slot: int) -> bool:
    return conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM pmfin_payment_attempts WHERE invoice_id = :i AND origin = 'dunning' AND slot = :s)"),
        {"i": case.invoice_id, "s": slot},
    ).scalar_one()


def _slot_row(conn: Connection, case: Case, slot: int, outcome: str, ctx: _Ctx) -> None:
    conn.execute(
        text(
            """
            INSERT INTO pmfin_dunning_slots (tenant_id, invoice_id, slot, due_at, outcome, decided_at)
            VALUES (:t, :i, :slot, :due, :outcome, :at)
            ON CONFLICT (tenant_id, invoice_id, slot) DO NOTHING
            """
        ),
        {"t": case.tenant_id, "i": case.invoice_id, "slot": slot, "due": ctx.policy.due(case.day0, slot),
         "outcome": outcome, "at": ctx.at},
    )


def _close(conn: Connection, ctx: _Ctx, case: Case, reason: str, invoice: dict) -> bool:
    """Recovered or written off, with the tenant's status and the alerts, in one transaction.
    False when the case was closed already (by another command)."""
    recovered = reason in RECOVERED
    changed = conn.execute(
        text(
            """
            UPDATE pmfin_dunning_cases
            SET status = :status, closed_at = :at, close_reason = :reason, invoice_status = :inv_status,
                amount_recovered = CASE WHEN :recovered THEN :paid END, checked_at = now()
            WHERE tenant_id = :t AND invoice_id = :i AND status = 'open'
            RETURNING invoice_id
            """
        ),
        {"status": "recovered" if recovered else "written_off", "at": ctx.at, "reason": reason,
         "inv_status": invoice.get("status"), "recovered": recovered,
         "paid": int(invoice.get("amount_paid") or case.amount_due), "t": case.tenant_id, "i": case.invoice_id},
    ).scalar_one_or_none()
    if changed is None:
        return False
    case.status = "recovered" if recovered else "written_off"
    resolve_alerts(conn, case.tenant_id, invoice_id=case.invoice_id, at=ctx.at)
    if recovered:
        record(conn, notice_for("recovered", case, ctx.policy, at=ctx.at, reason=reason), smtp_configured=ctx.smtp, at=ctx.at)
    set_tenant_status(conn, case.tenant_id)
    return True


def settle_after_payment(engine: Engine, invoice_id: str, invoice: dict, *, now: dt.datetime,
                         settings: Settings) -> bool:
    """After ``invoices pay`` succeeded or ``invoices void``: close the invoice's open case now
    (recovered / written off) instead of at the next run, and send its email. True when a case
    was closed."""
    from pmfin.notify import send_pending

    status = invoice.get("status")
    if status not in CLOSED:
        return False
    with engine.begin() as conn:
        if "pmfin_dunning_cases" not in _tables(conn):
            return False
        case = load_case(conn, invoice_id)
        if case is None or case.status != "open":
            return False
        ctx = _Ctx(engine, None, Policy.from_settings(settings), now, False, settings.smtp is not None, None)
        closed = _close(conn, ctx, case, CLOSED[status], invoice)
    if closed and settings.smtp is not None:
        send_pending(engine, settings.smtp, keys=[f"dunning:{invoice_id}:recovered"])  # unsent: the next run sends it
    return closed


# -- the run in a few numbers ---------------------------------------------------------------------


def run_summary(report: RunReport) -> dict[str, Any]:
    results: dict[str, int] = {}
    for p in report.cases:
        results[p.result] = results.get(p.result, 0) + 1
    return {
        "as_of": report.as_of.isoformat(),
        "dry_run": report.dry_run,
        "cases": len(report.cases),
        "opened": sum(1 for p in report.cases if p.opened),
        "results": results,
        "attempts": sum(1 for p in report.cases for s in p.cards if s.outcome),
        "skipped": [{"invoice_id": s.invoice_id, "tenant_id": s.tenant_id, "reason": s.reason} for s in report.skipped],
        "demo_skipped": report.demo_skipped,
        "ignored": report.ignored,
        "errors": report.errors,
        "emails_sent": len(report.notifications.sent) if report.notifications else 0,
        "emails_pending": report.notifications.pending if report.notifications else None,
    }


# -- status ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseSummary:
    tenant_id: str
    tenant_name: str | None
    invoice_id: str
    invoice_number: str | None
    amount_due: int
    currency: str
    day0: dt.datetime
    day: int
    stage: str
    status: str
    attempts: int
    next_attempt: dt.datetime | None
    close_reason: str | None = None
    hosted_invoice_url: str | None = None


@dataclass
class Figures:
    since: dt.date
    opened: int = 0
    recovered: int = 0
    recovered_amounts: dict[str, int] = field(default_factory=dict)
    recovery_rate: Any = None  # Decimal | None
    written_off: int = 0
    written_off_amounts: dict[str, int] = field(default_factory=dict)
    still_open: int = 0
    open_cases: int = 0  # now, whenever opened
    at_risk_amounts: dict[str, int] = field(default_factory=dict)
    at_risk_mrr: int = 0
    mrr_currency: str = "usd"


@dataclass
class StatusReport:
    cases: list[CaseSummary]
    figures: Figures


def _summary(case: Case, policy: Policy, at: dt.datetime, attempts: int) -> CaseSummary:
    nxt = policy.next_slot(case.day0, at, case.slots) if case.status == "open" else None
    if case.status == "open" and nxt is None:  # a due slot not acted on yet: the next run
        due = [s for s in policy.retry_days if s not in case.slots]
        nxt = (due[0], policy.due(case.day0, due[0])) if due else None
    return CaseSummary(case.tenant_id, case.tenant_name, case.invoice_id, case.invoice_number, case.amount_due,
                       case.currency, case.day0, max(0, (at - case.day0).days), case.stage, case.status, attempts,
                       nxt[1] if nxt else None, case.close_reason, case.hosted_invoice_url)


def case_summary(conn: Connection, invoice_id: str, policy: Policy | None = None) -> CaseSummary | None:
    if "pmfin_dunning_cases" not in _tables(conn):
        return None
    case = load_case(conn, invoice_id)
    if case is None:
        return None
    attempts = len(attempts_for(conn, invoice_id))
    return _summary(case, policy or Policy(), dt.datetime.now(dt.timezone.utc), attempts)


def status(engine: Engine, settings: Settings, *, tenant_id: str | None = None, since: dt.date | None = None,
           at: dt.datetime | None = None) -> StatusReport:
    """Open cases and the recovery figures of the cases opened since ``since`` (default: 30 days)."""
    from decimal import Decimal

    from pmfin.metrics.mrr import tenants_mrr
    from pmfin.months import Month

    at = at or dt.datetime.now(dt.timezone.utc)
    since = since or (at - 30 * DAY).date()
    policy = Policy.from_settings(settings)
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc)
    params = {"t": tenant_id, "start": start}
    only = " AND c.tenant_id = :t" if tenant_id else ""
    with engine.connect() as conn:
        from pmfin.db.migrate import require_contract

        require_contract(conn, ("tenants", "pmfin_dunning_cases"))
        cases = open_cases(conn, tenant_id)
        counts = dict(conn.execute(
            text(f"SELECT c.invoice_id, count(a.id) FROM pmfin_dunning_cases c LEFT JOIN pmfin_payment_attempts a "
                 f"ON a.invoice_id = c.invoice_id WHERE c.status = 'open'{only} GROUP BY c.invoice_id"),
            params,
        ).all())
        cohort = conn.execute(
            text(f"SELECT c.status, c.close_reason, lower(c.currency::text) AS currency, count(*) AS n, "
                 f"sum(coalesce(c.amount_recovered, c.amount_due)) AS amount "
                 f"FROM pmfin_dunning_cases c WHERE c.opened_at >= :start{only} GROUP BY 1, 2, 3"),
            params,
        ).all()
        figures = Figures(since=since, mrr_currency=settings.currency)
        for r in cohort:
            figures.opened += r.n
            if r.status == "recovered":
                figures.recovered += r.n
                figures.recovered_amounts[r.currency] = figures.recovered_amounts.get(r.currency, 0) + int(r.amount)
            elif r.status == "written_off":
                figures.written_off += r.n
                figures.written_off_amounts[r.currency] = figures.written_off_amounts.get(r.currency, 0) + int(r.amount)
            else:
                figures.still_open += r.n
        figures.recovery_rate = (Decimal(figures.recovered) / figures.opened) if figures.opened else None
        figures.open_cases = len(cases)
        for c in cases:
            figures.at_risk_amounts[c.currency] = figures.at_risk_amounts.get(c.currency, 0) + c.amount_due
        tenants = sorted({c.tenant_id for c in cases})
        if tenants:
            mrr = tenants_mrr(conn, tenants, Month.of(at), settings.currency)
            figures.at_risk_mrr = sum(mrr.values())
    return StatusReport([_summary(c, policy, at, int(counts.get(c.invoice_id, 0))) for c in cases], figures)
