"""Plan changes at Stripe with Stripe's proration preview, recorded in the platform's history
(``pmfin subscription change``, issue 10).

What a change does, exactly:

1. **Preview** (``preview_change``, reads only). The proration date is fixed once — now to the
   second, or ``--proration-date`` — and must fall in the item's current billing period.
   ``POST /v1/invoices/create_preview`` with ``customer``, ``subscription``,
   ``subscription_details[items]`` (the plan's item with the new price),
   ``subscription_details[proration_date]`` and ``[proration_behavior]=always_invoice`` answers
   the invoice the change makes at once. Its **proration lines**
   (``parent.subscription_item_details.proration`` true, starting at the proration date) are the
   **credit** for the unused time of the old price (negative) and the **charge** for the
   remaining time of the new one; when the billing interval changes (monthly ↔ annual) the cycle
   restarts at the change and the new period's line, which starts at that instant, is part of the
   charge. **Total** = credit + charge; what the card is charged now is the preview's
   ``amount_due`` (after any balance the customer has); a negative total becomes the customer's
   credit balance, used by the next invoices. The next period's line is not due now.
2. **Apply** (``apply_change``). The change is recorded in ``pmfin_plan_changes`` — the exact
   request and the idempotency key ``pmfin:subscription:change:<tenant>:<subscription>:<new
   price>:<proration date, unix seconds>`` — and committed, then ``POST
   /v1/subscriptions/{id}`` is sent with the same item, price, ``proration_date`` and
   ``proration_behavior``, and ``payment_behavior=error_if_incomplete`` (a declined card refuses
   the change at Stripe: nothing changes anywhere). On success one transaction ends the current
   ``subscriptions`` row (``ended_at`` = the proration date, ``end_reason`` 'plan_change'), starts
   the next at the same instant (plan, Stripe's unit price, quantity, period, status; its id is
   derived from the key) and marks the change applied — the only write pmfin makes to
   ``subscriptions`` (DESIGN.md §2).
3. **A lost answer** leaves the change 'pending'. The next run for the tenant (``finish_pending``)
   sends the recorded request again under the same key — Stripe answers it once — and writes the
   history; past Stripe's 24-hour key window it reads the subscription instead. So a rerun cannot
   apply a change twice, and the history is never written without Stripe's answer.

Refused before anything is sent (exit 2): an unknown or inactive plan, the same plan, a plan
without a Stripe price or in another currency, a tenant without a Stripe subscription, a
proration date outside the current period or in the future, and a downgrade below the seats or
IPs in use (``pmfin.metrics.plans.compare``'s blockers) unless ``force``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import stripe
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.migrate import require_contract
from pmfin.demo.marks import is_made_up
from pmfin.errors import PmfinError, ProblemsFound, UsageError
from pmfin.metrics.plans import Plan, compare, current_subscription
from pmfin.stripe_ops.client import PmfinStripeClient, idempotency_key, translate_error
from pmfin.stripe_ops.invoices import KEY_WINDOW, advisory_lock, plain, stripe_call, tenant_customer

PRORATION_BEHAVIOR = "always_invoice"  # the prorations are invoiced and charged at once
PAYMENT_BEHAVIOR = "error_if_incomplete"  # a declined card refuses the change: nothing changes
_ROW_NS = uuid.UUID("0b5d7a0e-5c1f-4d8e-9a51-3c3f0f6a1a10")  # new history rows: uuid5 of the key


def _ts(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


@dataclass(frozen=True)
class PreviewLine:
    description: str | None
    amount: int
    currency: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    proration: bool
    due_now: bool  # made by this change at once (a proration, or the new cycle's period)


@dataclass(frozen=True)
class ChangePlan:
    """A previewed change: everything ``apply_change`` sends and records."""

    tenant_id: str
    tenant_name: str | None
    customer_id: str
    stripe_subscription_id: str
    stripe_item_id: str
    from_row_id: str
    from_plan: str
    to_plan: str
    to_price_id: str
    quantity: int
    currency: str
    proration_date: dt.datetime
    proration_behavior: str
    direction: str
    credit: int  # unused time of the old price, ≤ 0
    charge: int  # remaining time of the new price (and a new cycle's period), ≥ 0
    total: int  # credit + charge
    amount_due: int  # what the card is charged now (after the customer's balance)
    unit_amount: int  # Stripe's price of the new plan, per cycle per unit
    billing_cycle: str
    next_renewal: dt.datetime | None  # when the new price is next billed in full
    next_amount: int  # unit_amount × quantity
    idempotency_key: str
    lines: list[PreviewLine] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # blockers --force went past
    warnings: list[str] = field(default_factory=list)

    def request(self) -> dict[str, Any]:
        """The parameters of ``POST /v1/subscriptions/{id}``, exactly as recorded and sent."""
        return {
            "items": [{"id": self.stripe_item_id, "price": self.to_price_id}],
            "proration_date": int(self.proration_date.timestamp()),
            "proration_behavior": self.proration_behavior,
            "payment_behavior": PAYMENT_BEHAVIOR,
        }


@dataclass(frozen=True)
class ChangeResult:
    tenant_id: str
    tenant_name: str | None
    from_plan: str
    to_plan: str
    proration_date: dt.datetime
    status: str  # applied / declined / refused / not_applied
    idempotency_key: str
    replayed: bool  # the request of an earlier run, sent again under its key (or found done)
    currency: str
    credit: int
    charge: int
    total: int
    stripe_subscription_id: str
    subscription_status: str | None = None
    stripe_invoice_id: str | None = None
    invoice_status: str | None = None
    amount_paid: int | None = None
    ended_row_id: str | None = None
    started_row_id: str | None = None
    message: str | None = None


# -- preview -----------------------------------------------------------------------------------


def _proration_flag(line: dict) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration") or line.get("proration"))


def preview_lines(invoice: dict, at: int) -> list[PreviewLine]:
    """The preview's lines; ``due_now`` for those the change makes at ``at`` (unix seconds)."""
    out = []
    currency = (invoice.get("currency") or "usd").lower()
    for line in (invoice.get("lines") or {}).get("data") or []:
        period = line.get("period") or {}
        proration = _proration_flag(line)
        out.append(PreviewLine(line.get("description"), int(line.get("amount") or 0),
                               (line.get("currency") or currency).lower(), _ts(period.get("start")),
                               _ts(period.get("end")), proration, period.get("start") == at))
    return out


