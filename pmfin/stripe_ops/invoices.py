"""Invoices at Stripe: list, show, pay (one recorded attempt), void, PDF — and the payment
attempt recorder that dunning shares.

Service functions: they take an engine and a Stripe client, return dataclasses, never print.

Stripe interface (issue 7; the fake in tests/stripe_fake serves exactly this):
``GET /v1/invoices`` (customer, status, created[gte], 100 a page), ``GET /v1/invoices/{id}``
(``expand[]=payments``), ``POST /v1/invoices/{id}/pay`` (payment_method, off_session=true),
``POST /v1/invoices/{id}/void``, the PDF behind ``invoice_pdf``; ``GET /v1/customers/{id}``
and ``GET /v1/customers/{id}/payment_methods?type=card`` for the saved cards.

A payment attempt is recorded in ``pmfin_payment_attempts`` and committed *before* the Stripe
call, its outcome after: a process killed in between leaves an unfinished attempt whose
idempotency key the next run sends again, so Stripe answers the stored result instead of
charging twice.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import stripe
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.errors import PmfinError, UsageError
from pmfin.settings import Settings
from pmfin.stripe_ops.client import PmfinStripeClient, StripeUnavailable, idempotency_key, translate_error

STATUSES = ("draft", "open", "paid", "uncollectible", "void")
PAYABLE = ("open", "uncollectible")
_INVOICE_ID = re.compile(r"^in_[A-Za-z0-9]+$")
_PM_ID = re.compile(r"^(pm|card|src)_[A-Za-z0-9]+$")

# A decline that will not go away by trying the same card again (issue 7: judged on
# decline_code, else on code). Everything else (insufficient_funds, do_not_honor, …) is soft.
HARD_DECLINES = frozenset(
    {"expired_card", "incorrect_number", "lost_card", "stolen_card", "pickup_card", "restricted_card",
     "fraudulent", "invalid_account"}
)
KEY_WINDOW = dt.timedelta(hours=23)  # Stripe keeps an idempotency key 24 h; a margin for clocks


# -- input -------------------------------------------------------------------------------------


def parse_invoice_id(value: str) -> str:
    value = (value or "").strip()
    if not _INVOICE_ID.match(value):
        raise UsageError(f"a Stripe invoice id looks like in_1AbC…, got {value!r}")
    return value


def parse_payment_method(value: str) -> str:
    value = (value or "").strip()
    if not _PM_ID.match(value):
        raise UsageError(f"a Stripe payment method id looks like pm_1AbC…, got {value!r}")
    return value


def parse_status(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v not in STATUSES:
        raise UsageError(f"--status must be one of {', '.join(STATUSES)}, got {value!r}")
    return v


# -- plain data --------------------------------------------------------------------------------


def plain(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _ts(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


@dataclass(frozen=True)
class Card:
    id: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    created: int
    is_default: bool = False

    @property
    def label(self) -> str:
        exp = f" exp {self.exp_month:02d}/{self.exp_year}" if self.exp_month and self.exp_year else ""
        return f"{self.brand or 'card'} •••• {self.last4 or '????'}{exp}"

    def expired(self, at: dt.datetime) -> bool:
        """A card is valid through the last day of its expiry month (UTC)."""
        if not (self.exp_month and self.exp_year):
            return False
        last_day = calendar.monthrange(self.exp_year, self.exp_month)[1]
        valid_until = dt.datetime(self.exp_year, self.exp_month, last_day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
        return at >= valid_until


def card_from(pm: dict, default_id: str | None) -> Card:
    c = pm.get("card") or {}
    return Card(pm["id"], c.get("brand"), c.get("last4"), c.get("exp_month"), c.get("exp_year"),
                int(pm.get("created") or 0), pm["id"] == default_id)


@dataclass(frozen=True)
class InvoiceSummary:
    id: str
    number: str | None
    status: str
    tenant_id: str | None
    tenant_name: str | None
    customer_id: str | None
    currency: str
    total: int
    amount_due: int
    amount_paid: int
    amount_remaining: int
    attempt_count: int
    created: dt.datetime | None
    due_date: dt.datetime | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None


@dataclass(frozen=True)
class InvoiceLine:
    description: str | None
    quantity: int | None
    amount: int
    currency: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    proration: bool


@dataclass(frozen=True)
class StripePayment:
    """One entry of the invoice's ``payments`` (API 2025-03-31+: attempts live here)."""

    id: str
    status: str
    amount_requested: int | None
    amount_paid: int | None
    payment: str | None  # the PaymentIntent (or charge) id
    created: dt.datetime | None
    paid_at: dt.datetime | None


