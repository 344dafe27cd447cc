"""Billing: customers, payment methods, invoice items and invoices, and what paying an invoice
makes — a payment intent and an ``invoice_payment`` per invoice, a ``charge`` per attempt, a
``balance_transaction`` per succeeded charge. ``Billing`` is the engine the HTTP handlers
(``customers.py``, ``invoices.py``) and the test-side helpers (``fake.billing``,
``billing_helpers.py``) share.

Stripe behaviour kept (API 2026-10-28, the installed SDK's docs):

- Invoices have no ``charge``/``payment_intent``/``subscription`` fields (API 2025-03-31+): the
  payment intent is on the invoice's ``invoice_payment`` (``payments``, expandable), a
  subscription is ``parent.subscription_details.subscription``.
- ``attempt_count`` counts "from the perspective of the payment retry schedule": any first
  payment attempt makes it 1, later manual attempts (``POST /pay``) do not raise it; only
  automatic retries do (``fake.billing.automatic_attempt``). ``attempted`` is true after any.
- ``pending_invoice_items_behavior`` defaults to ``exclude``.
- An invoice whose amount due is 0 is paid when finalized (no payment intent, no charge).
- Finalizing applies the customer's ``balance`` (``starting_balance``/``ending_balance``): credit
  lowers the amount due, a negative total (a downgrade's credit) becomes credit.
- Declines: see ``stripe_fake/cards.py``. A decline answers 402 and the invoice stays open.
- The fee on a charge is 2.9 % (half up) + a fixed fee in the charge's currency (30 ¢ for usd).

Objects live in the fake's store under the owner of the request (the platform, or the
connected account named by ``Stripe-Account``); the test helpers work on the platform.
"""

from __future__ import annotations

import copy
import secrets
import time
from decimal import ROUND_HALF_UP, Decimal

from .. import cards
from ..errors import StripeApiError, invalid_request
from ..objects import changed, expand_paths, from_fixture, json_copy, new_id, now, paginate

FEE_PERCENT = Decimal("0.029")
FEE_FIXED = {"usd": 30, "eur": 25, "gbp": 20, "cad": 30, "aud": 30, "nzd": 30, "chf": 30, "sgd": 50, "jpy": 50}
FEE_FIXED_DEFAULT = 30
SETTLEMENT_DAYS = 2  # available_on of a card payment's balance transaction
SMART_RETRY_SECONDS = 3 * 86400  # next_payment_attempt after a failure, for auto_advance invoices
FIRST_ATTEMPT_SECONDS = 3600  # Stripe attempts an auto_advance invoice about an hour after finalizing

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())

INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")

# How Stripe names an object in "No such …" messages.
LABELS = {"payment_method": "PaymentMethod"}

# id prefix → object type, for expansion (longest prefixes first: inpay_ before in_).
PREFIXES = (
    ("inpay_", "invoice_payment"),
    ("acct_", "account"),
    ("cus_", "customer"),
    ("txn_", "balance_transaction"),
    ("pm_", "payment_method"),
    ("pi_", "payment_intent"),
    ("ch_", "charge"),
    ("py_", "charge"),  # a payment on a connected account (a destination charge's transfer)
    ("ii_", "invoiceitem"),
    ("in_", "invoice"),
    ("tr_", "transfer"),
    ("fee_", "application_fee"),
    ("dp_", "dispute"),
    ("re_", "refund"),
    ("file_", "file"),
    ("prod_", "product"),
    ("price_", "price"),
    ("sub_", "subscription"),
    ("si_", "subscription_item"),
)


def stripe_fee(amount: int, currency: str) -> int:
    """2.9 % of the amount rounded half up to the minor unit, plus the currency's fixed fee."""
    percent = (Decimal(amount) * FEE_PERCENT).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(percent) + FEE_FIXED.get(currency.lower(), FEE_FIXED_DEFAULT)


def fee_breakdown(fee: int | None, fee_details: list[dict] | None, currency: str) -> tuple[int, list[dict]]:
    """(fee, fee_details) as a balance transaction holds them: the details sum to the fee. Either
    may be given; a detail needs ``amount`` (``type`` defaults to stripe_fee)."""
    if fee_details is None:
        fee_details = [{"amount": fee}] if fee else []
    details = [
        {
            "amount": int(d["amount"]),
            "application": d.get("application"),
            "currency": d.get("currency", currency),
            "description": d.get("description", "Stripe processing fees"),
            "type": d.get("type", "stripe_fee"),
        }
        for d in fee_details
    ]
    total = sum(d["amount"] for d in details)
    if fee is not None and fee != total:
        raise ValueError(f"fee_details sum to {total}, not fee={fee}")
    return total, details


def format_amount(amount: int, currency: str) -> str:
    """``12345, 'usd'`` → ``'123.45 USD'``; zero-decimal currencies have no fraction."""
    if currency.lower() in ZERO_DECIMAL:
        return f"{amount:,} {currency.upper()}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    return f"{sign}{major:,}.{minor:02d} {currency.upper()}"


def _null_address() -> dict:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


