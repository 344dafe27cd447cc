"""Products, prices, subscriptions and prorations: ``/v1/products`` and ``/v1/prices`` (create,
retrieve, list), ``/v1/subscriptions`` (retrieve, list, update with prorations),
``POST /v1/invoices/create_preview``; ``Subscriptions`` is the engine the handlers and
``fake.subscriptions`` (``subscriptions_helpers.py``) share.

Stripe behaviour kept (API 2026-10-28):

- The billing period lives on the items (``items.data[].current_period_start/end``, API
  2025-03-31+); a subscription has none. New subscriptions are in ``billing_mode`` flexible (the
  default since 2025-09-30). Periods follow the billing cycle anchor: monthly on the anchor's
  day of the month (the month's last day when it has fewer), yearly on its date.
- A price change (or quantity change) of an item mid-period prorates per second of the period:
  the credit for unused time of the old price and the charge for the remaining time of the new
  one, each ``round(unit_amount × quantity × (period_end − proration_date) ÷ (period_end −
  period_start))``, rounded half up (away from zero for the credit). ``proration_date`` defaults
  to now and must lie in the current period.
- ``proration_behavior``: ``create_prorations`` (default) leaves the two as pending invoice items
  (``proration`` true) for the next invoice; ``always_invoice`` invoices them at once and charges
  the default payment method (the subscription's, else the customer's); ``none`` changes the
  price only. A change of billing interval (monthly → yearly) resets the billing cycle at the
  proration date and invoices the new period at once, as Stripe does.
- ``payment_behavior``: ``allow_incomplete`` (the default) and ``default_incomplete`` keep the
  change when the immediate payment fails (the invoice stays open, the subscription goes
  past_due); ``error_if_incomplete`` refuses the change with the card's 402.
- ``POST /v1/invoices/create_preview`` answers an invoice that is not stored (its id starts with
  ``upcoming_in``): the next invoice of the subscription with the changes in
  ``subscription_details`` — pending items, the proration lines
  (``parent.subscription_item_details.proration`` true) and the next period at the new price; with
  ``always_invoice`` (or an interval change) the invoice the change would make at once. The
  removed ``GET /v1/invoices/upcoming`` answers 404.
"""

from __future__ import annotations

import calendar
import secrets
import time

from ..errors import StripeApiError, invalid_request, missing_param
from ..objects import from_fixture, json_copy, new_id, now
from ..server import FakeRequest
from . import ROUTES
from .billing import (
    ZERO_DECIMAL,
    Billing,
    card_error,
    expand_list_paths,
    expand_of,
    not_implemented,
    param_bool,
    param_int,
)

INTERVALS = ("day", "week", "month", "year")
PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
SUBSCRIPTION_STATUSES = ("active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired", "trialing", "paused")
SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def prorate(amount: int, start: int, end: int, at: int) -> int:
    """``amount`` × (end − at) ÷ (end − start), rounded half up (per second of the period)."""
    if end <= start:
        return 0
    quotient, remainder = divmod(amount * (end - at), end - start)
    return quotient + (1 if 2 * remainder >= end - start else 0)


def advance(boundary: int, interval: str, count: int, anchor: int) -> int:
    """The period boundary after ``boundary``: days and weeks add up; months and years land on
    the anchor's day of the month (clamped to the month's last day) at the anchor's time."""
    if interval == "day":
        return boundary + 86400 * count
    if interval == "week":
        return boundary + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    at = time.gmtime(boundary)
    index = at.tm_mon - 1 + months
    year, month = at.tm_year + index // 12, index % 12 + 1
    a = time.gmtime(anchor)
    day = min(a.tm_mday, calendar.monthrange(year, month)[1])
    return calendar.timegm((year, month, day, a.tm_hour, a.tm_min, a.tm_sec, 0, 0, 0))


def money(amount: int, currency: str) -> str:
    """``4900, 'usd'`` → ``$49.00`` (as Stripe writes amounts in line descriptions)."""
    symbol = SYMBOLS.get(currency, currency.upper() + " ")
    if currency in ZERO_DECIMAL:
        return f"{symbol}{amount:,}"
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 100)
    return f"{sign}{symbol}{major:,}.{minor:02d}"


def day(ts: int) -> str:
    return time.strftime("%d %b %Y", time.gmtime(ts))


class Change:
    """One item of an update or a preview: what it was (``old``), what it becomes (``new``)."""

    def __init__(self, item: dict | None, price: dict | None, quantity: int, deleted: bool = False):
        self.item = item  # the subscription item (None: a new one)
        self.price = price  # the new price (None: deleted)
        self.quantity = quantity
        self.deleted = deleted