def _made_up(conn: Connection, tenant_id: uuid.UUID, customer: str) -> bool:
    return is_made_up(conn, tenant_id, customer, "customer")


def _item_of(sub: dict, price_id: str | None) -> dict:
    items = (sub.get("items") or {}).get("data") or []
    matching = [i for i in items if ((i.get("price") or {}).get("id")) == price_id] if price_id else []
    if len(matching) == 1:
        return matching[0]
    if len(items) == 1:
        return items[0]
    raise UsageError(f"Stripe subscription {sub['id']} has {len(items)} items and none with the current plan's price "
                     f"{price_id}: pmfin cannot tell which item is the plan")


def _check_price(price: dict, plan: Plan) -> list[str]:
    interval = (price.get("recurring") or {}).get("interval")
    if interval != plan.billing_cycle or (price.get("recurring") or {}).get("interval_count", 1) != 1:
        raise UsageError(f"plan {plan.id} is billed per {plan.billing_cycle}, but its Stripe price {price['id']} recurs "
                         f"per {interval or 'nothing (one-time)'}: fix plans.stripe_price_id")
    if (price.get("currency") or "").lower() != plan.currency:
        raise UsageError(f"plan {plan.id} is priced in {plan.currency.upper()}, its Stripe price {price['id']} in "
                         f"{(price.get('currency') or '?').upper()}: fix plans.stripe_price_id")
    if not price.get("active", True):
        raise UsageError(f"the Stripe price {price['id']} of plan {plan.id} is archived at Stripe")
    if int(price.get("unit_amount") or 0) != plan.price:
        return [f"Stripe's price {price['id']} is {price.get('unit_amount')} a unit, plans.price_cents says {plan.price}: "
                "Stripe's amount is what is billed and recorded"]
    return []


