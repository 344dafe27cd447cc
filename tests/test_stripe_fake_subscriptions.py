"""The Stripe fake's subscriptions: prices, subscriptions with their items' periods, plan changes
with prorations (create_prorations / always_invoice / none) and ``POST /v1/invoices/create_preview``
— through the real SDK over real HTTP, with the arithmetic worked by hand in the comments.

Proration, per second of the period: round(unit_amount × quantity × (period_end − proration_date)
÷ (period_end − period_start)), half up.
"""

from __future__ import annotations

import calendar

import pytest
import requests
import stripe

from stripe_fake.env import TEST_KEY
from stripe_fake.resources.subscriptions import advance, prorate
from stripe_fake.spec import load_fixtures


def at(*parts: int) -> int:
    return calendar.timegm((*parts, 0, 0, 0, 0, 0, 0)[:6] + (0, 0, 0))


JAN_1, FEB_1, MAR_1 = at(2026, 1, 1), at(2026, 2, 1), at(2026, 3, 1)
JAN_16 = at(2026, 1, 16)  # 16 of January's 31 days are left: 1,382,400 of 2,678,400 s
NEXT_JAN_1 = at(2027, 1, 1)  # 2026 has 365 days: 31,536,000 s


@pytest.fixture
def plans(stripe_fake):
    s = stripe_fake.subscriptions
    return {
        "pro": s.add_price(4900, nickname="Professional", product_name="Professional"),
        "ent": s.add_price(9900, nickname="Enterprise", product_name="Enterprise"),
        "pro_year": s.add_price(49000, interval="year", nickname="Professional annual", product_name="Professional"),
        "ent_year": s.add_price(99000, interval="year", nickname="Enterprise annual", product_name="Enterprise"),
    }


def subscribe(fake, price: dict, start: int = JAN_1, quantity: int = 1, card: str = "4242424242424242"):
    customer = fake.billing.add_customer(email="owner@tenant.example", cards=(card,))
    sub = fake.subscriptions.add(customer["id"], price["id"], current_period_start=start, quantity=quantity)
    return customer, sub, sub["items"]["data"][0]["id"]


def proration_lines(invoice) -> list[tuple[int, str]]:
    return [(ln.amount, ln.description) for ln in invoice.lines.data if ln.parent.subscription_item_details.proration]


def all_lines(invoice) -> list[tuple[int, bool, int, int]]:
    return [(ln.amount, ln.parent.subscription_item_details.proration, ln.period.start, ln.period.end)
            for ln in invoice.lines.data]


# -- arithmetic --------------------------------------------------------------------------------


def test_prorate_and_periods():
    assert prorate(4900, JAN_1, FEB_1, JAN_16) == 2529  # 4900 × 16/31 = 2529.03
    assert prorate(9900, JAN_1, FEB_1, JAN_16) == 5110  # 9900 × 16/31 = 5109.68
    assert prorate(100, 0, 4, 2) == 50 and prorate(3, 0, 2, 1) == 2  # 1.5 → 2: half up
    assert prorate(4900, JAN_1, FEB_1, JAN_1) == 4900 and prorate(4900, JAN_1, FEB_1, FEB_1) == 0
    assert advance(JAN_1, "month", 1, JAN_1) == FEB_1 and advance(FEB_1, "month", 1, JAN_1) == MAR_1
    assert advance(JAN_1, "year", 1, JAN_1) == NEXT_JAN_1
    jan_31 = at(2026, 1, 31)  # the anchor's day, clamped to a shorter month, and back
    assert advance(jan_31, "month", 1, jan_31) == at(2026, 2, 28) and advance(at(2026, 2, 28), "month", 1, jan_31) == at(2026, 3, 31)


# -- catalog and subscriptions -----------------------------------------------------------------