class Subscriptions(Billing):
    """Catalog and subscription operations on one owner's objects (None: the platform)."""

    # -- catalog -----------------------------------------------------------------------------
    def new_product(self, name: str, *, created: int | None = None, metadata: dict | None = None,
                    description: str | None = None) -> dict:
        ts = created if created is not None else now()
        product = self.put(from_fixture(
            "product", id=new_id("prod", 14), active=True, created=ts, default_price=None, description=description,
            images=[], livemode=False, marketing_features=[], metadata=dict(metadata or {}), name=name,
            package_dimensions=None, shippable=None, statement_descriptor=None, tax_code=None, type="service",
            unit_label=None, updated=ts, url=None,
        ))
        self.emit("product.created", product, created=ts)
        return product

    def new_price(
        self,
        unit_amount: int,
        *,
        currency: str,
        product: str,
        interval: str | None = "month",
        interval_count: int = 1,
        nickname: str | None = None,
        lookup_key: str | None = None,
        metadata: dict | None = None,
        active: bool = True,
        created: int | None = None,
    ) -> dict:
        if interval is not None and interval not in INTERVALS:
            raise invalid_request("Invalid recurring[interval]: must be one of day, month, week, or year",
                                  param="recurring[interval]")
        recurring = None if interval is None else {
            "interval": interval, "interval_count": interval_count, "meter": None, "trial_period_days": None,
            "usage_type": "licensed",
        }
        price = from_fixture(
            "price", id=new_id("price"), active=active, billing_scheme="per_unit",
            created=created if created is not None else now(), currency=currency, custom_unit_amount=None,
            livemode=False, lookup_key=lookup_key, metadata=dict(metadata or {}), nickname=nickname, product=product,
            recurring=recurring, tax_behavior="unspecified", tiers_mode=None, transform_quantity=None,
            type="recurring" if recurring else "one_time", unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
        )
        self.put(price)
        self.emit("price.created", price, created=price["created"])
        return price

    def product_name(self, price: dict) -> str:
        product = self.store.get("product", price["product"], self.owner)
        return (product or {}).get("name") or price["nickname"] or price["id"]

    @staticmethod
    def plan_of(price: dict) -> dict:
        """The legacy ``plan`` an item still carries, made from its price."""
        recurring = price["recurring"] or {}
        return {
            "active": price["active"], "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
            "billing_scheme": "per_unit", "created": price["created"], "currency": price["currency"], "id": price["id"],
            "interval": recurring.get("interval"), "interval_count": recurring.get("interval_count"), "livemode": False,
            "metadata": dict(price["metadata"]), "meter": None, "nickname": price["nickname"], "object": "plan",
            "product": price["product"], "tiers_mode": None, "transform_usage": None, "trial_period_days": None,
            "usage_type": "licensed",
        }

    # -- subscriptions -----------------------------------------------------------------------
    def new_item(self, sub_id: str, price: dict, quantity: int, start: int, end: int, *, created: int) -> dict:
        item = from_fixture(
            "subscription_item", id=new_id("si", 14), billing_thresholds=None, created=created, discounts=[],
            metadata={}, plan=self.plan_of(price), price=json_copy(price), quantity=quantity, subscription=sub_id,
            tax_rates=[], current_period_start=start, current_period_end=end,
        )
        item.pop("billed_until", None)
        return item

    def new_subscription(
        self,
        customer: dict,
        items: list[tuple[dict, int]],
        *,
        current_period_start: int | None = None,
        status: str = "active",
        default_payment_method: str | None = None,
        metadata: dict | None = None,
        created: int | None = None,
    ) -> dict:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"status must be one of {SUBSCRIPTION_STATUSES}, not {status!r}")
        start = current_period_start if current_period_start is not None else now()
        ts = created if created is not None else start
        currencies = {price["currency"] for price, _ in items}
        if len(currencies) != 1:
            raise invalid_request("All prices on a subscription must have the same currency.", param="items")
        sub_id = new_id("sub")
        sub = from_fixture(
            "subscription",
            id=sub_id,
            application=None,
            application_fee_percent=None,
            automatic_tax={"disabled_reason": None, "enabled": False, "liability": None},
            billing_cycle_anchor=start,
            billing_cycle_anchor_config=None,
            billing_mode={"flexible": {"proration_discounts": "included"}, "type": "flexible", "updated_at": ts},
            billing_schedules=[],
            billing_thresholds=None,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            cancellation_details={"comment": None, "feedback": None, "reason": None},
            collection_method="charge_automatically",
            created=ts,
            currency=currencies.pop(),
            customer=customer["id"],
            customer_account=None,
            days_until_due=None,
            default_payment_method=default_payment_method,
            default_source=None,
            default_tax_rates=[],
            description=None,
            discounts=[],
            ended_at=None,
            invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
            latest_invoice=None,
            livemode=False,
            managed_payments=None,
            metadata=dict(metadata or {}),
            next_pending_invoice_item_invoice=None,
            on_behalf_of=None,
            pause_collection=None,
            payment_settings={"payment_method_options": None, "payment_method_types": None,
                              "save_default_payment_method": "off"},
            pending_invoice_item_interval=None,
            pending_setup_intent=None,
            pending_update=None,
            presentment_details=None,
            schedule=None,
            start_date=ts,
            status=status,
            status_details=None,
            test_clock=None,
            transfer_data=None,
            trial_end=None,
            trial_settings={"end_behavior": {"missing_payment_method": "create_invoice"}},
            trial_start=None,
        )
        for gone in ("current_period_start", "current_period_end", "plan", "quantity"):  # not since 2025-03-31
            sub.pop(gone, None)
        sub["items"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                        "url": f"/v1/subscription_items?subscription={sub_id}"}
        for price, quantity in items:
            recurring = price["recurring"]
            end = advance(start, recurring["interval"], recurring["interval_count"], start)
            sub["items"]["data"].append(self.new_item(sub_id, price, quantity, start, end, created=ts))
        sub["items"]["total_count"] = len(sub["items"]["data"])
        if status == "canceled":
            sub.update(canceled_at=ts, ended_at=ts)
        self.put(sub)
        self.emit("customer.subscription.created", sub, created=ts)
        return sub

    def changes(self, sub: dict, items, *, where: str) -> list[Change]:
        """``items[n][id|price|quantity|deleted]`` of an update or a preview → changes."""
        if items is None:
            return []
        if not isinstance(items, list):
            raise invalid_request("Invalid array", param=where)
        by_id = {item["id"]: item for item in sub["items"]["data"]}
        out: list[Change] = []
        for n, spec in enumerate(items):
            param = f"{where}[{n}]"
            if not isinstance(spec, dict):
                raise invalid_request("Invalid hash", param=param)
            not_implemented(spec, ("price_data", "plan", "discounts", "tax_rates", "billing_thresholds", "clear_usage",
                                   "metadata"), f"{param}")
            item = None
            if spec.get("id"):
                item = by_id.get(spec["id"])
                if item is None:
                    raise invalid_request(f"No such subscription item: '{spec['id']}'", param=f"{param}[id]",
                                          code="resource_missing")
            if param_bool(spec, "deleted"):
                if item is None:
                    raise missing_param(f"{param}[id]")
                out.append(Change(item, None, 0, deleted=True))
                continue
            price = item["price"] if item is not None else None
            if spec.get("price"):
                price = self.get("price", spec["price"], param=f"{param}[price]")
                if not price["active"]:
                    raise invalid_request("The price specified is inactive. This field only accepts active prices.",
                                          param=f"{param}[price]")
                if price["recurring"] is None:
                    raise invalid_request(
                        "The price specified is set to `type=one_time` but this field only accepts prices with "
                        "`type=recurring`.", param=f"{param}[price]")
                if price["currency"] != sub["currency"]:
                    raise invalid_request(
                        f"The price specified has currency {price['currency']}, but this subscription is in "
                        f"{sub['currency']}.", param=f"{param}[price]")
            if price is None:
                raise missing_param(f"{param}[price]")
            quantity = param_int(spec, "quantity") if "quantity" in spec else (item["quantity"] if item else 1)
            if quantity is None or quantity < 0:
                raise invalid_request("Invalid quantity: must be a non-negative integer", param=f"{param}[quantity]")
            out.append(Change(item, price, quantity))
        return out

    def _proration_lines(self, sub: dict, changes: list[Change], at: int, *, prorate_credit: bool, prorate_debit: bool):
        """[(amount, description, price, quantity, item_or_None, period)] for each proration."""
        lines = []
        for ch in changes:
            item = ch.item
            if item is not None:
                start, end = item["current_period_start"], item["current_period_end"]
            else:  # a new item joins the subscription's current period
                first = sub["items"]["data"][0]
                start, end = first["current_period_start"], first["current_period_end"]
            if not start <= at <= end:
                raise invalid_request(
                    "proration_date must be within the subscription's current billing period "
                    f"({start}–{end}).", param="proration_date")
            unchanged = item is not None and not ch.deleted and ch.price["id"] == item["price"]["id"] and ch.quantity == item["quantity"]
            if unchanged:
                continue
            if item is not None and prorate_credit:
                old = item["price"]
                amount = prorate(old["unit_amount"] * item["quantity"], start, end, at)
                what = self._what(old, item["quantity"])
                lines.append((-amount, f"Unused time on {what} after {day(at)}", old, item["quantity"], item, (at, end)))
            if not ch.deleted and prorate_debit and ch.quantity:
                amount = prorate(ch.price["unit_amount"] * ch.quantity, start, end, at)
                what = self._what(ch.price, ch.quantity)
                lines.append((amount, f"Remaining time on {what} after {day(at)}", ch.price, ch.quantity, item, (at, end)))
        return lines

    def _what(self, price: dict, quantity: int) -> str:
        name = self.product_name(price)
        return name if quantity == 1 else f"{quantity} × {name}"

    @staticmethod
    def _interval(price: dict) -> tuple[str, int]:
        return price["recurring"]["interval"], price["recurring"]["interval_count"]

    def _interval_changes(self, changes: list[Change]) -> bool:
        return any(ch.item is not None and not ch.deleted and self._interval(ch.price) != self._interval(ch.item["price"])
                   for ch in changes)

    def period_line_text(self, price: dict, quantity: int) -> str:
        interval, count = self._interval(price)
        every = interval if count == 1 else f"every {count} {interval}s"
        return f"{quantity} × {self.product_name(price)} (at {money(price['unit_amount'], price['currency'])} / {every})"

    def line(self, invoice_id: str, sub: dict, *, amount: int, description: str, price: dict, quantity: int,
             item_id: str | None, period: tuple[int, int], proration: bool, invoice_item: str | None = None,
             preview: bool = False) -> dict:
        """An invoice line made by a subscription item (a period, or a proration)."""
        return from_fixture(
            "line_item",
            id=new_id("il_tmp" if preview else "il"),
            amount=amount,
            currency=sub["currency"],
            description=description,
            discount_amounts=[],
            discountable=not proration,
            discounts=[],
            invoice=None if preview else invoice_id,
            livemode=False,
            metadata={},
            period={"end": period[1], "start": period[0]},
            quantity=quantity,
            quantity_decimal=str(quantity),
            subscription=sub["id"],
            pretax_credit_amounts=[],
            taxes=[],
            parent={
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": invoice_item,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item_id,
                },
                "type": "subscription_item_details",
            },
            pricing={"price_details": {"price": price["id"], "product": price["product"]}, "type": "price_details",
                     "unit_amount_decimal": str(price["unit_amount"])},
            subtotal=amount,
        )

    def item_line(self, invoice_id: str, sub: dict, ii: dict, *, preview: bool = False) -> dict:
        """The line a pending invoice item makes on the subscription's invoice: a proration item is
        a subscription item's line, any other item an invoice item's."""
        details = ii["parent"]["subscription_details"]
        price_id = (ii["pricing"].get("price_details") or {}).get("price")
        price = self.store.get("price", price_id, self.owner) if price_id else None
        if price is not None:
            return self.line(invoice_id, sub, amount=ii["amount"], description=ii["description"], price=price,
                             quantity=ii["quantity"], item_id=details.get("subscription_item"),
                             period=(ii["period"]["start"], ii["period"]["end"]), proration=ii["proration"],
                             invoice_item=ii["id"], preview=preview)
        return from_fixture(
            "line_item", id=new_id("il_tmp" if preview else "il"), amount=ii["amount"], currency=ii["currency"],
            description=ii["description"], discount_amounts=[], discountable=True, discounts=[],
            invoice=None if preview else invoice_id, livemode=False, metadata=dict(ii["metadata"]),
            period=dict(ii["period"]), quantity=1, quantity_decimal="1", subscription=sub["id"], pretax_credit_amounts=[],
            taxes=[], subtotal=ii["amount"], pricing=json_copy(ii["pricing"]),
            parent={"invoice_item_details": {"invoice_item": ii["id"], "proration": ii["proration"],
                                             "proration_details": {"credited_items": None}, "subscription": sub["id"]},
                    "subscription_item_details": None, "type": "invoice_item_details"},
        )

    def proration_item(self, sub: dict, customer: dict, amount: int, description: str, price: dict, quantity: int,
                       item_id: str | None, period: tuple[int, int], at: int) -> dict:
        """A pending invoice item for one proration (Stripe's ``proration`` true)."""
        ii = self.create_item(customer, amount=amount, currency=sub["currency"], description=description,
                              period={"start": period[0], "end": period[1]}, subscription=sub["id"], created=at)
        ii.update(proration=True, quantity=quantity, quantity_decimal=str(quantity), discountable=False)
        ii["parent"]["subscription_details"]["subscription_item"] = item_id
        ii["pricing"] = {"price_details": {"price": price["id"], "product": price["product"]}, "type": "price_details",
                         "unit_amount_decimal": str(price["unit_amount"])}
        return ii

    def pending_for(self, sub: dict) -> list[dict]:
        """The subscription's pending invoice items (on no invoice yet), oldest first."""
        return [i for i in self.pending_items(sub["customer"], sub["currency"])
                if ((i.get("parent") or {}).get("subscription_details") or {}).get("subscription") == sub["id"]]

    def _apply(self, sub: dict, changes: list[Change], at: int, *, reset_cycle: bool) -> list[tuple[dict, int, dict, tuple[int, int]]]:
        """Apply item changes; returns the new periods to invoice at once [(price, qty, item, period)]."""
        data = sub["items"]["data"]
        fresh = []
        for ch in changes:
            if ch.deleted:
                data.remove(ch.item)
                continue
            if ch.item is None:
                first = data[0]
                item = self.new_item(sub["id"], ch.price, ch.quantity, first["current_period_start"],
                                     first["current_period_end"], created=at)
                data.append(item)
                continue
            item = ch.item
            interval_changed = self._interval(ch.price) != self._interval(item["price"])
            item.update(price=json_copy(ch.price), plan=self.plan_of(ch.price), quantity=ch.quantity)
            if reset_cycle and interval_changed:
                interval, count = self._interval(ch.price)
                end = advance(at, interval, count, at)
                item.update(current_period_start=at, current_period_end=end)
                fresh.append((ch.price, ch.quantity, item, (at, end)))
        if reset_cycle and fresh:
            sub["billing_cycle_anchor"] = at
        sub["items"]["total_count"] = len(data)
        return fresh

    def update(self, sub: dict, params: dict) -> dict:
        """``POST /v1/subscriptions/{id}``."""
        p = params
        not_implemented(
            p,
            ("add_invoice_items", "application_fee_percent", "automatic_tax", "billing_cycle_anchor", "billing_schedules",
             "billing_thresholds", "cancel_at", "cancellation_details", "collection_method", "days_until_due",
             "default_source", "default_tax_rates", "discounts", "invoice_settings", "on_behalf_of", "pause_collection",
             "payment_settings", "pending_invoice_item_interval", "transfer_data", "trial_end", "trial_from_plan",
             "trial_settings"),
            "POST /v1/subscriptions/{subscription}",
        )
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise invalid_request("A canceled subscription can only update its cancellation_details and metadata.")
        behavior = p.get("proration_behavior", "create_prorations")
        if behavior not in PRORATION_BEHAVIORS:
            raise invalid_request("Invalid proration_behavior: must be one of always_invoice, create_prorations, or none",
                                  param="proration_behavior")
        payment_behavior = p.get("payment_behavior", "allow_incomplete")
        if payment_behavior not in PAYMENT_BEHAVIORS:
            raise invalid_request("Invalid payment_behavior: must be one of allow_incomplete, default_incomplete, "
                                  "error_if_incomplete, or pending_if_incomplete", param="payment_behavior")
        if payment_behavior == "pending_if_incomplete":
            raise invalid_request("The Stripe fake does not implement `payment_behavior=pending_if_incomplete`.",
                                  param="payment_behavior")
        at = param_int(p, "proration_date")
        at = now() if at is None else at
        customer = self.get("customer", sub["customer"])
        if p.get("default_payment_method"):
            self.require_attached(customer, p["default_payment_method"], param="default_payment_method")
        param_bool(p, "off_session")
        changes = self.changes(sub, p.get("items"), where="items")
        interval_changed = self._interval_changes(changes)
        prorations = self._proration_lines(
            sub, changes, at, prorate_credit=behavior != "none", prorate_debit=behavior != "none" and not interval_changed,
        ) if changes else []
        invoice_now = interval_changed or (behavior == "always_invoice" and prorations)
        if invoice_now and payment_behavior == "error_if_incomplete":
            pm = self._payer(sub, customer)
            decline = self.charge_decline(pm, at) if pm else None
            if pm is not None and decline is not None:  # the change is refused, nothing is kept
                raise card_error(decline, payment_method=pm)
        before = json_copy(sub)
        made = [self.proration_item(sub, customer, amount, text, price, qty, item["id"] if item else None, period, at)
                for amount, text, price, qty, item, period in prorations]
        fresh = self._apply(sub, changes, at, reset_cycle=True)
        # a new item's proration names the item it made
        for ii, (_, _, _, _, item, _) in zip(made, prorations):
            if item is None:
                ii["parent"]["subscription_details"]["subscription_item"] = sub["items"]["data"][-1]["id"]
        if "default_payment_method" in p:
            sub["default_payment_method"] = p["default_payment_method"] or None
        if "metadata" in p:
            metadata = p["metadata"]
            if metadata == "":
                sub["metadata"] = {}
            elif isinstance(metadata, dict):
                for key, value in metadata.items():
                    if value == "":
                        sub["metadata"].pop(key, None)
                    else:
                        sub["metadata"][key] = value
        if "description" in p:
            sub["description"] = p["description"] or None
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = bool(param_bool(p, "cancel_at_period_end"))
            sub["cancel_at"] = sub["items"]["data"][0]["current_period_end"] if sub["cancel_at_period_end"] else None
        if invoice_now:
            self.invoice_subscription(sub, customer, at, reason="subscription_update", periods=fresh)
        self.emit_if_changed("customer.subscription.updated", sub, before, created=at)  # one, as it ends up
        return sub

    def _payer(self, sub: dict, customer: dict) -> dict | None:
        pm_id = sub["default_payment_method"] or customer["invoice_settings"]["default_payment_method"]
        return self.store.get("payment_method", pm_id, self.owner) if pm_id else None

    def invoice_subscription(self, sub: dict, customer: dict, at: int, *, reason: str,
                             periods: list[tuple[dict, int, dict, tuple[int, int]]],
                             usage: tuple[int, int] | None = None) -> dict:
        """An invoice of the subscription's pending items and ``periods``, finalized and charged to
        the default payment method; a failure leaves it open and the subscription past_due."""
        invoice = self.create_invoice(customer, currency=sub["currency"], subscription=sub["id"], created=at,
                                      default_payment_method=None, emit=False)
        invoice["billing_reason"] = reason
        invoice["parent"]["subscription_details"]["metadata"] = dict(sub["metadata"])
        for ii in self.pending_for(sub):
            invoice["lines"]["data"].append(self.item_line(invoice["id"], sub, ii))
            ii["invoice"] = invoice["id"]
        for price, quantity, item, period in periods:
            invoice["lines"]["data"].append(self.line(
                invoice["id"], sub, amount=price["unit_amount"] * quantity, description=self.period_line_text(price, quantity),
                price=price, quantity=quantity, item_id=item["id"], period=period, proration=False,
            ))
        if usage is not None:  # the period the pending items were added in
            invoice.update(period_start=usage[0], period_end=usage[1])
        self.retotal(invoice)
        self.emit("invoice.created", invoice, created=at)
        self.finalize(invoice, at=at)
        sub["latest_invoice"] = invoice["id"]
        if invoice["status"] == "paid":
            return invoice
        pm = self._payer(sub, customer)
        if pm is None:
            sub["status"] = "past_due"
            return invoice
        charge = self.attempt(invoice, pm, automatic=True, at=at)
        sub["status"] = "active" if charge["status"] == "succeeded" else "past_due"
        return invoice

    def renew(self, sub: dict, *, at: int | None = None) -> dict:
        """The next period begins: its invoice (pending items + each item's new period), charged."""
        customer = self.get("customer", sub["customer"])
        before = json_copy(sub)
        periods = []
        usage_start = min(item["current_period_start"] for item in sub["items"]["data"])
        for item in sub["items"]["data"]:
            interval, count = self._interval(item["price"])
            start = item["current_period_end"]
            end = advance(start, interval, count, sub["billing_cycle_anchor"])
            item.update(current_period_start=start, current_period_end=end)
            periods.append((item["price"], item["quantity"], item, (start, end)))
        boundary = min(p[3][0] for p in periods)
        ts = at if at is not None else boundary
        invoice = self.invoice_subscription(sub, customer, ts, reason="subscription_cycle", periods=periods,
                                            usage=(usage_start, boundary))
        self.emit_if_changed("customer.subscription.updated", sub, before, created=ts)
        return invoice

    def preview(self, params: dict) -> dict:
        """``POST /v1/invoices/create_preview``: the invoice, not stored."""
        p = params
        not_implemented(p, ("invoice_items", "schedule", "schedule_details", "discounts", "customer_details", "issuer",
                            "on_behalf_of", "customer_account"), "POST /v1/invoices/create_preview")
        if (p.get("automatic_tax") or {}).get("enabled") == "true":
            raise invalid_request("The Stripe fake does not implement automatic tax.", param="automatic_tax[enabled]")
        details = p.get("subscription_details") or {}
        if not isinstance(details, dict):
            raise invalid_request("Invalid hash", param="subscription_details")
        not_implemented(details, ("billing_cycle_anchor", "billing_mode", "billing_schedules", "cancel_at",
                                  "cancel_at_period_end", "cancel_now", "default_tax_rates", "resume_at", "start_date",
                                  "trial_end"), "POST /v1/invoices/create_preview subscription_details")
        if not p.get("subscription"):
            if details.get("items"):
                raise invalid_request("The Stripe fake does not implement previews of new subscriptions: pass `subscription`.")
            raise invalid_request(
                "You must pass one of `subscription`, `subscription_details[items]`, `schedule`, "
                "`schedule_details[phases]` or `invoice_items` to preview an invoice.")
        sub = self.get("subscription", p["subscription"], param="subscription")
        if p.get("customer") and p["customer"] != sub["customer"]:
            raise invalid_request(f"The subscription {sub['id']} does not belong to the customer {p['customer']}.",
                                  param="customer")
        if p.get("currency") and p["currency"].lower() != sub["currency"]:
            raise invalid_request(f"The currency must be the subscription's ({sub['currency']}).", param="currency")
        mode = p.get("preview_mode", "next")
        if mode not in ("next", "recurring"):
            raise invalid_request("Invalid preview_mode: must be one of next or recurring", param="preview_mode")
        behavior = details.get("proration_behavior", "create_prorations")
        if behavior not in PRORATION_BEHAVIORS:
            raise invalid_request("Invalid proration_behavior: must be one of always_invoice, create_prorations, or none",
                                  param="subscription_details[proration_behavior]")
        customer = self.get("customer", sub["customer"])
        at = param_int(details, "proration_date")
        at = now() if at is None else at
        simulated = json_copy(sub)
        changes = self.changes(simulated, details.get("items"), where="subscription_details[items]")
        interval_changed = self._interval_changes(changes)
        prorations = self._proration_lines(
            simulated, changes, at, prorate_credit=behavior != "none",
            prorate_debit=behavior != "none" and not interval_changed,
        ) if changes and mode == "next" else []
        ids_before = {item["id"] for item in simulated["items"]["data"]}
        fresh = self._apply(simulated, changes, at, reset_cycle=True)
        new_item_id = next((i["id"] for i in simulated["items"]["data"] if i["id"] not in ids_before), None)
        preview_id = "upcoming_in_1" + secrets.token_hex(12)
        lines = []
        if mode == "next":
            lines += [self.item_line(preview_id, sub, ii, preview=True) for ii in self.pending_for(sub)]
        for amount, text, price, qty, item, period in prorations:
            lines.append(self.line(preview_id, sub, amount=amount, description=text, price=price, quantity=qty,
                                   item_id=item["id"] if item else new_item_id, period=period, proration=True,
                                   preview=True))
        immediate = mode == "next" and (interval_changed or (behavior == "always_invoice" and bool(prorations)))
        if immediate:
            periods = [(price, qty, item, period) for price, qty, item, period in fresh]
            created, period_start, period_end = at, at, at
        else:
            periods = []
            for item in simulated["items"]["data"]:
                interval, count = self._interval(item["price"])
                start = item["current_period_end"]
                periods.append((item["price"], item["quantity"], item,
                                (start, advance(start, interval, count, simulated["billing_cycle_anchor"]))))
            created = min(period[3][0] for period in periods)
            period_start = min(item["current_period_start"] for item in simulated["items"]["data"])
            period_end = created
        for price, qty, item, period in periods:
            lines.append(self.line(preview_id, sub, amount=price["unit_amount"] * qty,
                                   description=self.period_line_text(price, qty), price=price, quantity=qty,
                                   item_id=item["id"], period=period, proration=False, preview=True))
        invoice = self.create_invoice(customer, currency=sub["currency"], subscription=sub["id"], created=created, emit=False)
        self.store.remove("invoice", invoice["id"], self.owner)  # a preview is never stored
        invoice.update(
            id=preview_id,
            billing_reason="upcoming" if not immediate else "subscription_update",
            period_start=period_start,
            period_end=period_end,
            webhooks_delivered_at=None,
            automatically_finalizes_at=None,
            next_payment_attempt=created + 3600 if not immediate else None,
        )
        invoice["parent"]["subscription_details"].update(
            metadata=dict(sub["metadata"]), subscription_proration_date=at if prorations else None)
        invoice["lines"] = {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                            "url": f"/v1/invoices/{preview_id}/lines"}
        self.retotal(invoice)
        starting = customer["balance"]
        applied = invoice["total"] + starting
        invoice.update(starting_balance=starting, ending_balance=None, amount_due=max(applied, 0),
                       amount_remaining=max(applied, 0))
        return invoice


