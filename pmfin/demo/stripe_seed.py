"""``pmfin demo --stripe``: real test-mode Stripe objects for a few demo tenants, so that
``pmfin dunning run`` can be tried for real.

For each chosen tenant (demo tenants with a live subscription, in a fixed order) it creates, in the
user's Stripe **test** account: a customer (the tenant's billing email, ``metadata.tenant_id``),
saved cards from Stripe's test payment methods, an invoice for the tenant's monthly price, and
one payment attempt that declines. It then stores the customer id in ``tenant_config``, records
the failed attempt in ``payments`` exactly as the platform would (status 'failed', the invoice id,
the decline), and records the Stripe ids in ``pmfin_demo_objects`` (so dunning knows they are
real, unlike the demo's made-up ids).

Scenarios, in turn: a card that always declines (the tenant goes through every retry, then
restriction and suspension); a declining default card and a good second card (recovered by the
first retry); a declining card only, to be paid on the hosted invoice page.

Test mode only: with a live key this refuses before anything is sent (even with ``--live``).
Every write carries an idempotency key derived from the demo seed and the tenant.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import stripe
from sqlalchemy import text
from sqlalchemy.engine import Engine

from pmfin.errors import ConfigError, UsageError
from pmfin.stripe_ops.client import PmfinStripeClient, idempotency_key
from pmfin.stripe_ops.invoices import plain, stripe_call

# Stripe's test payment methods (docs.stripe.com/testing): attaching one of these ids makes a new
# card on the customer. Cards that decline at once (9995, 0002, …) cannot be attached at all;
# 4000000000000341 attaches and then declines every charge.
ALWAYS_DECLINES = "pm_card_chargeCustomerFail"
SUCCEEDS = "pm_card_visa"
SCENARIOS = (
    ("declines on every retry", (ALWAYS_DECLINES,)),
    ("recovered by the first retry on its second card", (ALWAYS_DECLINES, SUCCEEDS)),
    ("to be paid on the hosted invoice page", (ALWAYS_DECLINES,)),
)
MAX_TENANTS = 20


@dataclass(frozen=True)
class SeededTenant:
    tenant_id: str
    tenant_name: str | None
    scenario: str
    customer_id: str
    payment_methods: list[str]
    invoice_id: str
    invoice_number: str | None
    amount: int
    currency: str
    decline: str
    hosted_invoice_url: str | None


@dataclass
class StripeSeedResult:
    tenants: list[SeededTenant] = field(default_factory=list)


_CHOOSE = """
SELECT t.id, t.name, tc.billing_email, s.unit_price_cents * s.quantity AS amount, lower(s.currency::text) AS currency,
       p.billing_cycle