def test_prices_create_list_retrieve(stripe_fake, stripe_client):
    price = stripe_client.v1.prices.create({
        "unit_amount": 4900, "currency": "usd", "recurring": {"interval": "month"},
        "product_data": {"name": "Professional"}, "lookup_key": "professional", "nickname": "Pro monthly",
    })
    assert (price.unit_amount, price.currency, price.recurring.interval, price.type, price.active) == (4900, "usd", "month", "recurring", True)
    assert stripe_client.v1.products.retrieve(price.product).name == "Professional"
    annual = stripe_client.v1.prices.create({"unit_amount": 49000, "currency": "usd", "recurring": {"interval": "year"},
                                             "product": price.product})
    assert stripe_client.v1.prices.retrieve(annual.id).recurring.interval == "year"
    assert set(load_fixtures()["price"]) - {"transform_quantity"} <= set(price.to_dict())
    assert [p.id for p in stripe_client.v1.prices.list({"lookup_keys": ["professional"]}).data] == [price.id]
    assert [p.id for p in stripe_client.v1.prices.list({"product": price.product}).data] == [annual.id, price.id]
    assert [p.id for p in stripe_client.v1.prices.list({"recurring": {"interval": "year"}, "active": True}).data] == [annual.id]
    with pytest.raises(stripe.InvalidRequestError) as taken:
        stripe_client.v1.prices.create({"unit_amount": 5900, "currency": "usd", "recurring": {"interval": "month"},
                                        "product": price.product, "lookup_key": "professional"})
    assert taken.value.param == "lookup_key"
    moved = stripe_client.v1.prices.create({"unit_amount": 5900, "currency": "usd", "recurring": {"interval": "month"},
                                            "product": price.product, "lookup_key": "professional", "transfer_lookup_key": True})
    assert [p.id for p in stripe_client.v1.prices.list({"lookup_keys": ["professional"]}).data] == [moved.id]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.prices.create({"unit_amount": 100, "currency": "usd", "recurring": {"interval": "fortnight"},
                                        "product": price.product})


def test_subscription_shape_list_and_retrieve(stripe_fake, stripe_client, plans):
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"], quantity=3)
    other = stripe_fake.billing.add_customer()
    stripe_fake.subscriptions.add(other["id"], plans["ent"]["id"], status="canceled")
    got = stripe_client.v1.subscriptions.retrieve(sub["id"])
    assert (got.status, got.customer, got.currency, got.billing_cycle_anchor, got.start_date) == ("active", customer["id"], "usd", JAN_1, JAN_1)
    assert got.billing_mode.type == "flexible"
    assert set(load_fixtures()["subscription"]) <= set(got.to_dict())
    assert set(load_fixtures()["subscription_item"]) <= set(got["items"].data[0].to_dict())
    assert "current_period_start" not in got and "current_period_end" not in got  # on the items since 2025-03-31
    [item] = got["items"].data
    assert (item.id, item.price.id, item.quantity, item.current_period_start, item.current_period_end) == (
        item_id, plans["pro"]["id"], 3, JAN_1, FEB_1
    )
    assert (item.plan.amount, item.plan.interval) == (4900, "month")
    assert [s.id for s in stripe_client.v1.subscriptions.list({"customer": customer["id"]}).data] == [sub["id"]]
    assert len(stripe_client.v1.subscriptions.list().data) == 1  # canceled ones only when asked
    assert len(stripe_client.v1.subscriptions.list({"status": "all"}).data) == 2
    assert [s.customer for s in stripe_client.v1.subscriptions.list({"status": "canceled"}).data] == [other["id"]]
    assert [s.id for s in stripe_client.v1.subscriptions.list({"price": plans["pro"]["id"]}).data] == [sub["id"]]
    assert stripe_fake.requests_to("POST") == []
    # a subscription made from an amount alone gets its product and price
    quick = stripe_fake.subscriptions.add(customer["id"], unit_amount=1500, interval="year")
    assert quick["items"]["data"][0]["price"]["unit_amount"] == 1500 and quick["items"]["data"][0]["price"]["recurring"]["interval"] == "year"


# -- monthly -----------------------------------------------------------------------------------


