"""Tenants' saved cards at Stripe: list, set the default, and the default cards about to expire
(``pmfin payment-methods``, issue 10).

Stripe interface: ``GET /v1/customers/{id}/payment_methods?type=card`` and the customer's
``invoice_settings.default_payment_method`` (``pmfin.stripe_ops.invoices.customer_cards``);
``POST /v1/customers/{id}`` with ``invoice_settings[default_payment_method]``; for ``expiring``
one pass over ``GET /v1/customers`` (100 a page, ``expand[]=data.invoice_settings.default_payment_method``).

- **Expiry.** A card is valid through the last day of its expiry month (UTC): 12/2026 works on
  31 December 2026 and is expired from 1 January 2027 00:00 (``Card.expired``).
- **The dunning retry window** (``retry_window``). While a tenant has an open dunning case with a
  retry slot still to come — a day of ``PMFIN_DUNNING_RETRY_DAYS`` after the case's day 0 that no
  dunning run has acted on yet, due or not — its default card is not changed: the retries try the
  saved cards default first, and the seed's policy blocks changes during the retry period. It
  ends when the run has made the last retry (due day 0 + the last retry day), or at once when
  the invoice is paid (``pmfin invoices pay INVOICE --payment-method PM`` pays it with the new
  card now) or voided.
- **Setting the default** is recorded in ``pmfin_payment_method_changes`` (who, when, which card,
  the one before) and committed before Stripe is asked, under the key
  ``pmfin:payment-methods:set-default:<customer>:<card>:<n>`` (n: the customer's changes pmfin has
  finished + 1); a rerun after a lost answer sends the same key again.
- **Expiring cards.** Every tenant with a subscription row in force and a price (it will be
  charged again) whose default card expires within ``within`` days — its last valid day is at
  most ``within`` days after ``as_of``'s date — or has already expired, and whose subscription
  renews after the card's last day (it is not set to end at its period's end). The renewal shown
  is the first on or after the day the card stops working. ``notify`` tells each such tenant
  once per card and expiry month (the key ``card_expiring:<card>:<YYYY-MM>``): an email to the
  billing contact and a dashboard alert, through ``pmfin.notify``; a card whose expiry is renewed
  in place (Stripe's card updater keeps the id) is told again for its new month.
"""

from __future__ import annotations

import calendar
import datetime as dt
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from pmfin.db.migrate import existing_tables, require_contract
from pmfin.db.own import readable
from pmfin.demo.marks import made_up_sql
from pmfin.errors import UsageError
from pmfin.money import format_money
from pmfin.notify import Notice, SendReport, record, send_pending
from pmfin.settings import Settings
from pmfin.stripe_ops.client import PmfinStripeClient, StripeRequestError, idempotency_key
from pmfin.stripe_ops.dunning import Case, Policy, open_cases
from pmfin.stripe_ops.invoices import Card, card_from, customer_cards, plain, stripe_call, tenant_customer

DAY = dt.timedelta(days=1)