@dataclass(frozen=True)
class Attempt:
    """A payment attempt pmfin made (``pmfin_payment_attempts``)."""

    invoice_id: str
    origin: str  # dunning / manual
    slot: int | None
    payment_method_id: str
    card: str | None
    idempotency_key: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None  # succeeded / declined / refused / unknown; None: unfinished
    code: str | None
    decline_code: str | None
    hard: bool | None
    message: str | None


@dataclass(frozen=True)
class InvoiceDetail(InvoiceSummary):
    subtotal: int = 0
    tax: int = 0
    lines: list[InvoiceLine] = field(default_factory=list)
    payments: list[StripePayment] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    case: Any = None  # dunning.CaseSummary or None


def summary_from(inv: dict, tenants: dict[str, tuple[str, str | None]]) -> InvoiceSummary:
    tenant = tenants.get(inv.get("customer") or "")
    return InvoiceSummary(
        id=inv["id"],
        number=inv.get("number"),
        status=inv.get("status") or "draft",
        tenant_id=tenant[0] if tenant else None,
        tenant_name=tenant[1] if tenant else None,
        customer_id=inv.get("customer"),
        currency=(inv.get("currency") or "usd").lower(),
        total=int(inv.get("total") or 0),
        amount_due=int(inv.get("amount_due") or 0),
        amount_paid=int(inv.get("amount_paid") or 0),
        amount_remaining=int(inv.get("amount_remaining") or 0),
        attempt_count=int(inv.get("attempt_count") or 0),
        created=_ts(inv.get("created")),
        due_date=_ts(inv.get("due_date")),
        hosted_invoice_url=inv.get("hosted_invoice_url"),
        invoice_pdf=inv.get("invoice_pdf"),
    )


def _tax(inv: dict) -> int:
    if inv.get("total_taxes") is not None:
        return sum(int(t.get("amount") or 0) for t in inv.get("total_taxes") or [])
    if inv.get("tax") is not None:
        return int(inv["tax"])
    return int(inv.get("total") or 0) - int(inv.get("total_excluding_tax") or inv.get("subtotal") or 0)


def _line(line: dict, currency: str) -> InvoiceLine:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    period = line.get("period") or {}
    return InvoiceLine(
        line.get("description"), line.get("quantity"), int(line.get("amount") or 0),
        (line.get("currency") or currency).lower(), _ts(period.get("start")), _ts(period.get("end")),
        bool(details.get("proration") or line.get("proration")),
    )


def _payment(p: dict) -> StripePayment:
    pay = p.get("payment") or {}
    ref = pay.get("payment_intent") or pay.get("charge") or pay.get("payment_record")
    if isinstance(ref, dict):
        ref = ref.get("id")
    return StripePayment(p["id"], p.get("status") or "", p.get("amount_requested"), p.get("amount_paid"), ref,
                         _ts(p.get("created")), _ts((p.get("status_transitions") or {}).get("paid_at")))


# -- database lookups --------------------------------------------------------------------------


def tenants_by_customer(conn: Connection, customers: list[str] | None = None) -> dict[str, tuple[str, str | None]]:
    """customer id → (tenant id, tenant name), from ``tenant_config.stripe_customer_id``."""
    sql = """
        SELECT tc.stripe_customer_id, tc.tenant_id, t.name
        FROM tenant_config tc JOIN tenants t ON t.id = tc.tenant_id
        WHERE tc.stripe_customer_id IS NOT NULL
    """
    params: dict = {}
    if customers is not None:
        sql += " AND tc.stripe_customer_id = ANY(:c)"
        params["c"] = customers
    return {r[0]: (str(r[1]), r[2]) for r in conn.execute(text(sql), params)}