def test_monthly_upgrade_previewed_then_applied_with_prorations(stripe_fake, stripe_client, plans):
    """Professional $49.00 → Enterprise $99.00 on 16 January, period 1 January – 1 February
    (31 days), 16 days left:
      credit  −4900 × 16/31 = −2529.03 → −2529   ("Unused time on Professional after 16 Jan 2026")
      debit   +9900 × 16/31 = +5109.68 → +5110   ("Remaining time on Enterprise after 16 Jan 2026")
      due for the change: 5110 − 2529 = 2581; next period (1 February – 1 March) 9900;
      the next invoice: 9900 + 2581 = 12481."""
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"])
    change = {"items": [{"id": item_id, "price": plans["ent"]["id"]}]}
    preview = stripe_client.v1.invoices.create_preview({
        "customer": customer["id"], "subscription": sub["id"],
        "subscription_details": {**change, "proration_date": JAN_16, "proration_behavior": "create_prorations"},
    })
    assert preview.id.startswith("upcoming_in") and preview.status == "draft" and preview.customer == customer["id"]
    assert proration_lines(preview) == [
        (-2529, "Unused time on Professional after 16 Jan 2026"),
        (5110, "Remaining time on Enterprise after 16 Jan 2026"),
    ]
    assert all_lines(preview) == [(-2529, True, JAN_16, FEB_1), (5110, True, JAN_16, FEB_1), (9900, False, FEB_1, MAR_1)]
    assert preview.lines.data[2].description == "1 × Enterprise (at $99.00 / month)"
    assert preview.lines.data[2].pricing.price_details.price == plans["ent"]["id"]
    assert (preview.total, preview.amount_due) == (12481, 12481)
    assert preview.parent.subscription_details.subscription_proration_date == JAN_16
    with pytest.raises(stripe.InvalidRequestError):  # a preview is not stored
        stripe_client.v1.invoices.retrieve(preview.id)
    assert stripe_fake.subscriptions.get(sub["id"])["items"]["data"][0]["price"]["id"] == plans["pro"]["id"]

    updated = stripe_client.v1.subscriptions.update(
        sub["id"], {**change, "proration_date": JAN_16, "proration_behavior": "create_prorations"},
        {"idempotency_key": f"pmfin:plan-change:{sub['id']}:{JAN_16}"},
    )
    [item] = updated["items"].data
    assert (item.price.id, item.current_period_start, item.current_period_end) == (plans["ent"]["id"], JAN_1, FEB_1)
    pending = stripe_fake.subscriptions.pending_items(customer["id"])
    assert [(i["amount"], i["proration"], i["period"]["start"]) for i in pending] == [(-2529, True, JAN_16), (5110, True, JAN_16)]
    assert stripe_fake.billing.invoices(customer["id"]) == []  # nothing invoiced yet
    # the next invoice shows them, as the preview said
    after = stripe_client.v1.invoices.create_preview({"customer": customer["id"], "subscription": sub["id"]})
    assert after.total == 12481 and [ln.parent.subscription_item_details.invoice_item for ln in after.lines.data[:2]] == [
        i["id"] for i in pending
    ]
    renewal = stripe_fake.subscriptions.renew(sub["id"])
    assert (renewal["status"], renewal["total"], renewal["amount_paid"], renewal["billing_reason"]) == ("paid", 12481, 12481, "subscription_cycle")
    assert stripe_fake.subscriptions.pending_items(customer["id"]) == []
    assert stripe_fake.subscriptions.get(sub["id"])["items"]["data"][0]["current_period_end"] == MAR_1


