"""``fake.subscriptions``: test-side helpers for prices and subscriptions on the platform account.
They put objects straight into the fake's store (no request logged) and return deep copies.

    fake.subscriptions.add_price(unit_amount, *, interval="month", currency="usd", nickname=None,
                                 product=None, product_name=None, interval_count=1,
                                 lookup_key=None, created=None) -> dict
        A recurring price (``interval=None``: one-time) of ``product`` (an id), or of a new
        product named ``product_name`` (default: the nickname, else "PenguinMails").
    fake.subscriptions.add(customer_id, price_id=None, *, unit_amount=None, interval="month",
                           quantity=1, current_period_start=None, status="active",
                           currency="usd", default_payment_method=None, metadata=None) -> dict
        A subscription with one item: ``price_id``, or a new product and price of ``unit_amount``
        per ``interval``. Its period starts at ``current_period_start`` (default now; also the
        billing cycle anchor, ``created`` and ``start_date``) and ends one interval later (see
        ``subscriptions.advance``). No invoice is made for the current period: it is as if it had
        been paid. The result's items carry ``current_period_start``/``current_period_end``.
    fake.subscriptions.renew(subscription_id) -> dict
        The next period begins (as Stripe's clock would make it): the renewal invoice — the
        pending items (prorations) and each item's new period — finalized and charged to the
        default payment method; on a decline it stays open and the subscription goes past_due.
    Readers: ``get(id)``, ``all(customer_id=None)`` (newest first, canceled ones too),
    ``price(id)``, ``prices()``, ``product(id)``, ``pending_items(customer_id)`` (invoice items
    on no invoice yet, oldest first: e.g. the prorations ``create_prorations`` left).
"""

from __future__ import annotations

import copy

from . import HELPERS
from .subscriptions import Subscriptions


class SubscriptionHelpers:
    """``fake.subscriptions``: see the module's docstring for the API."""

    def __init__(self, fake):
        self.fake = fake

    @property
    def _s(self) -> Subscriptions:
        return Subscriptions(self.fake)

    def add_price(
        self,
        unit_amount: int,
        *,
        interval: str | None = "month",
        currency: str = "usd",
        nickname: str | None = None,
        product: str | None = None,
        product_name: str | None = None,
        interval_count: int = 1,
        lookup_key: str | None = None,
        created: int | None = None,
    ) -> dict:
        with self.fake.lock:
            s = self._s
            if product is None:
                product = s.new_product(product_name or nickname or "PenguinMails", created=created)["id"]
            else:
                s.get("product", product)
            price = s.new_price(unit_amount, currency=currency.lower(), product=product, interval=interval,
                                interval_count=interval_count, nickname=nickname, lookup_key=lookup_key, created=created)
            return copy.deepcopy(price)

    def add(
        self,
        customer_id: str,
        price_id: str | None = None,
        *,
        unit_amount: int | None = None,
        interval: str = "month",
        quantity: int = 1,
        current_period_start: int | None = None,
        status: str = "active",
        currency: str = "usd",
        default_payment_method: str | None = None,
        metadata: dict | None = None,
    ) -> dict:
        if (price_id is None) == (unit_amount is None):
            raise ValueError("give either price_id or unit_amount")
        with self.fake.lock:
            s = self._s
            customer = s.get("customer", customer_id)
            if price_id is None:
                product = s.new_product("PenguinMails", created=current_period_start)
                price = s.new_price(unit_amount, currency=currency.lower(), product=product["id"], interval=interval,
                                    created=current_period_start)
            else:
                price = s.get("price", price_id)
            if price["recurring"] is None:
                raise ValueError(f"price {price['id']} is one-time: a subscription needs a recurring price")
            if default_payment_method is not None:
                s.require_attached(customer, default_payment_method, param="default_payment_method")
            sub = s.new_subscription(customer, [(price, quantity)], current_period_start=current_period_start,
                                     status=status, default_payment_method=default_payment_method, metadata=metadata)
            if customer["currency"] is None:
                customer["currency"] = sub["currency"]
            return copy.deepcopy(sub)

    def renew(self, subscription_id: str) -> dict:
        with self.fake.lock:
            s = self._s
            invoice = s.renew(s.get("subscription", subscription_id))
            return copy.deepcopy(invoice)

    # -- reading -----------------------------------------------------------------------------
    def get(self, subscription_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._s.get("subscription", subscription_id))

    def all(self, customer_id: str | None = None) -> list[dict]:
        with self.fake.lock:
            return copy.deepcopy([s for s in self.fake.store.newest_first("subscription")
                                  if customer_id in (None, s["customer"])])

    def price(self, price_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._s.get("price", price_id))

    def prices(self) -> list[dict]:
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.newest_first("price"))

    def product(self, product_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._s.get("product", product_id))

    def pending_items(self, customer_id: str) -> list[dict]:
        with self.fake.lock:
            items = [i for i in reversed(self.fake.store.all("invoiceitem")) if i["customer"] == customer_id and i["invoice"] is None]
            return copy.deepcopy(sorted(items, key=lambda i: i["date"]))


HELPERS["subscriptions"] = SubscriptionHelpers