def tenant_customer(conn: Connection, tenant_id: uuid.UUID) -> tuple[str | None, str | None]:
    """(customer id, tenant name) of a tenant; UsageError for an unknown tenant."""
    row = conn.execute(
        text(
            "SELECT t.name, tc.stripe_customer_id FROM tenants t LEFT JOIN tenant_config tc ON tc.tenant_id = t.id "
            "WHERE t.id = :t"
        ),
        {"t": tenant_id},
    ).one_or_none()
    if row is None:
        raise UsageError(f"no tenant with id {tenant_id}")
    return row.stripe_customer_id, row.name


_ATTEMPTS = """
SELECT invoice_id, origin, slot, payment_method_id, card, idempotency_key, started_at, finished_at,
       outcome, code, decline_code, hard, message
FROM pmfin_payment_attempts WHERE invoice_id = :invoice ORDER BY started_at, id
"""


def attempts_for(conn: Connection, invoice_id: str) -> list[Attempt]:
    return [Attempt(*r) for r in conn.execute(text(_ATTEMPTS), {"invoice": invoice_id})]


# -- Stripe reads ------------------------------------------------------------------------------


def stripe_call(client: PmfinStripeClient, what: str):
    """``client.errors``: a Stripe error becomes the pmfin error saying ``what`` failed, with the
    Stripe error kept as ``stripe_error`` (so callers can tell an outage from a refusal)."""
    return client.errors(what)


def is_not_found(err: PmfinError) -> bool:
    original = getattr(err, "stripe_error", None)
    return isinstance(original, stripe.InvalidRequestError) and (
        original.http_status == 404 or original.code == "resource_missing"
    )


def is_unreachable(err: PmfinError) -> bool:
    """No answer at all (connection refused, DNS, timeouts): the next request will fare no better."""
    return isinstance(getattr(err, "stripe_error", None), stripe.APIConnectionError)


def retrieve_invoice(client: PmfinStripeClient, invoice_id: str) -> dict:
    with stripe_call(client, f"read invoice {invoice_id}"):
        return plain(client.v1.invoices.retrieve(invoice_id, {"expand": ["payments"]}))


def customer_cards(client: PmfinStripeClient, customer_id: str) -> list[Card]:
    """The customer's saved cards: the default (``invoice_settings.default_payment_method``)
    first, then the others oldest first."""
    with stripe_call(client, f"read customer {customer_id}"):
        customer = plain(client.v1.customers.retrieve(customer_id))
        default = (customer.get("invoice_settings") or {}).get("default_payment_method")
        if isinstance(default, dict):
            default = default.get("id")
        pms = [
            plain(pm)
            for pm in client.v1.customers.payment_methods.list(customer_id, {"type": "card", "limit": 100}).auto_paging_iter()
        ]
    cards = [card_from(pm, default) for pm in pms]
    cards.sort(key=lambda c: (not c.is_default, c.created, c.id))
    return cards


def list_invoices(
    engine: Engine,
    client: PmfinStripeClient,
    *,
    tenant_id: uuid.UUID | None = None,
    status: str | None = None,
    since: dt.date | None = None,
) -> list[InvoiceSummary]:
    """Invoices newest first (Stripe's order), each with its tenant (by customer id)."""
    params: dict[str, Any] = {"limit": 100}
    with engine.connect() as conn:
        if tenant_id is not None:
            customer, name = tenant_customer(conn, tenant_id)
            if not customer:
                raise UsageError(f"tenant {tenant_id} ({name}) has no Stripe customer (tenant_config.stripe_customer_id)")
            params["customer"] = customer
        tenants = tenants_by_customer(conn, [params["customer"]] if "customer" in params else None)
    if status:
        params["status"] = status
    if since:
        params["created"] = {"gte": int(dt.datetime.combine(since, dt.time(), dt.timezone.utc).timestamp())}
    with stripe_call(client, "list invoices"):
        invoices = [plain(i) for i in client.v1.invoices.list(params).auto_paging_iter()]
    return [summary_from(i, tenants) for i in invoices]


def show_invoice(engine: Engine, client: PmfinStripeClient, invoice_id: str) -> InvoiceDetail:
    from pmfin.stripe_ops import dunning

    inv = retrieve_invoice(client, invoice_id)
    with engine.connect() as conn:
        tenants = tenants_by_customer(conn, [inv["customer"]] if inv.get("customer") else [])
        attempts = attempts_for(conn, invoice_id)
        case = dunning.case_summary(conn, invoice_id)
    base = summary_from(inv, tenants)
    currency = base.currency
    lines = [_line(plain(li), currency) for li in ((inv.get("lines") or {}).get("data") or [])]
    payments = [_payment(plain(p)) for p in ((inv.get("payments") or {}).get("data") or [])]
    return InvoiceDetail(
        **vars(base),
        subtotal=int(inv.get("subtotal") or 0),
        tax=_tax(inv),
        lines=lines,
        payments=payments,
        attempts=attempts,
        case=case,
    )