def _utc(at: dt.datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def last_valid_day(card: Card) -> dt.date | None:
    if not (card.exp_month and card.exp_year):
        return None
    return dt.date(card.exp_year, card.exp_month, calendar.monthrange(card.exp_year, card.exp_month)[1])


@dataclass(frozen=True)
class CardRow:
    payment_method_id: str
    card: str  # 'visa •••• 4242 exp 12/2030'
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    expires_on: dt.date | None  # the last day it works
    default: bool
    expired: bool


def _row(card: Card, at: dt.datetime) -> CardRow:
    return CardRow(card.id, card.label, card.brand, card.last4, card.exp_month, card.exp_year, last_valid_day(card),
                   card.is_default, card.expired(at))


@dataclass(frozen=True)
class CardList:
    tenant_id: str
    tenant_name: str | None
    customer_id: str
    cards: list[CardRow]


def _customer(engine: Engine, tenant_id: uuid.UUID) -> tuple[str, str | None]:
    from pmfin.demo.marks import is_made_up

    with engine.connect() as conn:
        customer, name = tenant_customer(conn, tenant_id)
        if not customer:
            raise UsageError(f"tenant {tenant_id} ({name}) has no Stripe customer (tenant_config.stripe_customer_id)")
        if is_made_up(conn, tenant_id, customer, "customer"):
            raise UsageError(f"tenant {tenant_id} ({name}) is a demo tenant whose Stripe customer {customer} pmfin demo "
                             "made up: it has no cards at Stripe")
    return customer, name


def list_cards(engine: Engine, client: PmfinStripeClient, tenant_id: uuid.UUID, *,
               now: dt.datetime | None = None) -> CardList:
    """The tenant's saved cards: the default first, then the others oldest first."""
    now = now or dt.datetime.now(dt.timezone.utc)
    customer, name = _customer(engine, tenant_id)
    return CardList(str(tenant_id), name, customer, [_row(c, now) for c in customer_cards(client, customer)])


# -- the dunning retry window ------------------------------------------------------------------


@dataclass(frozen=True)
class RetryWindow:
    invoice_id: str
    invoice_number: str | None
    amount_due: int
    currency: str
    day0: dt.datetime
    remaining: tuple[int, ...]  # retry days no run has acted on yet
    next_retry: dt.datetime  # when the first of them is due
    last_retry: dt.datetime  # when the last is due: the change is allowed once that retry has run


def retry_window(case: Case, policy: Policy) -> RetryWindow | None:
    """The window of an open case: from day 0 until the last retry slot has been acted on."""
    remaining = tuple(s for s in policy.retry_days if s not in case.slots)
    if case.status != "open" or not remaining:
        return None
    return RetryWindow(case.invoice_id, case.invoice_number, case.amount_due, case.currency, case.day0, remaining,
                       policy.due(case.day0, remaining[0]), policy.due(case.day0, remaining[-1]))


def retry_windows(engine: Engine, settings: Settings, tenant_id: uuid.UUID) -> list[RetryWindow]:
    with engine.connect() as conn:
        require_contract(conn, ("tenants", "pmfin_dunning_cases", "pmfin_dunning_slots"))
        cases = open_cases(conn, str(tenant_id))
    policy = Policy.from_settings(settings)
    return [w for w in (retry_window(c, policy) for c in cases) if w is not None]


def window_refusal(tenant_id: uuid.UUID, name: str | None, w: RetryWindow) -> str:
    slots = ", ".join(str(s) for s in w.remaining)
    return (
        f"tenant {tenant_id} ({name}) is in a dunning retry window: invoice {w.invoice_number or w.invoice_id} "
        f"({format_money(w.amount_due, w.currency)}) failed on {_utc(w.day0)} and the retries of day {slots} are still "
        f"to come (the next due {_utc(w.next_retry)}), each trying the saved cards default first. The default card can "
        f"be changed once the last retry (due {_utc(w.last_retry)}) has run, or as soon as the invoice is paid: "
        f"`pmfin invoices pay {w.invoice_id} --payment-method PM` pays it with that card now"
    )


# -- set the default ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultResult:
    tenant_id: str
    tenant_name: str | None
    customer_id: str
    payment_method_id: str
    card: str
    previous_default: str | None
    changed: bool  # False: it already was the default
    idempotency_key: str | None
    replayed: bool


def _set_default_key(conn, customer: str, pm: str) -> tuple[str, bool]:
    """The key of this change and whether it is an unfinished earlier one (a lost answer)."""
    unfinished = conn.execute(
        text("SELECT idempotency_key FROM pmfin_payment_method_changes WHERE customer_id = :c AND payment_method_id = :pm "
             "AND finished_at IS NULL ORDER BY id DESC LIMIT 1"),
        {"c": customer, "pm": pm},
    ).scalar_one_or_none()
    if unfinished:
        return unfinished, True
    done = conn.execute(text("SELECT count(*) FROM pmfin_payment_method_changes WHERE customer_id = :c AND finished_at "
                             "IS NOT NULL"), {"c": customer}).scalar_one()
    return idempotency_key("payment-methods", "set-default", customer, pm, done + 1), False


def set_default(engine: Engine, client: PmfinStripeClient, settings: Settings, tenant_id: uuid.UUID, pm: str, *,
                by: str | None = None, now: dt.datetime | None = None) -> DefaultResult:
    """Make ``pm`` (a saved, unexpired card of the tenant's customer) its default; refused inside a
    dunning retry window (the module docstring). Nothing is sent to Stripe when it is refused."""
    now = now or dt.datetime.now(dt.timezone.utc)
    customer, name = _customer(engine, tenant_id)
    windows = retry_windows(engine, settings, tenant_id)
    if windows:
        raise UsageError(window_refusal(tenant_id, name, max(windows, key=lambda w: w.last_retry)))
    cards = customer_cards(client, customer)
    card = next((c for c in cards if c.id == pm), None)
    if card is None:
        known = ", ".join(f"{c.id} ({c.label})" for c in cards) or "none"
        raise UsageError(f"{pm} is not a saved card of tenant {tenant_id} ({name}, customer {customer}); its cards: {known}")
    previous = next((c.id for c in cards if c.is_default), None)
    if card.expired(now):
        raise UsageError(f"{card.label} expired on {last_valid_day(card)}: it cannot pay anything, so it is not made the default")
    if card.is_default:  # an earlier run's answer may have been lost: Stripe shows it was done
        _finish_lost(engine, customer, pm)
        return DefaultResult(str(tenant_id), name, customer, pm, card.label, previous, False, None, False)
    with engine.begin() as conn:
        require_contract(conn, ("pmfin_payment_method_changes",))
        key, replayed = _set_default_key(conn, customer, pm)
        if not replayed:
            conn.execute(
                text("INSERT INTO pmfin_payment_method_changes (tenant_id, customer_id, payment_method_id, previous_default, "
                     "card, idempotency_key, requested_by) VALUES (:t, :c, :pm, :prev, :card, :key, :by) "
                "ON CONFLICT (idempotency_key) DO NOTHING"),  # two runs at once: one record, one key
                {"t": str(tenant_id), "c": customer, "pm": pm, "prev": previous, "card": card.label, "key": key, "by": by},
            )
    try:
        with stripe_call(client, f"set the default card of customer {customer}"):
            client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": pm}},
                                       {"idempotency_key": key})
    except StripeRequestError as err:  # Stripe refused it: finished (an outage stays unfinished for a rerun)
        _finish_default(engine, key, "refused", err.message)
        raise
    _finish_default(engine, key, "succeeded", None)
    return DefaultResult(str(tenant_id), name, customer, pm, card.label, previous, True, key, replayed)