def preview_change(engine: Engine, client: PmfinStripeClient, tenant_id: uuid.UUID, to_plan_id: str, *,
                   proration_date: dt.datetime | None = None, force: bool = False,
                   now: dt.datetime | None = None) -> ChangePlan:
    """Check the change and ask Stripe for its proration preview. Writes nothing anywhere."""
    now = now or dt.datetime.now(dt.timezone.utc)
    at = (proration_date or now).replace(microsecond=0)
    if at > now:
        raise UsageError(f"--proration-date must not be in the future, got {at:%Y-%m-%dT%H:%M:%SZ}")
    with engine.connect() as conn:
        require_contract(conn, ("tenants", "tenant_config", "plans", "addons", "subscriptions", "emails",
                                "tenant_users", "ip_allocations"))
        customer, _ = tenant_customer(conn, tenant_id)
        cmp = compare(conn, tenant_id, to_plan_id, now=now)
        cur, new = cmp.current, cmp.to
        if current_subscription(conn, tenant_id, at) != cur:
            raise UsageError(f"the subscription of tenant {tenant_id} changed after {at:%Y-%m-%d %H:%M:%S} UTC: "
                             "the proration date must be after its current row began "
                             f"({cur.started_at:%Y-%m-%d %H:%M:%S} UTC)")
        who = f"tenant {tenant_id} ({cur.tenant_name})"
        if not new.active:
            raise UsageError(f"plan {new.id} is no longer offered (plans.active is false)")
        if not new.stripe_price_id:
            raise UsageError(f"plan {new.id} has no Stripe price (plans.stripe_price_id): it cannot be billed")
        if new.currency != cur.currency:
            raise UsageError(f"plan {new.id} is priced in {new.currency.upper()}, {who} pays in {cur.currency.upper()}")
        if not cur.stripe_subscription_id:
            raise UsageError(f"{who} has no Stripe subscription (subscriptions.stripe_subscription_id is empty): "
                             "pmfin changes plans at Stripe")
        if not customer:
            raise UsageError(f"{who} has no Stripe customer (tenant_config.stripe_customer_id)")
        if _made_up(conn, tenant_id, customer):
            raise UsageError(f"{who} is a demo tenant whose Stripe ids pmfin demo made up: there is nothing at Stripe to change")
    if cmp.blockers and not force:
        raise UsageError(f"refusing to move {who} to {new.id} below its current usage: " + "; ".join(cmp.blockers)
                         + " (or pass --force)")
    sub_id = cur.stripe_subscription_id
    with stripe_call(client, f"read subscription {sub_id}"):
        sub = plain(client.v1.subscriptions.retrieve(sub_id))
        price = plain(client.v1.prices.retrieve(new.stripe_price_id))
    if sub.get("customer") != customer:
        raise UsageError(f"Stripe subscription {sub_id} belongs to customer {sub.get('customer')}, not to {who}'s {customer}")
    if sub.get("status") in ("canceled", "incomplete_expired"):
        raise UsageError(f"Stripe subscription {sub_id} of {who} is {sub.get('status')}: there is nothing to change")
    item = _item_of(sub, cur.plan.stripe_price_id)
    if (item.get("price") or {}).get("id") == new.stripe_price_id:
        raise UsageError(f"Stripe subscription {sub_id} is already on {new.id}'s price {new.stripe_price_id}: "
                         "the platform's subscriptions history is behind Stripe")
    warnings = _check_price(price, new)
    start, end = item.get("current_period_start"), item.get("current_period_end")
    ts = int(at.timestamp())
    if start is not None and end is not None and not start <= ts < end:
        raise UsageError(f"the proration date {at:%Y-%m-%d %H:%M:%S} UTC is outside the current billing period "
                         f"({_ts(start):%Y-%m-%d %H:%M:%S} – {_ts(end):%Y-%m-%d %H:%M:%S} UTC)")
    params = {"customer": customer, "subscription": sub_id, "subscription_details": {
        "items": [{"id": item["id"], "price": new.stripe_price_id}], "proration_date": ts,
        "proration_behavior": PRORATION_BEHAVIOR}}
    with stripe_call(client, f"preview the change of subscription {sub_id}"):
        invoice = plain(client.v1.invoices.create_preview(params))
    lines = preview_lines(invoice, ts)
    due = [ln for ln in lines if ln.due_now]
    credit = sum(ln.amount for ln in due if ln.amount < 0)
    charge = sum(ln.amount for ln in due if ln.amount > 0)
    new_cycle = [ln for ln in due if not ln.proration]
    next_renewal = new_cycle[0].period_end if new_cycle else _ts(end)
    unit = int(price.get("unit_amount") or 0)
    quantity = int(item.get("quantity") or cur.quantity)
    return ChangePlan(
        tenant_id=str(tenant_id), tenant_name=cur.tenant_name, customer_id=customer, stripe_subscription_id=sub_id,
        stripe_item_id=item["id"], from_row_id=cur.id, from_plan=cur.plan.id, to_plan=new.id,
        to_price_id=new.stripe_price_id, quantity=quantity, currency=cur.currency, proration_date=at,
        proration_behavior=PRORATION_BEHAVIOR, direction=cmp.direction, credit=credit, charge=charge,
        total=credit + charge, amount_due=int(invoice.get("amount_due") or 0), unit_amount=unit,
        billing_cycle=new.billing_cycle, next_renewal=next_renewal, next_amount=unit * quantity,
        idempotency_key=idempotency_key("subscription", "change", tenant_id, sub_id, new.stripe_price_id, ts),
        lines=lines, losses=cmp.losses, forced=cmp.blockers if force else [], warnings=warnings,
    )