# -- paying --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    key: str
    card: str | None  # the card's label ('visa •••• 4242 exp 12/2030')
    payment_method_id: str
    outcome: str  # succeeded / declined / refused
    code: str | None = None
    decline_code: str | None = None
    hard: bool = False
    message: str | None = None
    request_id: str | None = None
    replayed: bool = False  # an unfinished attempt's key sent again
    invoice: dict | None = None  # the invoice as Stripe answered a successful pay

    @property
    def reason(self) -> str:
        return "/".join(x for x in (self.code, self.decline_code) if x) or self.outcome


def is_hard(code: str | None, decline_code: str | None) -> bool:
    return (decline_code or code or "") in HARD_DECLINES


def record_attempt(conn: Connection, *, tenant_id: str, invoice: dict, pm: str, card: str | None, key: str,
                   origin: str, slot: int | None) -> None:
    conn.execute(
        text(
            """
            INSERT INTO pmfin_payment_attempts
                (tenant_id, invoice_id, origin, slot, payment_method_id, card, idempotency_key, amount, currency)
            VALUES (:t, :invoice, :origin, :slot, :pm, :card, :key, :amount, :currency)
            """
        ),
        {
            "t": tenant_id, "invoice": invoice["id"], "origin": origin, "slot": slot, "pm": pm,
            "card": card, "key": key, "amount": invoice.get("amount_remaining"),
            "currency": invoice.get("currency"),
        },
    )


def finish_attempt(conn: Connection, result: AttemptResult) -> None:
    conn.execute(
        text(
            """
            UPDATE pmfin_payment_attempts
            SET finished_at = now(), outcome = :outcome, code = :code, decline_code = :decline,
                hard = :hard, message = :message, request_id = :request
            WHERE idempotency_key = :key
            """
        ),
        {
            "outcome": result.outcome, "code": result.code, "decline": result.decline_code,
            "hard": result.hard if result.outcome == "declined" else None, "message": result.message,
            "request": result.request_id, "key": result.key,
        },
    )


def send_pay(client: PmfinStripeClient, invoice_id: str, pm: str, key: str, card: str | None,
             *, replayed: bool = False) -> AttemptResult:
    """``POST /v1/invoices/{id}/pay`` under ``key``. A decline or refusal is a result; an outage
    (no answer after the client's retries) raises ``StripeUnavailable`` — the outcome is then
    unknown, and the attempt stays unfinished."""
    try:
        answer = client.v1.invoices.pay(invoice_id, {"payment_method": pm, "off_session": True}, {"idempotency_key": key})
    except stripe.CardError as err:
        decline = (err.error.decline_code if err.error else None) or None
        return AttemptResult(key, card, pm, "declined", err.code, decline, is_hard(err.code, decline),
                             _first_line(err.user_message), err.request_id, replayed)
    except (stripe.InvalidRequestError, stripe.IdempotencyError) as err:
        return AttemptResult(key, card, pm, "refused", err.code, None, False, _first_line(err.user_message),
                             err.request_id, replayed)
    except stripe.StripeError as err:
        translated = translate_error(err, f"pay invoice {invoice_id}", client)
        translated.stripe_error = err  # type: ignore[attr-defined]
        raise translated from None
    inv = plain(answer)
    outcome = "succeeded" if inv.get("status") == "paid" else "refused"
    message = None if outcome == "succeeded" else f"Stripe answered with the invoice {inv.get('status')}"
    return AttemptResult(key, card, pm, outcome, None, None, False, message, None, replayed, inv)


def _first_line(text_: str | None) -> str | None:
    return (text_ or "").strip().splitlines()[0] if (text_ or "").strip() else None