def _finish_lost(engine: Engine, customer: str, pm: str) -> None:
    with engine.begin() as conn:
        if "pmfin_payment_method_changes" not in existing_tables(conn):
            return
        conn.execute(
            text("UPDATE pmfin_payment_method_changes SET finished_at = now(), outcome = 'succeeded', message = :m "
                 "WHERE customer_id = :c AND payment_method_id = :pm AND finished_at IS NULL"),
            {"m": "the answer was lost; Stripe shows the card as the default", "c": customer, "pm": pm},
        )


def _finish_default(engine: Engine, key: str, outcome: str, message: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE pmfin_payment_method_changes SET finished_at = now(), outcome = :o, message = :m "
                 "WHERE idempotency_key = :key AND finished_at IS NULL"),
            {"o": outcome, "m": message, "key": key},
        )


# -- expiring default cards ----------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiringCard:
    tenant_id: str
    tenant_name: str | None
    customer_id: str
    payment_method_id: str
    card: str
    brand: str | None
    last4: str | None
    expires_on: dt.date  # the last day it works
    status: str  # expiring / expired
    days_left: int  # days from as_of's date to the last valid day (negative: expired)
    plan_id: str
    renews_at: dt.datetime | None  # the first renewal on or after the day the card stops working
    amount: int  # that renewal's price (the subscription row's price × quantity)
    currency: str
    notified: bool | None = None  # --notify: told now (False: told before); None: not asked


@dataclass
class ExpiringReport:
    as_of: dt.datetime
    within_days: int
    tenants_checked: int = 0
    cards: list[ExpiringCard] = field(default_factory=list)
    no_default_card: int = 0
    demo_skipped: int = 0
    notifications: SendReport | None = None
    smtp_configured: bool = False


_CANDIDATES = f"""
SELECT DISTINCT ON (s.tenant_id) s.tenant_id, t.name, tc.stripe_customer_id, s.plan_id, s.unit_price_cents,
       s.quantity, lower(s.currency::text) AS currency, s.current_period_end, s.cancel_at_period_end,
       p.billing_cycle, {made_up_sql("s.tenant_id", "tc.stripe_customer_id", "customer")} AS made_up
FROM subscriptions s
JOIN tenants t ON t.id = s.tenant_id AND t.deleted IS NULL
JOIN tenant_config tc ON tc.tenant_id = s.tenant_id AND tc.stripe_customer_id IS NOT NULL
LEFT JOIN plans p ON p.id = s.plan_id
WHERE s.started_at <= :at AND (s.ended_at IS NULL OR s.ended_at > :at) AND s.unit_price_cents > 0
ORDER BY s.tenant_id, s.started_at DESC, s.id
"""


