"""``fake.billing``: test-side helpers that put customers, cards and invoices in any state straight
into the fake's store (no request logged), move invoices as if outside events happened (paid on
the hosted page, Stripe's own retry), and read what the fake holds. Results are deep copies."""

from __future__ import annotations

import copy

from ..objects import now
from . import HELPERS
from .billing import INVOICE_STATUSES, Billing


class BillingHelpers:
    """``fake.billing``: put billing objects straight into the store (no request logged) and read
    them back; every result is a deep copy. All work on the platform account."""

    def __init__(self, fake):
        self.fake = fake

    @property
    def _b(self) -> Billing:
        return Billing(self.fake)

    # -- making objects ----------------------------------------------------------------------
    def add_customer(
        self,
        email: str | None = None,
        name: str | None = None,
        cards: tuple | list = ("4242424242424242",),
        default: int | None = 0,
        metadata: dict | None = None,
    ) -> dict:
        """A customer with one attached card payment method per number, ``created`` increasing
        in the order given (the last one the newest); ``default``: the index of the customer's
        default payment method (None, or no cards: no default). The result has ``payment_methods``: the ids
        in the order given."""
        with self.fake.lock:
            b = self._b
            ts = now()
            if default is not None and cards and not -len(cards) <= default < len(cards):
                raise IndexError(f"default={default}: the customer has {len(cards)} cards")
            customer = b.create_customer(email=email, name=name, metadata=metadata, created=ts, emit=False)
            made = [
                b.new_card(number, exp_month=12, exp_year=2030, created=ts - (len(cards) - 1 - i), customer=customer["id"])
                for i, number in enumerate(cards)
            ]
            ids = [pm["id"] for pm in made]
            if default is not None and ids:  # no cards: no default
                customer["invoice_settings"]["default_payment_method"] = ids[default]
            b.emit("customer.created", customer, created=ts)
            for pm in made:
                b.emit("payment_method.attached", pm, created=ts)
            return {**copy.deepcopy(customer), "payment_methods": ids}

    def add_card(
        self,
        customer_id: str,
        number: str,
        *,
        exp_month: int = 12,
        exp_year: int = 2030,
        make_default: bool = False,
        created: int | None = None,
    ) -> dict:
        """A card payment method attached to the customer (as if attached earlier: no attach check)."""
        with self.fake.lock:
            b = self._b
            customer = b.get("customer", customer_id)
            pm = b.new_card(number, exp_month=exp_month, exp_year=exp_year, created=created, customer=customer_id)
            b.emit("payment_method.attached", pm)
            if make_default:
                before = copy.deepcopy(customer)
                customer["invoice_settings"]["default_payment_method"] = pm["id"]
                b.emit("customer.updated", customer, before)
            return copy.deepcopy(pm)

    def add_invoice(
        self,
        customer_id: str,
        amount_due: int,
        *,
        currency: str = "usd",
        status: str = "open",
        tax: int = 0,
        lines: list | None = None,
        created: int | None = None,
        attempt_count: int = 0,
        number: str | None = None,
        subscription: str | None = None,
        collection_method: str = "charge_automatically",
        auto_advance: bool = False,
        description: str | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """An invoice in ``status`` (draft/open/paid/void/uncollectible), dated ``created``.

        ``lines``: amounts or ``{"amount", "description"}`` dicts summing to ``amount_due - tax``
        (default: one line of that). Non-draft invoices are finalized (number from the customer's
        sequence unless given, payment intent, invoice_payment). ``paid``: paid by a succeeded
        charge on the customer's default card (or, if it has none or it would decline, on a new
        unattached Visa, as on the hosted page), ``attempt_count`` at least 1. Every transition is dated ``created``."""
        if status not in INVOICE_STATUSES:
            raise ValueError(f"status must be one of {INVOICE_STATUSES}, not {status!r}")
        if tax < 0 or amount_due - tax < 0:
            raise ValueError("tax must be between 0 and amount_due")
        specs = [{"amount": amount_due - tax, "description": description or "PenguinMails subscription"}]
        if lines is not None:
            specs = [ln if isinstance(ln, dict) else {"amount": ln} for ln in lines]
            if sum(int(s["amount"]) for s in specs) != amount_due - tax:
                raise ValueError(f"lines sum to {sum(int(s['amount']) for s in specs)}, not amount_due - tax = {amount_due - tax}")
        with self.fake.lock:
            b = self._b
            customer = b.get("customer", customer_id)
            ts = created if created is not None else now()
            payer = self._paying_card(b, customer, ts) if status == "paid" and amount_due else None
            invoice = b.create_invoice(
                customer,
                currency=currency,
                subscription=subscription,
                collection_method=collection_method,
                auto_advance=auto_advance,
                description=description,
                metadata=metadata,
                created=ts,
            )
            remaining_tax = tax
            for i, spec in enumerate(specs):
                amount = int(spec["amount"])
                is_last = i == len(specs) - 1
                share = remaining_tax if is_last else (tax * amount // (amount_due - tax) if amount_due - tax else 0)
                remaining_tax -= share
                item = b.create_item(
                    customer,
                    amount=amount,
                    currency=currency,
                    description=spec.get("description", f"Line {i + 1}"),
                    subscription=subscription,
                    created=ts,
                )
                b.add_line(invoice, item, tax=share)
            if status != "draft":
                b.finalize(invoice, at=ts, number=number)
            elif number is not None:
                invoice["number"] = number
            if status == "paid" and invoice["status"] != "paid":
                b.attempt(invoice, payer, at=ts)
            elif status == "void":
                b.void(invoice, at=ts)
            elif status == "uncollectible":
                b.mark_uncollectible(invoice, at=ts)
            if attempt_count:
                invoice["attempt_count"] = max(attempt_count, invoice["attempt_count"])
                invoice["attempted"] = True
            return self._invoice_copy(b, invoice)

    def _paying_card(self, b: Billing, customer: dict, ts: int) -> dict:
        """The customer's default card if it would succeed, else a new one (typed in on the hosted page)."""
        pm_id = customer["invoice_settings"]["default_payment_method"]
        if pm_id and not b.charge_decline(b.get("payment_method", pm_id), ts):
            return b.get("payment_method", pm_id)
        return b.new_card("4242424242424242", exp_month=12, exp_year=2030, created=ts)

    # -- moving invoices ---------------------------------------------------------------------
    def pay_elsewhere(self, invoice_id: str) -> dict:
        """As if the customer paid on the hosted invoice page with a new card: a succeeded
        charge, the invoice paid (a draft is finalized first)."""
        with self.fake.lock:
            b = self._b
            invoice = b.get("invoice", invoice_id)
            b.check_payable(invoice)
            if invoice["status"] == "draft":
                b.finalize(invoice)
            if invoice["status"] != "paid":
                b.attempt(invoice, b.new_card("4242424242424242", exp_month=12, exp_year=2030))
            return self._invoice_copy(b, invoice)

    def automatic_attempt(self, invoice_id: str, payment_method: str | None = None) -> dict:
        """One of Stripe's own (automatic) retries: charges the given or default payment method
        and always raises ``attempt_count``. Returns the charge (succeeded or failed)."""
        with self.fake.lock:
            b = self._b
            invoice = b.get("invoice", invoice_id)
            b.check_payable(invoice)
            if invoice["status"] == "draft":
                raise ValueError("Stripe does not retry a draft invoice")
            pm = b.payment_method_for(invoice, payment_method)
            return copy.deepcopy(b.attempt(invoice, pm, automatic=True))

    def void(self, invoice_id: str) -> dict:
        with self.fake.lock:
            b = self._b
            return self._invoice_copy(b, b.void(b.get("invoice", invoice_id)))

    def mark_uncollectible(self, invoice_id: str) -> dict:
        with self.fake.lock:
            b = self._b
            return self._invoice_copy(b, b.mark_uncollectible(b.get("invoice", invoice_id)))

    # -- reading -----------------------------------------------------------------------------
    def _invoice_copy(self, b: Billing, invoice: dict) -> dict:
        out = copy.deepcopy(invoice)
        out["payments"] = {"object": "list", "data": copy.deepcopy(b.payments_of(invoice)), "has_more": False, "url": "/v1/invoice_payments"}
        return out

    def invoice(self, invoice_id: str) -> dict:
        """The stored invoice (all lines) with its ``payments`` list."""
        with self.fake.lock:
            b = self._b
            return self._invoice_copy(b, b.get("invoice", invoice_id))

    def invoices(self, customer_id: str | None = None) -> list[dict]:
        """Invoices, newest first (by created), of one customer when given."""
        with self.fake.lock:
            b = self._b
            found = [i for i in b.store.all("invoice") if customer_id in (None, i["customer"])]
            return [self._invoice_copy(b, i) for i in b.newest_first(found)]

    def customer(self, customer_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._b.get("customer", customer_id))

    def payment_method(self, pm_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._b.get("payment_method", pm_id))

    def payment_methods(self, customer_id: str) -> list[dict]:
        """The customer's payment methods, newest first (as Stripe lists them)."""
        with self.fake.lock:
            return copy.deepcopy(self._b.payment_methods_of(customer_id))

    def charges(self, invoice_id: str | None = None) -> list[dict]:
        """Charges made (succeeded and failed), oldest first; of one invoice when given."""
        with self.fake.lock:
            b = self._b
            return copy.deepcopy(b.charges_of(b.get("invoice", invoice_id) if invoice_id else None))

    def payment_intent(self, pi_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._b.get("payment_intent", pi_id))

    def balance_transaction(self, txn_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._b.get("balance_transaction", txn_id))


HELPERS["billing"] = BillingHelpers