# -- apply -------------------------------------------------------------------------------------


def tenant_lock(engine: Engine, tenant_id: uuid.UUID | str):
    """One plan change per tenant at a time."""
    return advisory_lock(engine, f"pmfin:subscription:{tenant_id}")


_RECORD = """
SELECT tenant_id, id, idempotency_key, stripe_subscription_id, stripe_item_id, from_row_id, from_plan_id, to_plan_id,
       to_price_id, proration_date, request, credit, charge, lower(currency::text) AS currency, requested_at,
       finished_at, status, message, stripe_invoice_id, to_row_id
FROM pmfin_plan_changes
"""


def _record(conn: Connection, plan: ChangePlan, by: str | None) -> Any:
    conn.execute(
        text(
            """
            INSERT INTO pmfin_plan_changes (tenant_id, idempotency_key, stripe_subscription_id, stripe_item_id,
                from_row_id, from_plan_id, to_plan_id, to_price_id, proration_date, request, credit, charge, currency,
                requested_by)
            VALUES (:t, :key, :sub, :item, :from_row, :from_plan, :to_plan, :price, :at, CAST(:request AS jsonb),
                    :credit, :charge, :currency, :by)
            ON CONFLICT (idempotency_key) DO NOTHING
            """
        ),
        {"t": plan.tenant_id, "key": plan.idempotency_key, "sub": plan.stripe_subscription_id,
         "item": plan.stripe_item_id, "from_row": plan.from_row_id, "from_plan": plan.from_plan, "to_plan": plan.to_plan,
         "price": plan.to_price_id, "at": plan.proration_date, "request": json.dumps(plan.request()),
         "credit": plan.credit, "charge": plan.charge, "currency": plan.currency, "by": by},
    )
    return conn.execute(text(_RECORD + " WHERE idempotency_key = :key"), {"key": plan.idempotency_key}).one()


def apply_change(engine: Engine, client: PmfinStripeClient, plan: ChangePlan, *, by: str | None = None) -> ChangeResult:
    """Record the change, send it to Stripe under its key, write the history (module docstring)."""
    with tenant_lock(engine, plan.tenant_id) as locked:
        if not locked:
            raise UsageError(f"another plan change of tenant {plan.tenant_id} is in progress; try again shortly")
        with engine.begin() as conn:
            require_contract(conn, ("pmfin_plan_changes",))
            ended = conn.execute(
                text("SELECT ended_at FROM subscriptions WHERE tenant_id = :t AND id = :id FOR UPDATE"),
                {"t": plan.tenant_id, "id": plan.from_row_id},
            ).one_or_none()
            record = conn.execute(text(_RECORD + " WHERE idempotency_key = :key"), {"key": plan.idempotency_key}).one_or_none()
            if record is not None and record.status != "pending":
                return _result(record, plan.tenant_name, replayed=True)
            if ended is None or (ended.ended_at is not None and ended.ended_at <= plan.proration_date):
                raise UsageError(f"the subscription of tenant {plan.tenant_id} changed since the preview: run the command again")
            record = _record(conn, plan, by)
        return _send(engine, client, record, plan.tenant_name, replayed=False)