def subs_for(req: FakeRequest) -> Subscriptions:
    return Subscriptions(req.fake, req.stripe_account)


# -- products ------------------------------------------------------------------------------------


@ROUTES.route("POST", "/v1/products")
def create_product(req: FakeRequest) -> dict:
    p, s = req.params, subs_for(req)
    not_implemented(p, ("default_price_data", "images", "marketing_features", "package_dimensions", "shippable",
                        "tax_code", "unit_label", "url", "id", "statement_descriptor", "tax_details"), "POST /v1/products")
    if not p.get("name"):
        raise missing_param("name")
    product = s.new_product(p["name"], metadata=p.get("metadata") if isinstance(p.get("metadata"), dict) else None,
                            description=p.get("description"))
    if p.get("active") == "false":
        product["active"] = False
    return s.expand(product, expand_of(req))


@ROUTES.route("GET", "/v1/products/{id}")
def retrieve_product(req: FakeRequest) -> dict:
    s = subs_for(req)
    return s.expand(s.get("product", req.path_params["id"]), expand_of(req))


@ROUTES.route("GET", "/v1/products")
def list_products(req: FakeRequest) -> dict:
    p, s = req.params, subs_for(req)
    active = param_bool(p, "active")
    page = req.store.page("product", req.stripe_account, p, "/v1/products",
                          match=(lambda o: o["active"] == active) if active is not None else None)
    paths = expand_list_paths(p)
    page["data"] = [s.expand(o, paths) for o in page["data"]]
    return page