def attempt_payment(engine: Engine, client: PmfinStripeClient, *, tenant_id: str, invoice: dict, card: str | None,
                    pm: str, key: str, origin: str, slot: int | None) -> AttemptResult:
    """Record the attempt (committed), call Stripe, record the outcome (committed)."""
    with engine.begin() as conn:
        record_attempt(conn, tenant_id=tenant_id, invoice=invoice, pm=pm, card=card, key=key, origin=origin, slot=slot)
    result = send_pay(client, invoice["id"], pm, key, card)
    with engine.begin() as conn:
        finish_attempt(conn, result)
    return result


def unfinished_attempts(conn: Connection, invoice_id: str, *, origin: str | None = None) -> list[Attempt]:
    return [a for a in attempts_for(conn, invoice_id) if a.outcome is None and (origin is None or a.origin == origin)]


def resolve_unfinished(engine: Engine, client: PmfinStripeClient, attempt: Attempt, *, now: dt.datetime) -> AttemptResult | None:
    """An attempt whose answer never arrived: within Stripe's key window send the same key again
    (Stripe answers the stored result, or does the work once); past it mark the outcome unknown
    (None: the caller reads the invoice instead)."""
    if now - attempt.started_at < KEY_WINDOW:
        result = send_pay(client, attempt.invoice_id, attempt.payment_method_id, attempt.idempotency_key, attempt.card,
                          replayed=True)
        with engine.begin() as conn:
            finish_attempt(conn, result)
        return result
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE pmfin_payment_attempts SET finished_at = now(), outcome = 'unknown', message = :m "
                "WHERE idempotency_key = :key AND outcome IS NULL"
            ),
            {"key": attempt.idempotency_key,
             "m": "the answer never arrived and Stripe no longer keeps the key (24 h): the invoice was read instead"},
        )
    return None


@contextmanager
def advisory_lock(engine: Engine, key: str, *, wait: bool = False) -> Iterator[bool]:
    """A session-level Postgres advisory lock named ``key`` for the block. Yields False when
    another session holds it (``wait``: wait for it instead)."""
    with engine.connect() as conn:
        fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        got = conn.execute(text(f"SELECT {fn}(hashtextextended(:k, 0))"), {"k": key}).scalar()
        conn.commit()
        got = True if wait else bool(got)
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": key})
                conn.commit()


def invoice_lock(engine: Engine, invoice_id: str, *, wait: bool = False):
    """The lock of one invoice: ``invoices pay``/``void`` and a dunning run never act on the same
    invoice at the same moment. Yields False when another holds it."""
    return advisory_lock(engine, f"pmfin:invoice:{invoice_id}", wait=wait)


def manual_key(conn: Connection, invoice: dict, pm: str) -> str:
    """``pmfin:invoices:pay:<invoice>:<attempt_count>:<pm>`` (attempt_count as read just before).

    Stripe counts only automatic retries after the first attempt, so a deliberate new try after
    a decline can read the same attempt_count: when pmfin already has a *finished* attempt under
    the key, the new try gets ``:<n>`` appended (a new key, a new attempt)."""
    base = idempotency_key("invoices", "pay", invoice["id"], int(invoice.get("attempt_count") or 0), pm)
    used = {
        r[0]
        for r in conn.execute(
            text("SELECT idempotency_key FROM pmfin_payment_attempts WHERE idempotency_key = :b OR idempotency_key LIKE :p"),
            {"b": base, "p": base.replace("%", r"\%").replace("_", r"\_") + ":%"},
        )
    }
    if base not in used:
        return base
    n = 2
    while f"{base}:{n}" in used:
        n += 1
    return f"{base}:{n}"


@dataclass(frozen=True)
class PayResult:
    invoice_id: str
    number: str | None
    tenant_id: str | None
    amount: int
    currency: str
    payment_method: str
    card: str | None
    outcome: str  # succeeded / declined / refused
    reason: str | None
    message: str | None
    idempotency_key: str
    replayed: bool
    hosted_invoice_url: str | None
    case_closed: bool = False