FROM pmfin_demo_objects o
JOIN tenants t ON t.id = o.object_id::uuid AND t.deleted IS NULL
JOIN tenant_config tc ON tc.tenant_id = t.id
JOIN LATERAL (
    SELECT * FROM subscriptions s WHERE s.tenant_id = t.id AND s.ended_at IS NULL AND s.unit_price_cents > 0
    ORDER BY s.started_at DESC LIMIT 1
) s ON true
JOIN plans p ON p.id = s.plan_id
WHERE o.kind = 'tenant' AND lower(s.currency::text) = 'usd'
ORDER BY t.id
LIMIT :n
"""


def seed_stripe(engine: Engine, client: PmfinStripeClient, *, seed: int, tenants: int = 3,
                now: dt.datetime | None = None) -> StripeSeedResult:
    if client.key_mode != "test":
        raise ConfigError(
            f"pmfin demo --stripe works only with a test-mode key (sk_test_…), got a {client.key_mode}-mode key "
            f"{client.masked_key}: it creates customers, cards and failing invoices"
        )
    if not 1 <= tenants <= MAX_TENANTS:
        raise UsageError(f"--stripe-tenants must be between 1 and {MAX_TENANTS}, got {tenants}")
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as conn:
        chosen = conn.execute(text(_CHOOSE), {"n": tenants}).all()
    if not chosen:
        raise UsageError("the demo has no tenant with a live USD subscription to bill at Stripe")
    result = StripeSeedResult()
    for i, row in enumerate(chosen):
        name, cards = SCENARIOS[i % len(SCENARIOS)]
        result.tenants.append(_seed_one(engine, client, row, name, cards, seed=seed, now=now))
    return result


def _seed_one(engine: Engine, client: PmfinStripeClient, row, scenario: str, cards: tuple[str, ...], *,
              seed: int, now: dt.datetime) -> SeededTenant:
    tenant_id = str(row.id)

    def key(*parts: object) -> dict:
        return {"idempotency_key": idempotency_key("demo", seed, tenant_id, *parts)}

    amount = int(row.amount) if row.billing_cycle != "year" else max(1, int(row.amount) // 12)
    what = f"create the demo's Stripe objects for tenant {tenant_id}"
    with stripe_call(client, what):
        customer = plain(client.v1.customers.create(
            {"email": row.billing_email, "name": row.name or tenant_id, "metadata": {"tenant_id": tenant_id, "pmfin_demo": "true"}},
            key("customer"),
        ))
        pms = [
            plain(client.v1.payment_methods.attach(test_pm, {"customer": customer["id"]}, key("attach", i, test_pm)))["id"]
            for i, test_pm in enumerate(cards)
        ]
        client.v1.customers.update(customer["id"], {"invoice_settings": {"default_payment_method": pms[0]}}, key("default"))
        client.v1.invoice_items.create(
            {"customer": customer["id"], "amount": amount, "currency": row.currency,
             "description": f"PenguinMails subscription, {now:%B %Y} (demo)"},
            key("item"),
        )
        invoice = plain(client.v1.invoices.create(
            {"customer": customer["id"], "collection_method": "charge_automatically", "auto_advance": False,
             "pending_invoice_items_behavior": "include", "metadata": {"tenant_id": tenant_id, "pmfin_demo": "true"}},
            key("invoice"),
        ))
        invoice = plain(client.v1.invoices.finalize_invoice(invoice["id"], {"auto_advance": False}, key("finalize")))
    decline, charge = _first_attempt(client, invoice["id"], pms[0], key("pay"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE tenant_config SET stripe_customer_id = :c, updated = now() WHERE tenant_id = :t"),
                     {"c": customer["id"], "t": tenant_id})
        conn.execute(
            text(
                """
                INSERT INTO payments (tenant_id, id, stripe_charge_id, stripe_invoice_id, revenue_stream, amount_cents,
                                      currency, status, failure_code, failure_message, created_at)
                VALUES (:t, :id, :charge, :invoice, 'subscription', :amount, :currency, 'failed', :code, :message, :at)
                ON CONFLICT DO NOTHING
                """
            ),
            {"t": tenant_id, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pmfin-demo:{invoice['id']}")), "charge": charge,
             "invoice": invoice["id"], "amount": amount, "currency": row.currency, "code": decline[0],
             "message": decline[1], "at": now},
        )
        conn.execute(
            text("INSERT INTO pmfin_demo_objects (kind, object_id, seed) VALUES ('stripe_customer', :c, :s), "
                 "('stripe_invoice', :i, :s) ON CONFLICT DO NOTHING"),
            {"c": customer["id"], "i": invoice["id"], "s": seed},
        )
    return SeededTenant(tenant_id, row.name, scenario, customer["id"], pms, invoice["id"], invoice.get("number"), amount,
                        row.currency, decline[0], invoice.get("hosted_invoice_url"))


def _first_attempt(client: PmfinStripeClient, invoice_id: str, pm: str, options: dict) -> tuple[tuple[str, str], str | None]:
    """The platform's own first attempt: it declines (the card is chosen for that)."""
    try:
        client.v1.invoices.pay(invoice_id, {"payment_method": pm, "off_session": True}, options)
    except stripe.CardError as err:
        code = (err.error.decline_code if err.error else None) or err.code or "card_declined"
        charge = getattr(err.error, "charge", None) if err.error else None
        return (code, (err.user_message or "declined").splitlines()[0]), charge
    except stripe.StripeError as err:
        with stripe_call(client, f"make the demo's first payment attempt on invoice {invoice_id}"):
            raise err
    raise UsageError(f"the demo's first payment attempt on invoice {invoice_id} did not decline: the test card did not behave as expected")