# -- prices --------------------------------------------------------------------------------------


@ROUTES.route("POST", "/v1/prices")
def create_price(req: FakeRequest) -> dict:
    p, s = req.params, subs_for(req)
    not_implemented(p, ("currency_options", "custom_unit_amount", "tiers", "tiers_mode", "transform_quantity",
                        "unit_amount_decimal", "tax_behavior"), "POST /v1/prices")
    if p.get("billing_scheme", "per_unit") != "per_unit":
        raise invalid_request("The Stripe fake does not implement tiered prices.", param="billing_scheme")
    if not p.get("currency"):
        raise missing_param("currency")
    currency = p["currency"].lower()
    if "unit_amount" not in p:
        raise missing_param("unit_amount")
    unit_amount = param_int(p, "unit_amount")
    if unit_amount < 0:
        raise invalid_request("This value must be greater than or equal to 0.", param="unit_amount")
    recurring = p.get("recurring")
    interval, count = None, 1
    if recurring is not None:
        if not isinstance(recurring, dict):
            raise invalid_request("Invalid hash", param="recurring")
        not_implemented(recurring, ("meter", "usage_type", "trial_period_days", "aggregate_usage"), "POST /v1/prices recurring")
        if not recurring.get("interval"):
            raise missing_param("recurring[interval]")
        interval = recurring["interval"]
        count = param_int(recurring, "interval_count") or 1
        limit = {"day": 365, "week": 52, "month": 12, "year": 1}.get(interval, 1)
        if not 1 <= count <= limit:
            raise invalid_request("The interval_count is too large: a price's interval must be at most one year.",
                                  param="recurring[interval_count]")
    if p.get("product") and p.get("product_data"):
        raise invalid_request("You may only specify one of these parameters: product, product_data.")
    if p.get("product"):
        product = s.get("product", p["product"], param="product")
    elif isinstance(p.get("product_data"), dict):
        data = p["product_data"]
        not_implemented(data, ("id", "statement_descriptor", "tax_code", "unit_label", "tax_details"), "POST /v1/prices product_data")
        if not data.get("name"):
            raise missing_param("product_data[name]")
        product = s.new_product(data["name"], metadata=data.get("metadata") if isinstance(data.get("metadata"), dict) else None)
    else:
        raise missing_param("product")
    lookup_key = p.get("lookup_key")
    if lookup_key:
        holder = next((o for o in req.store.all("price", req.stripe_account) if o["lookup_key"] == lookup_key), None)
        if holder is not None:
            if not param_bool(p, "transfer_lookup_key"):
                raise invalid_request(f"A price ({holder['id']}) already uses that lookup key.", param="lookup_key")
            holder["lookup_key"] = None
    price = s.new_price(unit_amount, currency=currency, product=product["id"], interval=interval, interval_count=count,
                        nickname=p.get("nickname"), lookup_key=lookup_key,
                        metadata=p.get("metadata") if isinstance(p.get("metadata"), dict) else None,
                        active=p.get("active") != "false")
    return s.expand(price, expand_of(req))