def pay_invoice(engine: Engine, client: PmfinStripeClient, settings: Settings, invoice_id: str, *,
                payment_method: str | None = None, now: dt.datetime | None = None, key: str | None = None) -> PayResult:
    """One attempt to pay an open (or uncollectible) invoice with one saved card.

    A rerun after a lost answer re-sends the unfinished attempt's key (Stripe answers it once);
    an invoice that is paid, void or draft is refused before anything is sent. ``key``: the
    idempotency key to use instead of the attempt-count one (a request queued in the outbox)."""
    from pmfin.stripe_ops import dunning

    now = now or dt.datetime.now(dt.timezone.utc)
    inv = retrieve_invoice(client, invoice_id)
    replay = _replay_lost_answer(engine, client, settings, inv, payment_method, now=now)
    if replay is not None:
        return replay
    status = inv.get("status")
    if status not in PAYABLE:
        hint = {"paid": "nothing is due", "void": "a void invoice cannot be paid",
                "draft": "finalize it first: a draft is not due yet"}.get(status or "", "")
        raise UsageError(f"invoice {invoice_id} is {status}: {hint}".rstrip(": "))
    customer = inv.get("customer")
    if not customer:
        raise UsageError(f"invoice {invoice_id} has no customer to charge")
    with engine.connect() as conn:
        tenant = tenants_by_customer(conn, [customer]).get(customer)
    if tenant is None:
        raise UsageError(
            f"invoice {invoice_id} belongs to Stripe customer {customer}, which no tenant has "
            "(tenant_config.stripe_customer_id): pmfin pays only its tenants' invoices"
        )
    cards = customer_cards(client, customer)
    if payment_method is None:
        default = inv.get("default_payment_method")
        default = default.get("id") if isinstance(default, dict) else default
        card = next((c for c in cards if c.id == default), None) or next((c for c in cards if c.is_default), None)
        if card is None:
            raise UsageError(f"customer {customer} has no default card: give --payment-method (see `pmfin invoices show {invoice_id}`)")
    else:
        card = next((c for c in cards if c.id == payment_method), None)
        if card is None:
            known = ", ".join(f"{c.id} ({c.label})" for c in cards) or "none"
            raise UsageError(f"{payment_method} is not a saved card of customer {customer}; its cards: {known}")
    with invoice_lock(engine, invoice_id) as locked:
        if not locked:
            raise UsageError(f"invoice {invoice_id} is being worked on by a dunning run or another `invoices pay`; try again shortly")
        if key is None:
            with engine.connect() as conn:
                key = manual_key(conn, inv, card.id)
        result = attempt_payment(engine, client, tenant_id=tenant[0], invoice=inv, card=card.label, pm=card.id,
                                 key=key, origin="manual", slot=None)
        closed = False
        if result.outcome == "succeeded":
            closed = dunning.settle_after_payment(engine, invoice_id, result.invoice or inv, now=now, settings=settings)
    return _pay_result(inv, tenant[0], result, closed)


def _pay_result(inv: dict, tenant_id: str | None, result: AttemptResult, closed: bool) -> PayResult:
    return PayResult(
        invoice_id=inv["id"], number=inv.get("number"), tenant_id=tenant_id, amount=int(inv.get("amount_due") or 0),
        currency=(inv.get("currency") or "usd").lower(), payment_method=result.payment_method_id, card=result.card,
        outcome=result.outcome, reason=result.reason if result.outcome != "succeeded" else None,
        message=result.message, idempotency_key=result.key, replayed=result.replayed,
        hosted_invoice_url=inv.get("hosted_invoice_url"), case_closed=closed,
    )


def _replay_lost_answer(engine: Engine, client: PmfinStripeClient, settings: Settings, inv: dict,
                        payment_method: str | None, *, now: dt.datetime) -> PayResult | None:
    """A rerun after a lost answer: an earlier ``invoices pay`` of this invoice (with this card,
    when one is given) recorded its attempt but never got the answer. Within Stripe's key window
    the same key is sent again and Stripe's stored answer is the result, whatever the invoice's
    status now; past it the attempt is marked unknown and the caller goes on as usual."""
    from pmfin.stripe_ops import dunning

    invoice_id = inv["id"]
    with engine.connect() as conn:
        pending = [a for a in unfinished_attempts(conn, invoice_id, origin="manual")
                   if payment_method is None or a.payment_method_id == payment_method]
    if not pending:
        return None
    with invoice_lock(engine, invoice_id) as locked:
        if not locked:
            raise UsageError(f"invoice {invoice_id} is being worked on by a dunning run or another `invoices pay`; try again shortly")
        result = None
        for attempt in pending:
            result = resolve_unfinished(engine, client, attempt, now=now) or result
        if result is None:
            return None
        closed = False
        if result.outcome == "succeeded":
            closed = dunning.settle_after_payment(engine, invoice_id, result.invoice or inv, now=now, settings=settings)
    with engine.connect() as conn:
        tenant = tenants_by_customer(conn, [inv["customer"]]).get(inv["customer"]) if inv.get("customer") else None
    return _pay_result(inv, tenant[0] if tenant else None, result, closed)