def test_monthly_downgrade_invoiced_at_once_becomes_credit(stripe_fake, stripe_client, plans):
    """2 × Enterprise ($99.00) → 2 × Professional ($49.00) on 21 January 12:00, always_invoice.
    Left: 1 February − 21 January 12:00 = 10.5 days = 907,200 of 2,678,400 s.
      credit  −19800 × 907200/2678400 = −6706.45 → −6706   ("Unused time on 2 × Enterprise …")
      debit   +9800 × 907200/2678400  = +3319.35 → +3319   ("Remaining time on 2 × Professional …")
      invoice total −3387: nothing is due, the 3387 becomes the customer's credit, and the
      February invoice (2 × 4900 = 9800) is 9800 − 3387 = 6413."""
    jan_21_noon = at(2026, 1, 21, 12)
    customer, sub, item_id = subscribe(stripe_fake, plans["ent"], quantity=2)
    preview = stripe_client.v1.invoices.create_preview({
        "subscription": sub["id"],
        "subscription_details": {"items": [{"id": item_id, "price": plans["pro"]["id"]}], "proration_date": jan_21_noon,
                                 "proration_behavior": "always_invoice"},
    })
    # always_invoice previews the invoice the change makes at once: the prorations only
    assert all_lines(preview) == [(-6706, True, jan_21_noon, FEB_1), (3319, True, jan_21_noon, FEB_1)]
    assert (preview.total, preview.amount_due) == (-3387, 0)
    updated = stripe_client.v1.subscriptions.update(sub["id"], {
        "items": [{"id": item_id, "price": plans["pro"]["id"]}], "proration_date": jan_21_noon,
        "proration_behavior": "always_invoice",
    })
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert [(ln.amount, ln.description) for ln in invoice.lines.data] == [
        (-6706, "Unused time on 2 × Enterprise after 21 Jan 2026"),
        (3319, "Remaining time on 2 × Professional after 21 Jan 2026"),
    ]
    assert (invoice.status, invoice.total, invoice.amount_due, invoice.billing_reason) == ("paid", -3387, 0, "subscription_update")
    assert (invoice.starting_balance, invoice.ending_balance) == (0, -3387)
    assert stripe_client.v1.customers.retrieve(customer["id"]).balance == -3387
    assert stripe_fake.billing.charges() == []  # nothing was charged
    renewal = stripe_fake.subscriptions.renew(sub["id"])
    assert (renewal["total"], renewal["starting_balance"], renewal["amount_due"], renewal["amount_paid"]) == (9800, -3387, 6413, 6413)
    assert stripe_fake.billing.customer(customer["id"])["balance"] == 0


# -- annual ------------------------------------------------------------------------------------


def test_annual_upgrade(stripe_fake, stripe_client, plans):
    """Professional annual $490.00 → Enterprise annual $990.00 on 1 April 2026; period 1 January
    2026 – 1 January 2027 (365 days), 275 days left (April 30 + … + December 31):
      credit  −49000 × 275/365 = −36917.81 → −36918
      debit   +99000 × 275/365 = +74589.04 → +74589
      due for the change 37671; next period (2027) 99000; the next invoice 136671."""
    apr_1 = at(2026, 4, 1)
    customer, sub, item_id = subscribe(stripe_fake, plans["pro_year"])
    assert sub["items"]["data"][0]["current_period_end"] == NEXT_JAN_1
    preview = stripe_client.v1.invoices.create_preview({
        "customer": customer["id"], "subscription": sub["id"],
        "subscription_details": {"items": [{"id": item_id, "price": plans["ent_year"]["id"]}], "proration_date": apr_1},
    })
    assert all_lines(preview) == [
        (-36918, True, apr_1, NEXT_JAN_1), (74589, True, apr_1, NEXT_JAN_1), (99000, False, NEXT_JAN_1, at(2028, 1, 1)),
    ]
    assert preview.total == 136671 and sum(a for a, _ in proration_lines(preview)) == 37671
    assert preview.lines.data[2].description == "1 × Enterprise (at $990.00 / year)"
    updated = stripe_client.v1.subscriptions.update(sub["id"], {
        "items": [{"id": item_id, "price": plans["ent_year"]["id"]}], "proration_date": apr_1,
        "proration_behavior": "always_invoice",
    })
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice, {"expand": ["payments"]})
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("paid", 37671, 37671)
    [charge] = stripe_fake.billing.charges(invoice.id)
    assert charge["amount"] == 37671 and charge["payment_method"] == customer["payment_methods"][0]