def _send(engine: Engine, client: PmfinStripeClient, record: Any, name: str | None, *, replayed: bool) -> ChangeResult:
    request = record.request if isinstance(record.request, dict) else json.loads(record.request)
    what = f"change subscription {record.stripe_subscription_id} to plan {record.to_plan_id}"
    try:
        answer = client.v1.subscriptions.update(record.stripe_subscription_id, request,
                                                {"idempotency_key": record.idempotency_key})
    except stripe.CardError as err:
        decline = (err.error.decline_code if err.error else None) or None
        reason = f"{err.code}/{decline}" if decline else (err.code or "card_error")
        _finish(engine, record, "declined", f"card declined ({reason}): {(err.user_message or '').strip()}")
        raise PmfinError(f"the card of tenant {record.tenant_id} ({name}) was declined ({reason}) for the change to "
                         f"{record.to_plan_id}: nothing was changed; `pmfin payment-methods list --tenant "
                         f"{record.tenant_id}` shows its cards", exit_code=1) from None
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as err:
        message = translate_error(err, what, client).message
        _finish(engine, record, "refused", message)
        raise UsageError(message + ": nothing was changed") from None
    except stripe.StripeError as err:
        translated = translate_error(err, what, client)
        translated.message += (f"; the change stays pending (key {record.idempotency_key}): run the same command again "
                               "to finish it, it cannot apply twice")
        raise translated from None
    return _write_history(engine, client, record, plain(answer), name, replayed=replayed)


def _finish(engine: Engine, record: Any, status: str, message: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE pmfin_plan_changes SET status = :s, message = :m, finished_at = now() "
                 "WHERE idempotency_key = :key AND status = 'pending'"),
            {"s": status, "m": message, "key": record.idempotency_key},
        )


def _write_history(engine: Engine, client: PmfinStripeClient, record: Any, sub: dict, name: str | None, *,
                   replayed: bool, note: str | None = None) -> ChangeResult:
    """One transaction: end the current row, start the next at the same instant, mark the change applied."""
    items = (sub.get("items") or {}).get("data") or []
    item = next((i for i in items if i.get("id") == record.stripe_item_id), None) or _item_of(sub, record.to_price_id)
    price = item.get("price") or {}
    at = record.proration_date
    new_id = uuid.uuid5(_ROW_NS, record.idempotency_key)
    invoice_id = sub.get("latest_invoice")
    invoice_id = invoice_id.get("id") if isinstance(invoice_id, dict) else invoice_id
    message = note
    with engine.begin() as conn:
        old = conn.execute(
            text(
                """
                UPDATE subscriptions SET ended_at = :at, end_reason = 'plan_change'
                WHERE tenant_id = :t AND id = :id AND (ended_at IS NULL OR ended_at > :at)
                RETURNING quantity, canceled_at
                """
            ),
            {"at": at, "t": record.tenant_id, "id": record.from_row_id},
        ).one_or_none()
        if old is None:  # someone else ended the row: is the new one there already?
            found = conn.execute(
                text("SELECT id FROM subscriptions WHERE tenant_id = :t AND plan_id = :p AND started_at = :at"),
                {"t": record.tenant_id, "p": record.to_plan_id, "at": at},
            ).scalar_one_or_none()
            if found is None:
                message = ("applied at Stripe, but the subscriptions row it ends was ended by someone else: "
                           "the history was not written")
                conn.execute(text("UPDATE pmfin_plan_changes SET status = 'applied', finished_at = now(), message = :m, "
                                  "stripe_invoice_id = :inv WHERE idempotency_key = :key"),
                             {"m": message, "inv": invoice_id, "key": record.idempotency_key})
                raise ProblemsFound(f"the change of tenant {record.tenant_id} to {record.to_plan_id} was {message}; "
                                    "check its subscriptions rows")
            new_id = found
        else:
            cancel = bool(sub.get("cancel_at_period_end"))
            trial_end = sub.get("trial_end")
            conn.execute(
                text(
                    """
                    INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency,
                        started_at, trial_ends_at, current_period_start, current_period_end, cancel_at_period_end,
                        canceled_at, stripe_subscription_id)
                    VALUES (:t, :id, :plan, :status, :quantity, :unit, :currency, :at, :trial, :ps, :pe, :cancel,
                            :canceled, :sub)
                    ON CONFLICT (tenant_id, id) DO NOTHING
                    """
                ),
                {"t": record.tenant_id, "id": new_id, "plan": record.to_plan_id, "status": sub.get("status"),
                 "quantity": int(item.get("quantity") or old.quantity), "unit": int(price.get("unit_amount") or 0),
                 "currency": (price.get("currency") or record.currency).lower(), "at": at,
                 "trial": _ts(trial_end) if trial_end and _ts(trial_end) > at else None,
                 "ps": _ts(item.get("current_period_start")), "pe": _ts(item.get("current_period_end")),
                 "cancel": cancel, "canceled": old.canceled_at if cancel else None, "sub": sub.get("id")},
            )
        conn.execute(
            text("UPDATE pmfin_plan_changes SET status = 'applied', finished_at = now(), message = :m, "
                 "stripe_invoice_id = :inv, to_row_id = :row WHERE idempotency_key = :key"),
            {"m": message, "inv": invoice_id, "row": new_id, "key": record.idempotency_key},
        )
        record = conn.execute(text(_RECORD + " WHERE idempotency_key = :key"), {"key": record.idempotency_key}).one()
    result = _result(record, name, replayed=replayed, subscription_status=sub.get("status"))
    if invoice_id:
        with stripe_call(client, f"read invoice {invoice_id}"):
            inv = plain(client.v1.invoices.retrieve(invoice_id))
        if inv.get("billing_reason") == "subscription_update":  # the invoice this change made
            result = replace(result, invoice_status=inv.get("status"), amount_paid=int(inv.get("amount_paid") or 0))
        else:
            result = replace(result, stripe_invoice_id=None)
    return result