# -- voiding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoidResult:
    invoice_id: str
    number: str | None
    status: str
    amount_due: int
    currency: str
    case_closed: bool


def preview_void(client: PmfinStripeClient, invoice_id: str) -> dict:
    """The invoice, after checking it can be voided (open or uncollectible)."""
    inv = retrieve_invoice(client, invoice_id)
    if inv.get("status") not in PAYABLE:
        raise UsageError(f"invoice {invoice_id} is {inv.get('status')}: only an open or uncollectible invoice can be voided")
    return inv


def void_invoice(engine: Engine, client: PmfinStripeClient, settings: Settings, invoice_id: str, *,
                 now: dt.datetime | None = None) -> VoidResult:
    from pmfin.stripe_ops import dunning

    inv = preview_void(client, invoice_id)
    with invoice_lock(engine, invoice_id) as locked:
        if not locked:
            raise UsageError(f"invoice {invoice_id} is being worked on by a dunning run or `invoices pay`; try again shortly")
        with stripe_call(client, f"void invoice {invoice_id}"):
            voided = plain(client.v1.invoices.void_invoice(invoice_id, None, {"idempotency_key": idempotency_key("invoices", "void", invoice_id)}))
        closed = dunning.settle_after_payment(engine, invoice_id, voided, now=now or dt.datetime.now(dt.timezone.utc),
                                              settings=settings)
    return VoidResult(invoice_id, voided.get("number"), voided.get("status") or "void", int(inv.get("amount_due") or 0),
                      (inv.get("currency") or "usd").lower(), closed)


# -- PDF -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfResult:
    invoice_id: str
    number: str | None
    path: str
    bytes: int


def safe_filename(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") or "invoice"


def download_pdf(client: PmfinStripeClient, invoice_id: str, output: Path | None = None, *, timeout: float = 30.0) -> PdfResult:
    """Fetch the invoice's PDF (``invoice_pdf``) to ``output`` (default ``<number>.pdf``),
    refusing anything that is not a PDF; written to a temporary file and renamed, so a failed
    download never leaves half a file where the PDF should be."""
    import os
    import tempfile

    import requests

    inv = retrieve_invoice(client, invoice_id)
    url = inv.get("invoice_pdf")
    if not url:
        raise UsageError(f"invoice {invoice_id} has no PDF yet (status {inv.get('status')}: Stripe makes one when it is finalized)")
    target = output or Path(f"{safe_filename(inv.get('number') or invoice_id)}.pdf")
    if target.is_dir():
        raise UsageError(f"{target} is a directory: give a file name with -o")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"the directory {parent} does not exist")
    try:
        response = requests.get(url, timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise StripeUnavailable(f"could not download the PDF of invoice {invoice_id}: {type(exc).__name__}") from None
    with response:
        if response.status_code != 200:
            raise StripeUnavailable(f"could not download the PDF of invoice {invoice_id}: HTTP {response.status_code}")
        fd, tmp = tempfile.mkstemp(prefix=".pmfin-", suffix=".pdf", dir=parent)
        size = 0
        head = b""
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in response.iter_content(64 * 1024):
                    if len(head) < 8:
                        head += chunk[: 8 - len(head)]
                    fh.write(chunk)
                    size += len(chunk)
                tail_ok = _ends_like_pdf(fh, tmp)
            if not head.startswith(b"%PDF-") or not tail_ok:
                raise UsageError(f"what Stripe sent for invoice {invoice_id} is not a PDF (it starts with {head[:8]!r})")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return PdfResult(invoice_id, inv.get("number"), str(target), size)


def _ends_like_pdf(fh, path: str) -> bool:
    fh.flush()
    with open(path, "rb") as rf:
        rf.seek(0, 2)
        rf.seek(max(0, rf.tell() - 1024))
        return b"%%EOF" in rf.read()