def test_annual_downgrade_at_an_odd_hour(stripe_fake, stripe_client, plans):
    """Enterprise annual $990.00 → Professional annual $490.00 on 15 October 2026 06:00; left until
    1 January 2027: 16.75 + 30 + 31 = 77.75 days = 6,717,600 of 31,536,000 s.
      credit  −99000 × 6717600/31536000 = −21088.36 → −21088
      debit   +49000 × 6717600/31536000 = +10437.67 → +10438
      left pending (create_prorations), net −10650; the 2027 invoice is 49000 − 10650 = 38350."""
    oct_15 = at(2026, 10, 15, 6)
    customer, sub, item_id = subscribe(stripe_fake, plans["ent_year"])
    stripe_client.v1.subscriptions.update(sub["id"], {
        "items": [{"id": item_id, "price": plans["pro_year"]["id"]}], "proration_date": oct_15,
    })  # proration_behavior defaults to create_prorations
    assert [(i["amount"], i["description"]) for i in stripe_fake.subscriptions.pending_items(customer["id"])] == [
        (-21088, "Unused time on Enterprise after 15 Oct 2026"), (10438, "Remaining time on Professional after 15 Oct 2026"),
    ]
    assert stripe_client.v1.invoices.create_preview({"customer": customer["id"], "subscription": sub["id"]}).total == 38350
    assert stripe_fake.subscriptions.renew(sub["id"])["amount_paid"] == 38350


def test_monthly_to_annual_resets_the_billing_cycle_and_invoices_at_once(stripe_fake, stripe_client, plans):
    """Professional $49.00/month → Professional $490.00/year on 16 January: the interval changes,
    so the cycle restarts at the change and the year is invoiced now:
      credit −4900 × 16/31 → −2529; the year 16 January 2026 – 16 January 2027: 49000;
      invoice 49000 − 2529 = 46471."""
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"])
    updated = stripe_client.v1.subscriptions.update(sub["id"], {
        "items": [{"id": item_id, "price": plans["pro_year"]["id"]}], "proration_date": JAN_16,
    })
    [item] = updated["items"].data
    assert (item.current_period_start, item.current_period_end, updated.billing_cycle_anchor) == (JAN_16, at(2027, 1, 16), JAN_16)
    invoice = stripe_client.v1.invoices.retrieve(updated.latest_invoice)
    assert [(ln.amount, ln.parent.subscription_item_details.proration) for ln in invoice.lines.data] == [(-2529, True), (49000, False)]
    assert (invoice.total, invoice.status) == (46471, "paid")


# -- behaviours and errors ---------------------------------------------------------------------


def test_proration_behavior_none_and_preview_modes(stripe_fake, stripe_client, plans):
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"])
    change = {"items": [{"id": item_id, "price": plans["ent"]["id"]}], "proration_date": JAN_16}
    none = stripe_client.v1.invoices.create_preview(
        {"subscription": sub["id"], "subscription_details": {**change, "proration_behavior": "none"}})
    assert all_lines(none) == [(9900, False, FEB_1, MAR_1)] and none.parent.subscription_details.subscription_proration_date is None
    recurring = stripe_client.v1.invoices.create_preview(
        {"subscription": sub["id"], "subscription_details": change, "preview_mode": "recurring"})
    assert all_lines(recurring) == [(9900, False, FEB_1, MAR_1)]
    stripe_client.v1.subscriptions.update(sub["id"], {**change, "proration_behavior": "none"})
    assert stripe_fake.subscriptions.pending_items(customer["id"]) == [] and stripe_fake.billing.invoices() == []
    assert stripe_fake.subscriptions.get(sub["id"])["items"]["data"][0]["price"]["id"] == plans["ent"]["id"]


def test_quantity_change_prorates_both_quantities(stripe_fake, stripe_client, plans):
    """3 → 5 seats of Professional on 16 January: −14700 × 16/31 = −7587.10 → −7587;
    +24500 × 16/31 = +12645.16 → +12645."""
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"], quantity=3)
    preview = stripe_client.v1.invoices.create_preview({
        "subscription": sub["id"], "subscription_details": {"items": [{"id": item_id, "quantity": 5}], "proration_date": JAN_16},
    })
    assert proration_lines(preview) == [
        (-7587, "Unused time on 3 × Professional after 16 Jan 2026"), (12645, "Remaining time on 5 × Professional after 16 Jan 2026"),
    ]
    assert preview.lines.data[2].amount == 24500