def add_months(at: dt.datetime, months: int, day: int) -> dt.datetime:
    """``at`` moved by ``months``, on ``day`` of the month (the month's last day when it has fewer)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    return at.replace(year=year, month=month, day=min(day, calendar.monthrange(year, month)[1]))


def first_renewal_from(period_end: dt.datetime, cycle: str | None, stops: dt.datetime) -> dt.datetime:
    """The first renewal at or after ``stops``, renewals falling every cycle from ``period_end``."""
    months = 12 if cycle == "year" else 1
    at, n = period_end, 0
    while at < stops:
        n += 1
        at = add_months(period_end, months * n, period_end.day)
    return at


def expiring(engine: Engine, client: PmfinStripeClient, settings: Settings, *, within: int = 30,
             as_of: dt.datetime | None = None, notify: bool = False) -> ExpiringReport:
    """Tenants whose default card expires within ``within`` days and whose subscription renews
    after it (module docstring); with ``notify``, each told once per card and expiry month."""
    as_of = as_of or dt.datetime.now(dt.timezone.utc)
    report = ExpiringReport(as_of, within, smtp_configured=settings.smtp is not None)
    horizon = as_of.date() + dt.timedelta(days=within)
    with engine.connect() as conn:
        require_contract(conn, ("tenants", "tenant_config", "plans", "subscriptions"))
        rows = conn.execute(readable(conn, _CANDIDATES), {"at": as_of}).all()
    report.demo_skipped = sum(1 for r in rows if r.made_up)
    candidates = {r.stripe_customer_id: r for r in rows if not r.made_up}
    report.tenants_checked = len(candidates)
    if not candidates:
        return report
    with stripe_call(client, "list customers"):
        customers = [plain(c) for c in client.v1.customers.list(
            {"limit": 100, "expand": ["data.invoice_settings.default_payment_method"]}).auto_paging_iter()]
    for customer in customers:
        r = candidates.get(customer.get("id"))
        if r is None:
            continue
        default = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if not isinstance(default, dict) or default.get("type", "card") != "card":
            report.no_default_card += 1
            continue
        card = card_from(default, default["id"])
        last = last_valid_day(card)
        if last is None or last > horizon or r.cancel_at_period_end:
            continue
        stops = dt.datetime.combine(last + DAY, dt.time(), dt.timezone.utc)
        renews = first_renewal_from(r.current_period_end, r.billing_cycle, stops) if r.current_period_end else None
        report.cards.append(ExpiringCard(
            str(r.tenant_id), r.name, customer["id"], card.id, card.label, card.brand, card.last4, last,
            "expired" if card.expired(as_of) else "expiring", (last - as_of.date()).days, r.plan_id, renews,
            int(r.unit_price_cents) * int(r.quantity), r.currency,
        ))
    report.cards.sort(key=lambda c: (c.expires_on, c.tenant_name or "", c.tenant_id))
    if notify and report.cards:
        _notify(engine, settings, report)
    return report


def notice_for(card: ExpiringCard, app_url: str) -> Notice:
    amount = format_money(card.amount, card.currency)
    month = f"{card.expires_on:%Y-%m}"
    brand = f"{card.brand.title()} " if card.brand else ""
    when = (f"expired on {card.expires_on}" if card.status == "expired" else f"expires on {card.expires_on}")
    renews = (f"The next charge, {amount} on {card.renews_at:%Y-%m-%d}, would fail on it.\n" if card.renews_at
              else f"The next charge of {amount} would fail on it.\n")
    body = (f"The card we charge for your PenguinMails subscription, {card.card}, {when}.\n{renews}\n"
            f"Please add a new card and make it the default: {app_url}/dashboard/settings/billing\n")
    return Notice(
        tenant_id=card.tenant_id, key=f"card_expiring:{card.payment_method_id}:{month}", kind="card_expiring",
        severity="warning", subject=f"Your {brand}card ending {card.last4} {when}", body=body,
        alert=f"Your default card {card.card} {when}. Update it before the next charge"
              + (f" on {card.renews_at:%Y-%m-%d}." if card.renews_at else "."),
    )


def _notify(engine: Engine, settings: Settings, report: ExpiringReport) -> None:
    new_keys: list[str] = []
    told: list[ExpiringCard] = []
    with engine.begin() as conn:
        require_contract(conn, ("pmfin_notifications", "pmfin_alerts"))
        for card in report.cards:
            notice = notice_for(card, settings.app_url)
            new = record(conn, notice, smtp_configured=settings.smtp is not None, at=report.as_of)
            if new:
                new_keys.append(notice.key)
            told.append(replace(card, notified=new))
    report.cards = told
    report.notifications = send_pending(engine, settings.smtp, keys=new_keys)


def summary(report: ExpiringReport) -> dict[str, Any]:
    n = report.notifications
    return {
        "as_of": report.as_of, "within_days": report.within_days, "tenants_checked": report.tenants_checked,
        "cards": len(report.cards), "expired": sum(c.status == "expired" for c in report.cards),
        "no_default_card": report.no_default_card, "demo_skipped": report.demo_skipped,
        "notified": sum(c.notified is True for c in report.cards) if n is not None else None,
        "already_notified": sum(c.notified is False for c in report.cards) if n is not None else None,
        "emails_sent": len(n.sent) if n is not None else None,
        "emails_pending": n.pending if n is not None else None,
    }