@ROUTES.route("GET", "/v1/prices/{price}")
def retrieve_price(req: FakeRequest) -> dict:
    s = subs_for(req)
    return s.expand(s.get("price", req.path_params["price"]), expand_of(req))


@ROUTES.route("GET", "/v1/prices")
def list_prices(req: FakeRequest) -> dict:
    p, s = req.params, subs_for(req)
    active = param_bool(p, "active")
    keys = p.get("lookup_keys")
    if keys is not None and not isinstance(keys, list):
        raise invalid_request("Invalid array", param="lookup_keys")
    recurring = p.get("recurring") if isinstance(p.get("recurring"), dict) else {}
    if p.get("type") not in (None, "one_time", "recurring"):
        raise invalid_request("Invalid type: must be one of one_time or recurring", param="type")

    def match(price: dict) -> bool:
        return (
            (active is None or price["active"] == active)
            and (not p.get("currency") or price["currency"] == p["currency"].lower())
            and (not p.get("product") or price["product"] == p["product"])
            and (not p.get("type") or price["type"] == p["type"])
            and (keys is None or price["lookup_key"] in keys)
            and (not recurring.get("interval") or (price["recurring"] or {}).get("interval") == recurring["interval"])
        )

    filtered = any(k in p for k in ("active", "currency", "product", "type", "lookup_keys", "recurring"))
    page = req.store.page("price", req.stripe_account, p, "/v1/prices", match=match if filtered else None)
    paths = expand_list_paths(p)
    page["data"] = [s.expand(o, paths) for o in page["data"]]
    return page