def test_a_declined_immediate_invoice(stripe_fake, stripe_client, plans):
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"], card="4000000000000341")
    change = {"items": [{"id": item_id, "price": plans["ent"]["id"]}], "proration_date": JAN_16,
              "proration_behavior": "always_invoice"}
    with pytest.raises(stripe.CardError):  # error_if_incomplete: refused, nothing changes
        stripe_client.v1.subscriptions.update(sub["id"], {**change, "payment_behavior": "error_if_incomplete"})
    assert stripe_fake.subscriptions.get(sub["id"])["items"]["data"][0]["price"]["id"] == plans["pro"]["id"]
    assert stripe_fake.billing.invoices() == []
    updated = stripe_client.v1.subscriptions.update(sub["id"], change)  # allow_incomplete (the default)
    assert updated.status == "past_due" and updated["items"].data[0].price.id == plans["ent"]["id"]
    invoice = stripe_fake.billing.invoice(updated.latest_invoice)
    assert (invoice["status"], invoice["amount_due"], invoice["attempt_count"]) == ("open", 2581, 1)


def test_idempotent_update_prorates_once(stripe_fake, stripe_client, plans):
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"])
    params = {"items": [{"id": item_id, "price": plans["ent"]["id"]}], "proration_date": JAN_16}
    key = {"idempotency_key": "pmfin:subscription-change:t1:1"}
    first = stripe_client.v1.subscriptions.update(sub["id"], params, key)
    second = stripe_client.v1.subscriptions.update(sub["id"], params, key)
    assert first.to_dict() == second.to_dict() and len(stripe_fake.subscriptions.pending_items(customer["id"])) == 2
    assert [r.replayed for r in stripe_fake.requests_to("POST", f"/v1/subscriptions/{sub['id']}")] == [False, True]


def test_bad_changes_are_refused(stripe_fake, stripe_client, plans):
    customer, sub, item_id = subscribe(stripe_fake, plans["pro"])
    euro = stripe_fake.subscriptions.add_price(4500, currency="eur")
    cases = [
        ({"items": [{"id": item_id, "price": plans["ent"]["id"]}], "proration_date": at(2026, 3, 1, 1)}, "proration_date"),
        ({"items": [{"id": item_id, "price": euro["id"]}]}, "items[0][price]"),
        ({"items": [{"id": "si_nothere", "price": plans["ent"]["id"]}]}, "items[0][id]"),
        ({"items": [{"id": item_id, "price": "price_nothere"}]}, "items[0][price]"),
        ({"proration_behavior": "sometimes"}, "proration_behavior"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            stripe_client.v1.subscriptions.update(sub["id"], params)
        assert exc.value.param == param, params
    with pytest.raises(stripe.InvalidRequestError):  # customer alone: removed in API 2025-03-31
        stripe_client.v1.invoices.create_preview({"customer": customer["id"]})
    removed = requests.get(f"{stripe_fake.url}/v1/invoices/upcoming?customer={customer['id']}",
                           headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5)
    assert removed.status_code == 404 and "create_preview" in removed.json()["error"]["message"]
    typo = requests.post(f"{stripe_fake.url}/v1/invoices/create_preview",
                         data={"subscription": sub["id"], "subscription_details[proraton_behavior]": "none"},
                         headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5)
    assert typo.status_code == 400 and "unknown parameter" in typo.json()["error"]["message"]
    assert stripe_fake.subscriptions.pending_items(customer["id"]) == []
    assert stripe_fake.subscriptions.get(sub["id"])["items"]["data"][0]["price"]["id"] == plans["pro"]["id"]
    stripe_fake.spec_errors.clear()  # the typo is expected here; otherwise the fixture fails the test