class Billing:
    """Billing operations on one owner's objects (None: the platform)."""

    def __init__(self, fake, owner: str | None = None):
        self.fake = fake
        self.store = fake.store
        self.owner = owner

    # -- lookups -----------------------------------------------------------------------------
    def get(self, kind: str, obj_id: str, *, param: str | None = None) -> dict:
        """The object, or Stripe's resource_missing: 404 for a path id, 400 naming ``param``."""
        obj = self.store.get(kind, obj_id, self.owner) if isinstance(obj_id, str) else None
        if obj is None:
            raise StripeApiError(
                404 if param is None else 400,
                "invalid_request_error",
                f"No such {LABELS.get(kind, kind)}: '{obj_id}'",
                code="resource_missing",
                param=param or "id",
            )
        return obj

    def put(self, obj: dict) -> dict:
        return self.store.put(obj, self.owner)

    def lookup(self, obj_id: str) -> dict | None:
        """Any object by its id (for ``expand``)."""
        for prefix, kind in PREFIXES:
            if obj_id.startswith(prefix):
                if kind == "account":
                    found = self.store.get("account", obj_id)
                    platform = self.fake.accounts.platform
                    return found or (platform if platform["id"] == obj_id else None)
                if prefix == "py_":  # lives on the connected account the platform transferred to
                    found = self.store.get(kind, obj_id, self.owner) or self.store.find(kind, obj_id)
                    return found[1] if isinstance(found, tuple) else found
                return self.store.get(kind, obj_id, self.owner)
        return None

    def expand(self, obj: dict, paths: list[str]) -> dict:
        """A deep copy of ``obj`` with ``paths`` expanded (``a.b`` follows ids, ``data`` lists)."""
        out = json_copy(obj)
        expand_paths(out, paths, self.lookup)
        return out

    @property
    def account_id(self) -> str:
        return self.owner or self.fake.accounts.platform["id"]

    # -- events ------------------------------------------------------------------------------
    # Stripe sends previous_attributes with *.updated events and these:
    WITH_PREVIOUS = ("charge.refunded", "payment_method.detached")

    def emit(self, type: str, obj: dict, before: dict | None = None, *, created: int | None = None) -> None:
        """Record the event ``type`` about ``obj`` as it is now (``before``: a copy from before the
        change, for ``previous_attributes``), on this owner's account."""
        events = getattr(self.fake, "events", None)
        if events is None:
            return
        previous = None
        if before is not None and (type.endswith(".updated") or type in self.WITH_PREVIOUS):
            previous = changed(self.event_view(before), self.event_view(obj))
        events.record(type, self.event_view(obj), owner=self.owner, previous=previous, created=created)

    def event_view(self, obj: dict) -> dict:
        """An object as events carry it: as the API renders it (no unexpanded ``refunds``; an
        invoice's first 10 lines). Serialized at once by the event log, so no deep copy."""
        kind = obj.get("object")
        if kind == "invoice":
            return self.render_invoice(obj, [])
        if kind == "charge":
            return {k: v for k, v in obj.items() if k != "refunds"}
        return obj

    def emit_if_changed(self, type: str, obj: dict, before: dict, *, created: int | None = None) -> None:
        if before != obj:
            self.emit(type, obj, before, created=created)

    # -- customers ---------------------------------------------------------------------------
    def create_customer(
        self,
        *,
        email: str | None = None,
        name: str | None = None,
        description: str | None = None,
        phone: str | None = None,
        metadata: dict | None = None,
        created: int | None = None,
        emit: bool = True,
    ) -> dict:
        customer = from_fixture(
            "customer",
            id=new_id("cus", 14),
            created=created if created is not None else now(),
            address=None,
            balance=0,
            currency=None,
            default_source=None,
            delinquent=False,
            description=description,
            discount=None,
            email=email,
            invoice_prefix=secrets.token_hex(4).upper(),
            livemode=False,
            metadata={k: v for k, v in (metadata or {}).items() if v != ""},
            name=name,
            next_invoice_sequence=1,
            phone=phone,
            preferred_locales=[],
            shipping=None,
            tax_exempt="none",
            test_clock=None,
        )
        customer["invoice_settings"] = {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        }
        self.put(customer)
        if emit:
            self.emit("customer.created", customer, created=customer["created"])
        return customer

    def set_default_payment_method(self, customer: dict, pm_id: str | None, *, param: str) -> None:
        """``invoice_settings.default_payment_method``: must be attached to this customer."""
        if pm_id in (None, ""):
            customer["invoice_settings"]["default_payment_method"] = None
            return
        self.require_attached(customer, pm_id, param=param)
        customer["invoice_settings"]["default_payment_method"] = pm_id

    def require_attached(self, customer: dict, pm_id: str, *, param: str) -> dict:
        pm = self.get("payment_method", pm_id, param=param)
        if pm["customer"] != customer["id"]:
            raise invalid_request(
                f"The customer does not have a payment method with the ID {pm_id}. The payment method must be "
                "attached to the customer.",
                param=param,
                code="resource_missing",
            )
        return pm

    def newest_first(self, items: list[dict]) -> list[dict]:
        """By ``created``, newest first; the store's order (newest inserted first) breaks ties."""
        return sorted(items, key=lambda o: o["created"], reverse=True)

    # -- payment methods ---------------------------------------------------------------------
    def new_card(
        self,
        number: str,
        *,
        exp_month: int | None = None,
        exp_year: int | None = None,
        created: int | None = None,
        customer: str | None = None,
    ) -> dict:
        """A card payment method (not attached unless ``customer`` is given)."""
        spec = cards.card_for(number)
        ts = created if created is not None else now()
        if exp_month is None or exp_year is None:  # Stripe's test payment methods: a year from now
            today = time.gmtime(ts)
            exp_month, exp_year = today.tm_mon, today.tm_year + 1
        pm = from_fixture(
            "payment_method",
            id=new_id("pm"),
            created=ts,
            customer=customer,
            livemode=False,
            metadata={},
            type="card",
            allow_redisplay="unspecified",
            customer_account=None,
        )
        pm["billing_details"] = {"address": _null_address(), "email": None, "name": None, "phone": None, "tax_id": None}
        pm["card"].update(
            brand=spec.brand,
            checks={"address_line1_check": None, "address_postal_code_check": None, "cvc_check": None},
            country=spec.country,
            display_brand=spec.brand,
            exp_month=int(exp_month),
            exp_year=int(exp_year),
            fingerprint=cards.fingerprint(spec.number),
            funding=spec.funding,
            generated_from=None,
            last4=spec.last4,
            networks={"available": [spec.brand], "preferred": None},
            three_d_secure_usage={"supported": True},
            wallet=None,
            regulated_status="unregulated",
        )
        return self.put(pm)

    def card_behaviour(self, pm: dict) -> cards.CardSpec | None:
        return cards.by_fingerprint(pm["card"]["fingerprint"])

    def charge_decline(self, pm: dict, at: int | None = None) -> cards.Decline | None:
        card = pm["card"]
        if cards.is_expired(card["exp_month"], card["exp_year"], at):
            return cards.EXPIRED
        spec = self.card_behaviour(pm)
        return spec.charge_decline if spec else None

    def check_attachable(self, pm_id: str, customer_id: str | None, *, param: str | None = None) -> None:
        """Raise what attaching ``pm_id`` would answer, before anything is created."""
        if pm_id in cards.MAGIC_PAYMENT_METHODS:
            spec = cards.card_for(cards.MAGIC_PAYMENT_METHODS[pm_id])
            if spec.attach_decline:
                raise card_error(spec.attach_decline)
            return
        pm = self.get("payment_method", pm_id, param=param)
        if pm["customer"] is not None and pm["customer"] != customer_id:
            raise invalid_request(
                "The payment method you provided has already been attached to a customer.", param=param
            )
        if pm["customer"] is None:  # attaching checks the card with its issuer
            spec = self.card_behaviour(pm)
            if cards.is_expired(pm["card"]["exp_month"], pm["card"]["exp_year"]):
                raise card_error(cards.EXPIRED, payment_method=pm)
            if spec and spec.attach_decline:
                raise card_error(spec.attach_decline, payment_method=pm)

    def attach(self, pm_id: str, customer: dict, *, param: str | None = None, emit: bool = True) -> dict:
        """Attach a payment method (a magic test id makes a new one) to ``customer``."""
        self.check_attachable(pm_id, customer["id"], param=param)
        if pm_id in cards.MAGIC_PAYMENT_METHODS:
            pm = self.new_card(cards.MAGIC_PAYMENT_METHODS[pm_id], customer=customer["id"])
        else:
            pm = self.get("payment_method", pm_id, param=param)
            if pm["customer"] == customer["id"]:
                return pm  # attached already: nothing changes
            pm["customer"] = customer["id"]
        if emit:
            self.emit("payment_method.attached", pm)
        return pm

    def detach(self, pm: dict) -> dict:
        if pm["customer"] is None:
            raise invalid_request(
                "The payment method you provided is not attached to a customer so detachment is impossible."
            )
        customer = self.store.get("customer", pm["customer"], self.owner)
        before_pm = json_copy(pm)
        pm["customer"] = None
        self.emit("payment_method.detached", pm, before_pm)
        if customer and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
            before = json_copy(customer)
            customer["invoice_settings"]["default_payment_method"] = None
            self.emit("customer.updated", customer, before)
        return pm

    def payment_methods_of(self, customer_id: str) -> list[dict]:
        return self.newest_first([pm for pm in self.store.all("payment_method", self.owner) if pm["customer"] == customer_id])

    # -- invoice items -----------------------------------------------------------------------
    def create_item(
        self,
        customer: dict,
        *,
        amount: int,
        currency: str,
        description: str | None = None,
        metadata: dict | None = None,
        period: dict | None = None,
        subscription: str | None = None,
        created: int | None = None,
    ) -> dict:
        ts = created if created is not None else now()
        item = from_fixture(
            "invoiceitem",
            id=new_id("ii"),
            amount=amount,
            currency=currency,
            customer=customer["id"],
            date=ts,
            description=description,
            discountable=True,
            discounts=[],
            invoice=None,
            livemode=False,
            metadata=dict(metadata or {}),
            period={"start": int((period or {}).get("start", ts)), "end": int((period or {}).get("end", ts))},
            proration=False,
            quantity=1,
            quantity_decimal="1",
            tax_rates=[],
            test_clock=None,
            parent=_subscription_parent(subscription),
            pricing={"price_details": None, "type": "price_details", "unit_amount_decimal": str(amount)},
            net_amount=amount,
            customer_account=None,
        )
        if customer["currency"] is None:
            customer["currency"] = currency
        self.put(item)
        self.emit("invoiceitem.created", item, created=ts)
        return item

    def pending_items(self, customer_id: str, currency: str) -> list[dict]:
        """Pending items (on no invoice) in ``currency``, oldest first."""
        items = [
            i
            for i in reversed(self.store.all("invoiceitem", self.owner))
            if i["customer"] == customer_id and i["invoice"] is None and i["currency"] == currency
        ]
        return sorted(items, key=lambda i: i["date"])

    # -- invoices ----------------------------------------------------------------------------
    def create_invoice(
        self,
        customer: dict,
        *,
        collection_method: str = "charge_automatically",
        auto_advance: bool = False,
        include_pending: bool = False,
        description: str | None = None,
        metadata: dict | None = None,
        currency: str | None = None,
        default_payment_method: str | None = None,
        days_until_due: int | None = None,
        due_date: int | None = None,
        subscription: str | None = None,
        footer: str | None = None,
        statement_descriptor: str | None = None,
        created: int | None = None,
        emit: bool = True,
    ) -> dict:
        """A draft invoice; with ``include_pending`` the customer's pending items become its lines.
        ``emit=False``: no ``invoice.created`` (a preview)."""
        ts = created if created is not None else now()
        if currency is None:
            currency = customer["currency"]
        if currency is None:
            pending = sorted(
                (i for i in self.store.all("invoiceitem", self.owner) if i["customer"] == customer["id"] and i["invoice"] is None),
                key=lambda i: i["date"],
            )
            currency = pending[0]["currency"] if pending else "usd"
        invoice_id = new_id("in")
        if collection_method == "send_invoice" and due_date is None:
            due_date = ts + 86400 * (30 if days_until_due is None else int(days_until_due))
        invoice = from_fixture(
            "invoice",
            id=invoice_id,
            account_country=self._account_country(),
            account_name=None,
            account_tax_ids=None,
            amount_due=0,
            amount_overpaid=0,
            amount_paid=0,
            amount_remaining=0,
            amount_shipping=0,
            application=None,
            attempt_count=0,
            attempted=False,
            auto_advance=auto_advance,
            automatic_tax={"enabled": False, "liability": None, "status": None, "disabled_reason": None, "provider": None},
            automatically_finalizes_at=ts + FIRST_ATTEMPT_SECONDS if auto_advance else None,
            billing_reason="subscription_cycle" if subscription else "manual",
            collection_method=collection_method,
            created=ts,
            currency=currency,
            custom_fields=None,
            customer=customer["id"],
            customer_account=None,
            customer_address=copy.deepcopy(customer["address"]),
            customer_email=customer["email"],
            customer_name=customer["name"],
            customer_phone=customer["phone"],
            customer_shipping=copy.deepcopy(customer["shipping"]),
            customer_tax_exempt=customer["tax_exempt"],
            customer_tax_ids=[],
            default_payment_method=default_payment_method,
            default_source=None,
            default_tax_rates=[],
            description=description,
            discounts=[],
            due_date=due_date if collection_method == "send_invoice" else None,
            effective_at=None,
            ending_balance=None,
            footer=footer,
            from_invoice=None,
            hosted_invoice_url=None,
            invoice_pdf=None,
            issuer={"type": "self"},
            last_finalization_error=None,
            latest_revision=None,
            lines={"object": "list", "data": [], "has_more": False, "total_count": 0, "url": f"/v1/invoices/{invoice_id}/lines"},
            livemode=False,
            metadata={k: v for k, v in (metadata or {}).items() if v != ""},
            next_payment_attempt=None,
            number=None,
            on_behalf_of=None,
            parent=_subscription_parent(subscription),
            payment_settings={"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
            period_end=ts,
            period_start=ts,
            post_payment_credit_notes_amount=0,
            pre_payment_credit_notes_amount=0,
            receipt_number=None,
            rendering=None,
            shipping_cost=None,
            shipping_details=None,
            starting_balance=0,
            statement_descriptor=statement_descriptor,
            status="draft",
            status_transitions={"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None},
            subtotal=0,
            subtotal_excluding_tax=0,
            test_clock=None,
            total=0,
            total_discount_amounts=[],
            total_excluding_tax=0,
            total_pretax_credit_amounts=[],
            total_taxes=[],
            webhooks_delivered_at=ts,
        )
        invoice.pop("subscription", None)  # not on invoices since API 2025-03-31: see parent
        self.put(invoice)
        if include_pending:
            for item in self.pending_items(customer["id"], currency):
                self.add_line(invoice, item)
        if emit:
            self.emit("invoice.created", invoice, created=ts)
        return invoice

    def _account_country(self) -> str:
        account = self.store.get("account", self.owner) if self.owner else self.fake.accounts.platform
        return (account or {}).get("country") or "US"

    def add_line(self, invoice: dict, item: dict, *, tax: int = 0) -> dict:
        """Put an invoice item on a draft invoice as a line; ``tax`` (exclusive) on that line."""
        subscription = (item.get("parent") or {}).get("subscription_details", {}).get("subscription")
        line = from_fixture(
            "line_item",
            id=new_id("il"),
            amount=item["amount"],
            currency=item["currency"],
            description=item["description"],
            discount_amounts=[],
            discountable=True,
            discounts=[],
            invoice=invoice["id"],
            livemode=False,
            metadata=dict(item["metadata"]),
            period=dict(item["period"]),
            quantity=1,
            quantity_decimal="1",
            subscription=subscription,
            pretax_credit_amounts=[],
            taxes=[_tax(tax, item["amount"])] if tax else [],
            parent={
                "type": "invoice_item_details",
                "invoice_item_details": {
                    "invoice_item": item["id"],
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription,
                },
                "subscription_item_details": None,
            },
            pricing=copy.deepcopy(item["pricing"]),
            subtotal=item["amount"],
        )
        item["invoice"] = invoice["id"]
        invoice["lines"]["data"].append(line)
        self.retotal(invoice)
        return line

    def retotal(self, invoice: dict) -> None:
        lines = invoice["lines"]["data"]
        subtotal = sum(line["amount"] for line in lines)
        taxes = [t for line in lines for t in line["taxes"]]
        tax = sum(t["amount"] for t in taxes)
        total = subtotal + tax
        invoice["lines"]["total_count"] = len(lines)
        invoice["total_taxes"] = [_tax(tax, sum(t["taxable_amount"] for t in taxes))] if tax else []
        invoice.update(
            subtotal=subtotal,
            subtotal_excluding_tax=subtotal,
            total=total,
            total_excluding_tax=subtotal,
            amount_due=max(total, 0),
            amount_remaining=max(total, 0) - invoice["amount_paid"],
        )

    def next_number(self, customer: dict) -> str:
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        return number

    def file_url(self, invoice_id: str) -> str:
        base = self.fake.url if self.fake._server is not None else "http://127.0.0.1"
        return f"{base}/invoice/{invoice_id}/pdf"

    def finalize(self, invoice: dict, *, auto_advance: bool | None = None, at: int | None = None, number: str | None = None) -> dict:
        if invoice["status"] != "draft":
            raise invalid_request("This invoice is already finalized, you can't re-finalize a non-draft invoice.")
        ts = at if at is not None else now()
        customer = self.get("customer", invoice["customer"])
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        # The customer's balance is applied (Stripe: a credit — negative — lowers the amount due, a
        # debit raises it), and what an invoice with a negative total leaves becomes credit.
        starting = customer["balance"]
        applied = invoice["total"] + starting
        customer_before = json_copy(customer) if customer["balance"] != min(applied, 0) else None
        customer["balance"] = min(applied, 0)
        invoice.update(
            status="open",
            number=number or invoice["number"] or self.next_number(customer),
            effective_at=ts,
            starting_balance=starting,
            ending_balance=min(applied, 0),
            amount_due=max(applied, 0),
            amount_remaining=max(applied, 0) - invoice["amount_paid"],
            automatically_finalizes_at=None,
            customer_email=customer["email"],
            customer_name=customer["name"],
            hosted_invoice_url=f"https://invoice.stripe.com/i/{self.account_id}/test_{secrets.token_urlsafe(48)}?s=ap",
            invoice_pdf=self.file_url(invoice["id"]),
        )
        invoice["status_transitions"]["finalized_at"] = ts
        if customer_before is not None:
            self.emit("customer.updated", customer, customer_before, created=ts)
        if invoice["amount_due"] == 0:  # nothing to collect: Stripe marks it paid at once
            invoice["status"] = "paid"
            invoice["status_transitions"]["paid_at"] = ts
            self.emit("invoice.finalized", invoice, created=ts)
            self.emit("invoice.paid", invoice, created=ts)
            self.emit("invoice.payment_succeeded", invoice, created=ts)
            return invoice
        if invoice["auto_advance"] and invoice["collection_method"] == "charge_automatically":
            invoice["next_payment_attempt"] = ts + FIRST_ATTEMPT_SECONDS
        pi_id = self.new_payment_intent(
            amount=invoice["amount_due"], currency=invoice["currency"], customer=invoice["customer"],
            description="Payment for Invoice", created=ts,
        )["id"]
        self.put(
            from_fixture(
                "invoice_payment",
                id=new_id("inpay"),
                amount_paid=None,
                amount_requested=invoice["amount_due"],
                created=ts,
                currency=invoice["currency"],
                invoice=invoice["id"],
                is_default=True,
                livemode=False,
                payment={"type": "payment_intent", "payment_intent": pi_id},
                status="open",
                status_transitions={"canceled_at": None, "paid_at": None},
            )
        )
        self.emit("invoice.finalized", invoice, created=ts)
        return invoice

    def new_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        description: str | None,
        created: int,
        application_fee_amount: int | None = None,
        transfer_data: dict | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """A payment intent waiting for a payment method (``attempt``/the charge moves it on)."""
        pi_id = new_id("pi")
        return self.put(
            from_fixture(
                "payment_intent",
                id=pi_id,
                amount=amount,
                amount_capturable=0,
                amount_details={"tip": {}},
                amount_received=0,
                application=None,
                application_fee_amount=application_fee_amount,
                automatic_payment_methods=None,
                canceled_at=None,
                cancellation_reason=None,
                capture_method="automatic",
                client_secret=f"{pi_id}_secret_{secrets.token_urlsafe(18)}",
                confirmation_method="automatic",
                created=created,
                currency=currency,
                customer=customer,
                customer_account=None,
                description=description,
                excluded_payment_method_types=None,
                last_payment_error=None,
                latest_charge=None,
                livemode=False,
                managed_payments=None,
                metadata=dict(metadata or {}),
                next_action=None,
                on_behalf_of=None,
                payment_method=None,
                payment_method_configuration_details=None,
                payment_method_options={"card": {"request_three_d_secure": "automatic"}},
                payment_method_types=["card"],
                processing=None,
                receipt_email=None,
                review=None,
                setup_future_usage=None,
                shipping=None,
                source=None,
                statement_descriptor=None,
                statement_descriptor_suffix=None,
                status="requires_payment_method",
                transfer_data=transfer_data,
                transfer_group=f"group_{pi_id}" if transfer_data else None,
            )
        )

    def payments_of(self, invoice: dict) -> list[dict]:
        """The invoice's ``invoice_payment`` objects, newest first."""
        return [p for p in self.store.all("invoice_payment", self.owner) if p["invoice"] == invoice["id"]]

    def _open_payment(self, invoice: dict) -> tuple[dict, dict]:
        payment = self.payments_of(invoice)[0]
        return payment, self.store.get("payment_intent", payment["payment"]["payment_intent"], self.owner)

    def payment_method_for(self, invoice: dict, pm_id: str | None) -> dict:
        """The payment method a pay uses: the one given, else the invoice's default, else the customer's."""
        customer = self.get("customer", invoice["customer"])
        if pm_id is None:
            pm_id = invoice["default_payment_method"] or customer["invoice_settings"]["default_payment_method"]
            if pm_id is None:
                raise invalid_request(
                    "This customer has no attached payment source or default payment method. Please consider adding "
                    "a default payment method. For more information, visit "
                    "https://stripe.com/docs/billing/subscriptions/payment-methods-setting#payment-method-priority."
                )
        pm = self.get("payment_method", pm_id, param="payment_method")
        if pm["customer"] != customer["id"]:
            raise invalid_request(
                f"The PaymentMethod {pm_id} does not belong to the Customer {customer['id']} of this invoice. "
                "Attach it to the customer first.",
                param="payment_method",
            )
        return pm

    def check_payable(self, invoice: dict) -> None:
        if invoice["status"] == "paid":
            raise invalid_request("Invoice is already paid")
        if invoice["status"] == "void":
            raise invalid_request("Voided invoices cannot be paid.")

    def attempt(self, invoice: dict, pm: dict, *, automatic: bool = False, at: int | None = None) -> dict:
        """One payment attempt with ``pm``: a charge, and the invoice paid or still owed.
        Returns the charge; a decline does not raise here (see ``pay``)."""
        ts = at if at is not None else now()
        payment, intent = self._open_payment(invoice)
        if automatic or not invoice["attempted"]:
            invoice["attempt_count"] += 1
        invoice["attempted"] = True
        decline = self.charge_decline(pm, ts)
        charge = self._charge(invoice, intent, pm, decline, ts)
        intent.update(payment_method=pm["id"], latest_charge=charge["id"])
        customer = self.store.get("customer", invoice["customer"], self.owner)
        customer_before = json_copy(customer) if customer else None
        if decline:
            error = card_error(decline, payment_method=pm, charge=charge["id"]).body()["error"]
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.emit("payment_intent.payment_failed", intent, created=ts)
            if invoice["auto_advance"] and invoice["collection_method"] == "charge_automatically":
                invoice["next_payment_attempt"] = ts + SMART_RETRY_SECONDS
            self.emit("invoice.payment_failed", invoice, created=ts)
            if automatic and customer:  # Stripe: an automatic payment failure makes the customer delinquent
                customer["delinquent"] = True
                self.emit_if_changed("customer.updated", customer, customer_before, created=ts)
            return charge
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        self.emit("payment_intent.succeeded", intent, created=ts)
        payment.update(status="paid", amount_paid=invoice["amount_due"])
        payment["status_transitions"]["paid_at"] = ts
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0, next_payment_attempt=None)
        invoice["status_transitions"]["paid_at"] = ts
        self.emit("invoice.paid", invoice, created=ts)
        self.emit("invoice.payment_succeeded", invoice, created=ts)
        if customer:
            customer["delinquent"] = False
            self.emit_if_changed("customer.updated", customer, customer_before, created=ts)
        return charge

    def pay(self, invoice: dict, pm_id: str | None = None) -> dict:
        """``POST /v1/invoices/{id}/pay``: the paid invoice, or a 402 card_error after the attempt."""
        self.check_payable(invoice)
        if invoice["status"] == "draft":
            self.finalize(invoice)
            if invoice["status"] == "paid":
                return invoice
        pm = self.payment_method_for(invoice, pm_id)
        charge = self.attempt(invoice, pm)
        if charge["status"] == "failed":
            _, intent = self._open_payment(invoice)
            raise card_error(
                self.charge_decline(pm, charge["created"]),
                payment_method=pm,
                charge=charge["id"],
                payment_intent=copy.deepcopy(intent),
            )
        return invoice

    def void(self, invoice: dict, *, at: int | None = None) -> dict:
        if invoice["status"] not in ("open", "uncollectible"):
            raise invalid_request(f"You can only void open or uncollectible invoices. This invoice is {invoice['status']}.")
        ts = at if at is not None else now()
        invoice.update(status="void", next_payment_attempt=None, auto_advance=False)
        invoice["status_transitions"]["voided_at"] = ts
        for payment in self.payments_of(invoice):
            if payment["status"] == "open":
                payment["status"] = "canceled"
                payment["status_transitions"]["canceled_at"] = ts
                intent = self.store.get("payment_intent", payment["payment"]["payment_intent"], self.owner)
                intent.update(status="canceled", canceled_at=ts, cancellation_reason="void_invoice")
                self.emit("payment_intent.canceled", intent, created=ts)
        self.emit("invoice.voided", invoice, created=ts)
        return invoice

    def mark_uncollectible(self, invoice: dict, *, at: int | None = None) -> dict:
        if invoice["status"] != "open":
            raise invalid_request(f"You can only mark open invoices as uncollectible. This invoice is {invoice['status']}.")
        ts = at if at is not None else now()
        invoice.update(status="uncollectible", next_payment_attempt=None, auto_advance=False)
        invoice["status_transitions"]["marked_uncollectible_at"] = ts
        self.emit("invoice.marked_uncollectible", invoice, created=ts)
        customer = self.store.get("customer", invoice["customer"], self.owner)
        if customer:
            before = json_copy(customer)
            customer["delinquent"] = False
            self.emit_if_changed("customer.updated", customer, before, created=ts)
        return invoice

    def render_invoice(self, invoice: dict, expand: list[str]) -> dict:
        """An invoice as the API answers it: at most 10 lines inline, ``payments`` when expanded."""
        out = copy.deepcopy(invoice)
        lines = out["lines"]
        if len(lines["data"]) > 10:
            lines["data"], lines["has_more"] = lines["data"][:10], True
        if any(p == "payments" or p.startswith("payments.") for p in expand):
            out["payments"] = {
                "object": "list",
                "data": copy.deepcopy(self.payments_of(invoice)),
                "has_more": False,
                "url": "/v1/invoice_payments",
            }
        expand_paths(out, [p for p in expand if p != "payments"], self.lookup)
        return out

    # -- money -------------------------------------------------------------------------------
    def _charge(self, invoice: dict, intent: dict, pm: dict, decline: cards.Decline | None, ts: int) -> dict:
        """The charge of one invoice payment attempt (and its balance transaction when it succeeds)."""
        return self.new_charge(
            amount=invoice["amount_due"], currency=invoice["currency"], customer=invoice["customer"], intent=intent,
            pm=pm, decline=decline, created=ts, description="Payment for Invoice",
        )

    def new_charge(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        intent: dict,
        pm: dict,
        decline: cards.Decline | None,
        created: int,
        description: str | None,
        metadata: dict | None = None,
        fee: int | None = None,
        fee_details: list[dict] | None = None,
        receipt_kind: str = "invoices",
        emit: bool = True,
    ) -> dict:
        """A card charge for ``intent`` with ``pm``: succeeded (with a balance transaction whose fee
        is Stripe's, or ``fee``/``fee_details`` when given) or failed with ``decline``."""
        ok = decline is None
        ts, card = created, pm["card"]
        charge_id = new_id("ch")
        charge = from_fixture(
            "charge",
            id=charge_id,
            amount=amount,
            amount_captured=amount if ok else 0,
            amount_refunded=0,
            application=None,
            application_fee=None,
            application_fee_amount=None,
            balance_transaction=None,
            billing_details=json_copy(pm["billing_details"]),
            calculated_statement_descriptor="PENGUINMAILS",
            captured=ok,
            created=ts,
            currency=currency,
            customer=customer,
            description=description,
            disputed=False,
            failure_balance_transaction=None,
            failure_code=None if ok else decline.code,
            failure_message=None if ok else decline.message,
            fraud_details={},
            livemode=False,
            metadata=dict(metadata or {}),
            on_behalf_of=None,
            outcome={
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network" if ok else "declined_by_network",
                "reason": None if ok else decline.reason,
                "risk_level": "normal",
                "risk_score": 20,
                "seller_message": "Payment complete." if ok else decline.seller_message,
                "type": "authorized" if ok else decline.outcome_type,
            },
            paid=ok,
            payment_intent=intent["id"],
            payment_method=pm["id"],
            receipt_email=None,
            receipt_number=None,
            receipt_url=f"https://pay.stripe.com/receipts/{receipt_kind}/{secrets.token_urlsafe(48)}?s=ap" if ok else None,
            refunded=False,
            refunds={"object": "list", "data": [], "has_more": False, "total_count": 0, "url": f"/v1/charges/{charge_id}/refunds"},
            review=None,
            shipping=None,
            source=None,
            source_transfer=None,
            statement_descriptor=None,
            statement_descriptor_suffix=None,
            status="succeeded" if ok else "failed",
            transfer=None,
            transfer_data=None,
            transfer_group=intent.get("transfer_group"),
        )
        details = charge["payment_method_details"]["card"]
        details.update(
            amount_authorized=amount if ok else None,
            authorization_code=secrets.choice("0123456789") * 6 if ok else None,
            brand=card["brand"],
            checks=dict(card["checks"]),
            country=card["country"],
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
            fingerprint=card["fingerprint"],
            funding=card["funding"],
            installments=None,
            last4=card["last4"],
            mandate=None,
            network=card["brand"],
            network_transaction_id=secrets.token_hex(8) if ok else None,
            overcapture={"maximum_amount_capturable": amount, "status": "unavailable"},
            regulated_status="unregulated",
            three_d_secure=None,
            wallet=None,
        )
        if ok:
            if fee is None and fee_details is None:
                fee = stripe_fee(amount, currency)
            fee, fee_details = fee_breakdown(fee, fee_details, currency)
            txn = self.new_balance_transaction(
                amount=amount, currency=currency, created=ts, description=description, source=charge_id,
                type="charge", reporting_category="charge", fee_details=fee_details,
            )
            charge["balance_transaction"] = txn["id"]
        self.put(charge)
        if emit:
            self.emit("charge.succeeded" if ok else "charge.failed", charge, created=ts)
        return charge

    def new_balance_transaction(
        self,
        *,
        amount: int,
        currency: str,
        created: int,
        description: str | None,
        source: str,
        type: str,
        reporting_category: str,
        fee_details: list[dict] = (),
        settle_days: int = SETTLEMENT_DAYS,
    ) -> dict:
        """A balance transaction: ``net`` = amount − the fees; pending until ``available_on``."""
        fee = sum(d["amount"] for d in fee_details)
        available_on = created + settle_days * 86400
        return self.put(
            from_fixture(
                "balance_transaction",
                id=new_id("txn"),
                amount=amount,
                available_on=available_on,
                created=created,
                currency=currency,
                description=description,
                exchange_rate=None,
                fee=fee,
                fee_details=[dict(d) for d in fee_details],
                net=amount - fee,
                reporting_category=reporting_category,
                source=source,
                status="available" if available_on <= now() else "pending",
                type=type,
                balance_type="payments",
            )
        )

    def charges_of(self, invoice: dict | None = None) -> list[dict]:
        """Charges, oldest first; of one invoice (through its payment intents) when given."""
        charges = list(reversed(self.store.all("charge", self.owner)))
        if invoice is not None:
            intents = {p["payment"]["payment_intent"] for p in self.payments_of(invoice)}
            charges = [c for c in charges if c["payment_intent"] in intents]
        return sorted(charges, key=lambda c: c["created"])


def _subscription_parent(subscription: str | None) -> dict | None:
    if not subscription:
        return None
    return {"type": "subscription_details", "subscription_details": {"metadata": None, "subscription": subscription}}


def _tax(amount: int, taxable: int) -> dict:
    return {
        "amount": amount,
        "tax_behavior": "exclusive",
        "tax_rate_details": {"tax_rate": "txr_stripefake"},
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }


def card_error(
    decline: cards.Decline,
    *,
    payment_method: dict | None = None,
    charge: str | None = None,
    payment_intent: dict | None = None,
) -> StripeApiError:
    """The 402 ``card_error`` Stripe answers a decline with (the SDK raises ``stripe.CardError``)."""
    body = decline.error()
    extra = {k: v for k, v in body.items() if k not in ("type", "code", "message", "param")}
    if charge is not None:
        extra["charge"] = charge
    if payment_method is not None:
        extra["payment_method"] = copy.deepcopy(payment_method)
    if payment_intent is not None:
        extra["payment_intent"] = payment_intent
    return StripeApiError(402, "card_error", decline.message, code=decline.code, param=decline.param, extra=extra)


# -- request parameters (shared by the customers and invoices handlers) -----------------------------


def billing_for(req) -> Billing:
    """The engine on the request's owner: the platform, or the ``Stripe-Account``."""
    return Billing(req.fake, req.stripe_account)


def expand_of(req) -> list[str]:
    return list(req.params.get("expand") or [])


def param_int(params: dict, name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_request(f"Invalid integer: {value}", param=name) from None


def param_bool(params: dict, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid_request(f"Invalid boolean: {value}", param=name)
    return value == "true"


def not_implemented(params: dict, names, where: str) -> None:
    """A real Stripe parameter this fake does not model: a loud 400, never a silent wrong answer."""
    for name in names:
        if name in params:
            raise invalid_request(
                f"The Stripe fake does not implement `{name}` on {where}: add it under tests/stripe_fake/resources/."
            )


def list_page(items: list[dict], params: dict, url: str, billing: Billing) -> dict:
    """A Stripe list of ``items`` (already filtered and ordered), with ``expand[]=data.…`` applied."""
    page = paginate(items, params, url)
    paths = expand_list_paths(params)
    if paths:
        page["data"] = [billing.expand(o, paths) for o in page["data"]]
    return page


def expand_list_paths(params: dict) -> list[str]:
    paths = []
    for path in params.get("expand") or []:
        if not path.startswith("data."):
            raise invalid_request(f"This property cannot be expanded ({path}). You may want to try expanding 'data.{path}' instead.")
        paths.append(path[len("data.") :])
    return paths