# -- subscriptions -------------------------------------------------------------------------------


@ROUTES.route("GET", "/v1/subscriptions/{subscription}")
def retrieve_subscription(req: FakeRequest) -> dict:
    s = subs_for(req)
    return s.expand(s.get("subscription", req.path_params["subscription"]), expand_of(req))


@ROUTES.route("GET", "/v1/subscriptions")
def list_subscriptions(req: FakeRequest) -> dict:
    p, s = req.params, subs_for(req)
    not_implemented(p, ("automatic_tax", "current_period_end", "current_period_start", "test_clock", "customer_account"),
                    "GET /v1/subscriptions")
    status = p.get("status")
    if status not in (None, "all", "ended", *SUBSCRIPTION_STATUSES):
        raise invalid_request("Invalid status: must be one of active, all, canceled, ended, incomplete, "
                              "incomplete_expired, past_due, paused, trialing, or unpaid", param="status")

    def match(sub: dict) -> bool:
        if status is None:  # Stripe lists the subscriptions that are not canceled unless asked
            status_ok = sub["status"] not in ("canceled", "incomplete_expired")
        elif status == "ended":
            status_ok = sub["status"] in ("canceled", "incomplete_expired")
        else:
            status_ok = status == "all" or sub["status"] == status
        return (
            status_ok
            and (not p.get("customer") or sub["customer"] == p["customer"])
            and (not p.get("price") or any(i["price"]["id"] == p["price"] for i in sub["items"]["data"]))
            and (not p.get("plan") or any(i["price"]["id"] == p["plan"] for i in sub["items"]["data"]))
            and (not p.get("collection_method") or sub["collection_method"] == p["collection_method"])
        )

    page = req.store.page("subscription", req.stripe_account, p, "/v1/subscriptions", match=match)
    paths = expand_list_paths(p)
    page["data"] = [s.expand(o, paths) for o in page["data"]]
    return page


@ROUTES.route("POST", "/v1/subscriptions/{subscription}")
def update_subscription(req: FakeRequest) -> dict:
    s = subs_for(req)
    sub = s.get("subscription", req.path_params["subscription"])
    return s.expand(s.update(sub, req.params), expand_of(req))


# -- previews ------------------------------------------------------------------------------------


@ROUTES.route("POST", "/v1/invoices/create_preview")
def create_preview(req: FakeRequest) -> dict:
    s = subs_for(req)
    return s.expand(s.preview(req.params), expand_of(req))


@ROUTES.route("GET", "/v1/invoices/upcoming")
def upcoming_removed(req: FakeRequest) -> dict:
    raise StripeApiError(
        404, "invalid_request_error",
        "Unrecognized request URL (GET: /v1/invoices/upcoming). The upcoming invoice API was removed in API version "
        "2025-03-31.basil: use POST /v1/invoices/create_preview.",
    )


ROUTES.route("GET", "/v1/invoices/upcoming/lines")(upcoming_removed)

__all__ = ["Subscriptions", "advance", "money", "prorate", "subs_for"]