def _result(record: Any, name: str | None, *, replayed: bool, subscription_status: str | None = None) -> ChangeResult:
    return ChangeResult(
        tenant_id=str(record.tenant_id), tenant_name=name, from_plan=record.from_plan_id, to_plan=record.to_plan_id,
        proration_date=record.proration_date, status=record.status, idempotency_key=record.idempotency_key,
        replayed=replayed, currency=record.currency, credit=int(record.credit), charge=int(record.charge),
        total=int(record.credit) + int(record.charge), stripe_subscription_id=record.stripe_subscription_id,
        subscription_status=subscription_status, stripe_invoice_id=record.stripe_invoice_id,
        ended_row_id=str(record.from_row_id) if record.status == "applied" else None,
        started_row_id=str(record.to_row_id) if record.to_row_id else None, message=record.message,
    )


# -- lost answers ------------------------------------------------------------------------------


def finish_pending(engine: Engine, client: PmfinStripeClient, tenant_id: uuid.UUID, *,
                   now: dt.datetime | None = None) -> list[ChangeResult]:
    """Finish the tenant's changes whose answer never arrived: within Stripe's key window the
    recorded request is sent again under its key (Stripe answers it once); past it the
    subscription is read, and the change counts as applied when its item has the new price.
    A declined or refused replay is a result here, not an error."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as conn:
        require_contract(conn, ("tenants", "subscriptions", "pmfin_plan_changes"))
        name = conn.execute(text("SELECT name FROM tenants WHERE id = :t"), {"t": str(tenant_id)}).scalar_one_or_none()
        pending = conn.execute(text(_RECORD + " WHERE tenant_id = :t AND status = 'pending' ORDER BY id"),
                               {"t": str(tenant_id)}).all()
    if not pending:
        return []
    results = []
    with tenant_lock(engine, tenant_id) as locked:
        if not locked:
            raise UsageError(f"another plan change of tenant {tenant_id} is in progress; try again shortly")
        for record in pending:
            if now - record.requested_at < KEY_WINDOW:
                try:
                    results.append(_send(engine, client, record, name, replayed=True))
                except PmfinError as err:
                    if err.exit_code == 2 and not _finished(engine, record):
                        raise  # Stripe still cannot be reached: the change stays pending
                    with engine.connect() as conn:
                        done = conn.execute(text(_RECORD + " WHERE idempotency_key = :k"), {"k": record.idempotency_key}).one()
                    results.append(_result(done, name, replayed=True))
                continue
            with stripe_call(client, f"read subscription {record.stripe_subscription_id}"):
                sub = plain(client.v1.subscriptions.retrieve(record.stripe_subscription_id))
            prices = {(i.get("price") or {}).get("id") for i in (sub.get("items") or {}).get("data") or []}
            if record.to_price_id in prices:
                results.append(_write_history(engine, client, record, sub, name, replayed=True,
                                              note="the answer was lost; Stripe's subscription shows the change"))
            else:
                _finish(engine, record, "not_applied", "the answer was lost and Stripe's subscription does not show the change")
                with engine.connect() as conn:
                    done = conn.execute(text(_RECORD + " WHERE idempotency_key = :k"), {"k": record.idempotency_key}).one()
                results.append(_result(done, name, replayed=True))
    return results


def _finished(engine: Engine, record: Any) -> bool:
    with engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM pmfin_plan_changes WHERE idempotency_key = :k"),
                              {"k": record.idempotency_key}).scalar_one()
    return status != "pending"
