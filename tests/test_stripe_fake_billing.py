"""The Stripe fake's billing: customers, payment methods, invoice items, invoices, paying them,
and the test-side helpers ``fake.billing`` — through the real SDK over real HTTP.

These pin down the Stripe behaviour pmfin's invoice and dunning code is tested against.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
import stripe

from stripe_fake.env import TEST_KEY
from stripe_fake.resources.billing import stripe_fee
from stripe_fake.spec import load_fixtures


def raw_post(fake, path: str, body: str, **headers):
    return requests.post(
        fake.url + path,
        data=body,
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/x-www-form-urlencoded", **headers},
        timeout=5,
    )


def open_invoice(fake, card: str = "4242424242424242", amount: int = 5000, **kw) -> tuple[dict, dict]:
    customer = fake.billing.add_customer(email="billing@tenant.example", cards=(card,))
    return customer, fake.billing.add_invoice(customer["id"], amount, **kw)


# -- customers ---------------------------------------------------------------------------------


def test_customer_create_retrieve_update(stripe_fake, stripe_client):
    customer = stripe_client.v1.customers.create(
        {"email": "owner@tenant.example", "name": "Tenant One", "metadata": {"tenant_id": "t1"}}
    )
    assert customer.id.startswith("cus_") and customer.object == "customer"
    assert (customer.email, customer.name, customer.metadata["tenant_id"]) == ("owner@tenant.example", "Tenant One", "t1")
    assert customer.invoice_settings.default_payment_method is None
    assert re.fullmatch(r"[0-9A-F]{8}", customer.invoice_prefix) and customer.next_invoice_sequence == 1
    assert set(load_fixtures()["customer"]) <= set(customer.to_dict())

    updated = stripe_client.v1.customers.update(customer.id, {"name": "Tenant 1", "metadata": {"plan": "pro", "tenant_id": ""}})
    assert updated.name == "Tenant 1" and updated.metadata.to_dict() == {"plan": "pro"}
    assert stripe_client.v1.customers.retrieve(customer.id).name == "Tenant 1"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customers.retrieve("cus_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as bad_email:
        stripe_client.v1.customers.create({"email": "not-an-email"})
    assert bad_email.value.code == "email_invalid"


def test_customer_list_paginates_newest_first(stripe_fake, stripe_client):
    ids = [stripe_fake.billing.add_customer(email=f"c{i}@tenant.example")["id"] for i in range(5)]
    page = stripe_client.v1.customers.list({"limit": 2})
    assert [c.id for c in page.data] == ids[::-1][:2] and page.has_more is True and page.url == "/v1/customers"
    rest = stripe_client.v1.customers.list({"limit": 10, "starting_after": page.data[-1].id})
    assert [c.id for c in rest.data] == ids[::-1][2:] and rest.has_more is False
    assert [c.id for c in stripe_client.v1.customers.list({"email": "c3@tenant.example"}).data] == [ids[3]]
    assert [c.id for c in stripe_client.v1.customers.list({"limit": 2}).auto_paging_iter()] == ids[::-1]


def test_customer_default_payment_method_must_be_attached_to_it(stripe_fake, stripe_client):
    mine = stripe_fake.billing.add_customer(cards=("4242424242424242", "5555555555554444"), default=None)
    other = stripe_fake.billing.add_customer()
    updated = stripe_client.v1.customers.update(
        mine["id"], {"invoice_settings": {"default_payment_method": mine["payment_methods"][1]}}
    )
    assert updated.invoice_settings.default_payment_method == mine["payment_methods"][1]
    for foreign in (other["payment_methods"][0], "pm_doesnotexist"):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            stripe_client.v1.customers.update(mine["id"], {"invoice_settings": {"default_payment_method": foreign}})
        assert (exc.value.http_status, exc.value.code) == (400, "resource_missing")
        assert exc.value.param == "invoice_settings[default_payment_method]"
    assert stripe_fake.billing.customer(mine["id"])["invoice_settings"]["default_payment_method"] == mine["payment_methods"][1]
    cleared = stripe_client.v1.customers.update(mine["id"], {"invoice_settings": {"default_payment_method": ""}})
    assert cleared.invoice_settings.default_payment_method is None


def test_customer_created_with_a_test_payment_method_as_default(stripe_fake, stripe_client):
    customer = stripe_client.v1.customers.create(
        {"email": "a@tenant.example", "payment_method": "pm_card_visa", "invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    pm_id = customer.invoice_settings.default_payment_method
    assert pm_id.startswith("pm_") and pm_id != "pm_card_visa"
    assert stripe_client.v1.payment_methods.retrieve(pm_id).customer == customer.id
    with pytest.raises(stripe.InvalidRequestError):  # a default that is not attached to the new customer
        stripe_client.v1.customers.create({"invoice_settings": {"default_payment_method": pm_id}})
    assert len(stripe_client.v1.customers.list().data) == 1  # the failed create made nothing


# -- payment methods ---------------------------------------------------------------------------


def test_attach_test_ids_makes_new_payment_methods(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=(), default=None)
    first = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer["id"]})
    second = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer["id"]})
    master = stripe_client.v1.payment_methods.attach("pm_card_mastercard", {"customer": customer["id"]})
    assert len({first.id, second.id, master.id}) == 3 and first.id.startswith("pm_")
    assert first.customer == customer["id"] and first.type == "card"
    card = first.card
    assert (card.brand, card.last4, card.funding, card.country) == ("visa", "4242", "credit", "US")
    assert card.exp_year > time.gmtime().tm_year - 1 and 1 <= card.exp_month <= 12
    assert card.fingerprint == second.card.fingerprint != master.card.fingerprint
    assert (master.card.brand, master.card.last4) == ("mastercard", "4444")
    assert first.created and set(load_fixtures()["payment_method"]) <= set(first.to_dict())
    assert stripe_client.v1.payment_methods.retrieve(second.id).card.last4 == "4242"
    # attaching again to the same customer is harmless; to another one is an error
    assert stripe_client.v1.payment_methods.attach(first.id, {"customer": customer["id"]}).id == first.id
    other = stripe_fake.billing.add_customer(cards=())
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.attach(first.id, {"customer": other["id"]})
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": "cus_nope"})
    assert (no_customer.value.code, no_customer.value.param) == ("resource_missing", "customer")


def test_customer_payment_methods_list_newest_first(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4242424242424242", "5555555555554444", "378282246310005"))
    newest_first = customer["payment_methods"][::-1]
    listed = stripe_client.v1.customers.payment_methods.list(customer["id"], {"type": "card"})
    assert [pm.id for pm in listed.data] == newest_first
    assert listed.url == f"/v1/customers/{customer['id']}/payment_methods"
    page = stripe_client.v1.customers.payment_methods.list(customer["id"], {"type": "card", "limit": 2})
    assert [pm.id for pm in page.data] == newest_first[:2] and page.has_more
    rest = stripe_client.v1.customers.payment_methods.list(
        customer["id"], {"type": "card", "limit": 2, "starting_after": page.data[-1].id}
    )
    assert [pm.id for pm in rest.data] == newest_first[2:] and not rest.has_more
    # a card added later is the newest; one given an older `created` sorts by it
    late = stripe_fake.billing.add_card(customer["id"], "6011111111111117")
    old = stripe_fake.billing.add_card(customer["id"], "4000056655665556", created=1_500_000_000)
    assert [pm.id for pm in stripe_client.v1.customers.payment_methods.list(customer["id"]).data] == [
        late["id"], *newest_first, old["id"]
    ]
    assert stripe_client.v1.customers.payment_methods.list(customer["id"], {"type": "sepa_debit"}).data == []


def test_payment_methods_list_and_expand_from_the_customer(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4242424242424242", "5555555555554444"), default=1)
    stripe_fake.billing.add_customer()  # another customer's card is not listed
    listed = stripe_client.v1.payment_methods.list({"customer": customer["id"], "type": "card"})
    assert [pm.id for pm in listed.data] == customer["payment_methods"][::-1]
    got = stripe_client.v1.customers.retrieve(customer["id"], {"expand": ["invoice_settings.default_payment_method"]})
    assert got.invoice_settings.default_payment_method.card.last4 == "4444"
    one = stripe_client.v1.customers.payment_methods.retrieve(customer["id"], customer["payment_methods"][0])
    assert one.card.last4 == "4242"


def test_detach(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4242424242424242", "5555555555554444"))
    default, spare = customer["payment_methods"]
    detached = stripe_client.v1.payment_methods.detach(default)
    assert detached.customer is None
    assert stripe_fake.billing.customer(customer["id"])["invoice_settings"]["default_payment_method"] is None
    assert [pm.id for pm in stripe_client.v1.customers.payment_methods.list(customer["id"]).data] == [spare]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_methods.detach(default)


DECLINED_AT_ATTACH = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", None),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", None),
]


@pytest.mark.parametrize("magic, code, decline_code", DECLINED_AT_ATTACH)
def test_decline_cards_are_refused_when_attached(stripe_fake, stripe_client, magic, code, decline_code):
    """Real Stripe test mode checks a card when it is attached: these cards cannot be attached
    (pm_card_chargeCustomerFail is the one that attaches and then fails)."""
    customer = stripe_fake.billing.add_customer(cards=(), default=None)
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.payment_methods.attach(magic, {"customer": customer["id"]})
    assert exc.value.http_status == 402
    assert (exc.value.code, exc.value.error.decline_code) == (code, decline_code)
    assert stripe_fake.billing.payment_methods(customer["id"]) == []


# -- paying invoices: every test card ----------------------------------------------------------

CHARGE_OUTCOMES = [
    ("4000000000000341", "card_declined", "generic_decline", "Your card was declined."),
    ("4000000000000002", "card_declined", "generic_decline", "Your card was declined."),
    ("4000000000009995", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ("4000000000009987", "card_declined", "lost_card", "Your card was declined."),
    ("4000000000009979", "card_declined", "stolen_card", "Your card was declined."),
    ("4000000000000069", "expired_card", None, "Your card has expired."),
    ("4000000000000119", "processing_error", None, "An error occurred while processing your card. Try again in a little bit."),
]


@pytest.mark.parametrize("number, code, decline_code, message", CHARGE_OUTCOMES)
def test_pay_declines_like_the_test_card(stripe_fake, stripe_client, number, code, decline_code, message):
    customer, invoice = open_invoice(stripe_fake, number)
    pm = customer["payment_methods"][0]
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.invoices.pay(invoice["id"], {"payment_method": pm, "off_session": True})
    err = exc.value
    assert (err.http_status, err.code, err.error.decline_code, err.user_message) == (402, code, decline_code, message)
    assert err.error.type == "card_error" and err.error.payment_method.id == pm
    after = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert (after.status, after.attempt_count, after.attempted, after.amount_paid) == ("open", 1, True, 0)
    [charge] = stripe_fake.billing.charges(invoice["id"])
    assert err.error.charge == charge["id"]
    assert (charge["status"], charge["paid"], charge["failure_code"], charge["failure_message"]) == ("failed", False, code, message)
    assert charge["outcome"]["type"] == "issuer_declined" and charge["outcome"]["reason"] == (decline_code or code)
    assert charge["balance_transaction"] is None and charge["customer"] == customer["id"]
    assert charge["payment_method"] == pm and charge["payment_method_details"]["card"]["last4"] == number[-4:]
    intent = stripe_fake.billing.payment_intent(charge["payment_intent"])
    assert intent["status"] == "requires_payment_method" and intent["last_payment_error"]["code"] == code
    assert intent["latest_charge"] == charge["id"]


def test_decline_is_a_stripe_shaped_402(stripe_fake):
    customer, invoice = open_invoice(stripe_fake, "4000000000009987")
    response = raw_post(stripe_fake, f"/v1/invoices/{invoice['id']}/pay", "off_session=true")
    assert response.status_code == 402
    error = response.json()["error"]
    charge = stripe_fake.billing.charges(invoice["id"])[0]
    assert {k: error[k] for k in ("type", "code", "decline_code", "message", "charge")} == {
        "type": "card_error", "code": "card_declined", "decline_code": "lost_card",
        "message": "Your card was declined.", "charge": charge["id"],
    }
    assert error["payment_method"]["id"] == customer["payment_methods"][0] and error["payment_method"]["card"]["last4"] == "9987"
    assert error["payment_intent"]["id"] == charge["payment_intent"]


def test_charge_customer_fail_attaches_through_the_api_then_declines(stripe_fake, stripe_client):
    customer = stripe_client.v1.customers.create({"email": "x@tenant.example"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    assert pm.card.last4 == "0341"
    stripe_client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    stripe_client.v1.invoice_items.create({"customer": customer.id, "amount": 2500, "currency": "usd", "description": "Pro plan"})
    draft = stripe_client.v1.invoices.create(
        {"customer": customer.id, "collection_method": "charge_automatically", "auto_advance": False,
         "pending_invoice_items_behavior": "include"}
    )
    stripe_client.v1.invoices.finalize_invoice(draft.id)
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.invoices.pay(draft.id, {"off_session": True})  # the customer's default
    assert (exc.value.code, exc.value.error.decline_code) == ("card_declined", "generic_decline")


def test_a_card_past_its_expiry_declines_expired_card(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=())
    stale = stripe_fake.billing.add_card(customer["id"], "4242424242424242", exp_month=1, exp_year=2021, make_default=True)
    invoice = stripe_fake.billing.add_invoice(customer["id"], 1000)
    with pytest.raises(stripe.CardError) as exc:
        stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True})
    assert exc.value.code == "expired_card" and exc.value.error.payment_method.id == stale["id"]


def test_pay_succeeds_and_charges_with_stripe_fee(stripe_fake, stripe_client):
    customer, invoice = open_invoice(stripe_fake, amount=5000)
    paid = stripe_client.v1.invoices.pay(invoice["id"], {"payment_method": customer["payment_methods"][0], "off_session": True})
    assert (paid.status, paid.amount_paid, paid.amount_remaining, paid.attempt_count, paid.attempted) == ("paid", 5000, 0, 1, True)
    assert paid.status_transitions.paid_at >= paid.status_transitions.finalized_at
    [charge] = stripe_fake.billing.charges(invoice["id"])
    assert (charge["status"], charge["paid"], charge["captured"], charge["amount"]) == ("succeeded", True, True, 5000)
    assert charge["outcome"]["type"] == "authorized" and charge["payment_method_details"]["card"]["brand"] == "visa"
    txn = stripe_fake.billing.balance_transaction(charge["balance_transaction"])
    # $50.00: 2.9 % = 145 ¢, + 30 ¢
    assert (txn["amount"], txn["fee"], txn["net"], txn["source"], txn["type"]) == (5000, 175, 4825, charge["id"], "charge")
    assert txn["fee_details"] == [
        {"amount": 175, "application": None, "currency": "usd", "description": "Stripe processing fees", "type": "stripe_fee"}
    ]
    intent = stripe_fake.billing.payment_intent(charge["payment_intent"])
    assert (intent["status"], intent["amount_received"], intent["latest_charge"]) == ("succeeded", 5000, charge["id"])


def test_fee_rounds_half_up():
    assert stripe_fee(500, "usd") == 45  # 14.5 ¢ → 15 ¢, + 30 ¢
    assert stripe_fee(1000, "usd") == 59  # 29 ¢ + 30 ¢
    assert stripe_fee(1517, "usd") == 74  # 43.993 → 44, + 30
    assert stripe_fee(1000, "eur") == 54  # the fixed fee is the currency's


def test_pay_without_payment_method_uses_the_invoice_default_then_the_customer_default(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4000000000009995", "4242424242424242"), default=0)
    declining, good = customer["payment_methods"]
    invoice = stripe_fake.billing.add_invoice(customer["id"], 1200)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True})  # the customer's default declines
    # an invoice's own default wins over the customer's
    draft = stripe_client.v1.invoices.create({"customer": customer["id"], "default_payment_method": good})
    stripe_client.v1.invoice_items.create({"customer": customer["id"], "amount": 700, "currency": "usd", "invoice": draft.id})
    stripe_client.v1.invoices.finalize_invoice(draft.id)
    assert stripe_client.v1.invoices.pay(draft.id).status == "paid"
    assert [c["payment_method"] for c in stripe_fake.billing.charges()] == [declining, good]


def test_pay_refuses_a_payment_method_of_another_customer(stripe_fake, stripe_client):
    customer, invoice = open_invoice(stripe_fake)
    other = stripe_fake.billing.add_customer()
    for pm in (other["payment_methods"][0], "pm_nope"):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            stripe_client.v1.invoices.pay(invoice["id"], {"payment_method": pm})
        assert exc.value.http_status == 400 and exc.value.param == "payment_method"
    nobody = stripe_fake.billing.add_customer(cards=(), default=None)
    orphan = stripe_fake.billing.add_invoice(nobody["id"], 900)
    with pytest.raises(stripe.InvalidRequestError) as no_method:
        stripe_client.v1.invoices.pay(orphan["id"])
    assert "no attached payment source or default payment method" in no_method.value.user_message
    assert stripe_fake.billing.charges() == [] and stripe_fake.billing.invoice(invoice["id"])["attempt_count"] == 0


def test_attempt_count_follows_stripes_retry_schedule(stripe_fake, stripe_client):
    """Stripe: the first attempt makes attempt_count 1; later manual pays do not raise it, only
    Stripe's automatic retries do. Every attempt is a charge."""
    customer, invoice = open_invoice(stripe_fake, "4000000000009995")
    assert (invoice["attempt_count"], invoice["attempted"]) == (0, False)
    for _ in range(3):
        with pytest.raises(stripe.CardError):
            stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True})
    assert stripe_client.v1.invoices.retrieve(invoice["id"]).attempt_count == 1
    assert stripe_fake.billing.customer(customer["id"])["delinquent"] is False  # manual failures leave it
    charge = stripe_fake.billing.automatic_attempt(invoice["id"])
    assert charge["status"] == "failed"
    assert stripe_fake.billing.invoice(invoice["id"])["attempt_count"] == 2
    assert stripe_fake.billing.customer(customer["id"])["delinquent"] is True
    assert len(stripe_fake.billing.charges(invoice["id"])) == 4
    good = stripe_fake.billing.add_card(customer["id"], "4242424242424242")
    paid = stripe_client.v1.invoices.pay(invoice["id"], {"payment_method": good["id"], "off_session": True})
    assert (paid.status, paid.attempt_count) == ("paid", 2)
    assert stripe_client.v1.customers.retrieve(customer["id"]).delinquent is False
    assert [c["status"] for c in stripe_fake.billing.charges(invoice["id"])] == ["failed"] * 4 + ["succeeded"]


# -- idempotency -------------------------------------------------------------------------------


def test_replayed_decline_does_not_charge_again(stripe_fake, stripe_client):
    _, invoice = open_invoice(stripe_fake, "4000000000009995")
    key = {"idempotency_key": f"pmfin:dunning:{invoice['id']}:attempt-1"}
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as exc:
            stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True}, key)
        errors.append(exc.value)
    assert errors[0].error.charge == errors[1].error.charge and errors[1].error.decline_code == "insufficient_funds"
    assert len(stripe_fake.billing.charges(invoice["id"])) == 1
    posts = stripe_fake.requests_to("POST", f"/v1/invoices/{invoice['id']}/pay")
    assert [(r.status, r.replayed) for r in posts] == [(402, False), (402, True)]
    # a new key is a new attempt
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True}, {"idempotency_key": "pmfin:attempt-2"})
    assert len(stripe_fake.billing.charges(invoice["id"])) == 2


def test_replayed_success_does_not_charge_again(stripe_fake, stripe_client):
    _, invoice = open_invoice(stripe_fake)
    key = {"idempotency_key": f"pmfin:pay:{invoice['id']}"}
    first = stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True}, key)
    second = stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True}, key)
    assert first.status == second.status == "paid" and first.to_dict() == second.to_dict()
    assert len(stripe_fake.billing.charges(invoice["id"])) == 1
    with pytest.raises(stripe.InvalidRequestError) as again:  # without the key: Stripe's answer
        stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True})
    assert again.value.user_message == "Invoice is already paid"


# -- invoice states ----------------------------------------------------------------------------


def test_state_errors(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    paid = stripe_fake.billing.add_invoice(customer["id"], 1000, status="paid")
    void = stripe_fake.billing.add_invoice(customer["id"], 1000, status="void")
    cases = [
        (lambda: stripe_client.v1.invoices.pay(paid["id"]), "Invoice is already paid"),
        (lambda: stripe_client.v1.invoices.pay(void["id"]), "Voided invoices cannot be paid."),
        (lambda: stripe_client.v1.invoices.void_invoice(paid["id"]), "You can only void open or uncollectible invoices"),
        (lambda: stripe_client.v1.invoices.finalize_invoice(paid["id"]), "already finalized"),
        (lambda: stripe_client.v1.invoices.mark_uncollectible(void["id"]), "You can only mark open invoices"),
    ]
    for call, message in cases:
        with pytest.raises(stripe.InvalidRequestError) as exc:
            call()
        assert exc.value.http_status == 400 and message in exc.value.user_message
    assert len(stripe_fake.billing.charges()) == 1  # the paid invoice's own


def test_void_and_uncollectible(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    invoice = stripe_fake.billing.add_invoice(customer["id"], 3000)
    voided = stripe_client.v1.invoices.void_invoice(invoice["id"], {"expand": ["payments"]})
    assert voided.status == "void" and voided.status_transitions.voided_at
    assert voided.payments.data[0].status == "canceled" and voided.payments.data[0].status_transitions.canceled_at
    intent = stripe_fake.billing.payment_intent(voided.payments.data[0].payment.payment_intent)
    assert (intent["status"], intent["cancellation_reason"]) == ("canceled", "void_invoice")

    bad_debt = stripe_fake.billing.add_invoice(customer["id"], 4000)
    marked = stripe_client.v1.invoices.mark_uncollectible(bad_debt["id"])
    assert marked.status == "uncollectible" and marked.status_transitions.marked_uncollectible_at
    paid = stripe_client.v1.invoices.pay(bad_debt["id"], {"off_session": True})  # Stripe allows it
    assert (paid.status, paid.amount_paid) == ("paid", 4000)
    still_void = stripe_fake.billing.add_invoice(customer["id"], 10, status="uncollectible")
    assert stripe_client.v1.invoices.void_invoice(still_void["id"]).status == "void"


# -- creating and finalizing invoices ----------------------------------------------------------


def test_invoice_items_become_lines_and_finalize_numbers_the_invoice(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(email="acme@tenant.example")
    items = [
        stripe_client.v1.invoice_items.create(
            {"customer": customer["id"], "amount": amount, "currency": "usd", "description": text}
        )
        for amount, text in ((4900, "Pro plan, May"), (1250, "Extra inboxes"))
    ]
    assert items[0].object == "invoiceitem" and items[0].invoice is None
    excluded = stripe_client.v1.invoices.create({"customer": customer["id"]})  # Stripe's default: exclude
    assert excluded.lines.data == [] and excluded.total == 0
    draft = stripe_client.v1.invoices.create(
        {"customer": customer["id"], "collection_method": "charge_automatically", "auto_advance": False,
         "pending_invoice_items_behavior": "include", "description": "May", "metadata": {"tenant_id": "t9"}}
    )
    assert (draft.status, draft.number, draft.hosted_invoice_url, draft.invoice_pdf) == ("draft", None, None, None)
    assert [(ln.amount, ln.description) for ln in draft.lines.data] == [(4900, "Pro plan, May"), (1250, "Extra inboxes")]
    assert draft.lines.data[0].parent.invoice_item_details.invoice_item == items[0].id
    assert (draft.subtotal, draft.total, draft.amount_due, draft.amount_remaining) == (6150, 6150, 6150, 6150)
    assert draft.metadata["tenant_id"] == "t9" and draft.customer_email == "acme@tenant.example"
    fixture_keys = set(load_fixtures()["invoice"]) - {"subscription"}  # gone from invoices since 2025-03-31
    assert fixture_keys <= set(draft.to_dict()) and "subscription" not in draft and "payments" not in draft
    assert stripe_client.v1.invoices.create({"customer": customer["id"], "pending_invoice_items_behavior": "include"}).lines.data == []

    final = stripe_client.v1.invoices.finalize_invoice(draft.id)
    assert final.status == "open" and final.status_transitions.finalized_at
    assert final.number == f"{customer['invoice_prefix']}-0001"
    assert re.fullmatch(r"https://invoice\.stripe\.com/i/acct_\w+/test_[\w-]+\?s=ap", final.hosted_invoice_url)
    assert final.invoice_pdf == f"{stripe_fake.url}/invoice/{draft.id}/pdf"
    [payment] = stripe_client.v1.invoices.retrieve(draft.id, {"expand": ["payments"]}).payments.data
    assert (payment.status, payment.amount_requested, payment.amount_paid) == ("open", 6150, None)
    assert payment.payment.type == "payment_intent" and payment.payment.payment_intent.startswith("pi_")
    second = stripe_fake.billing.add_invoice(customer["id"], 100)
    assert second["number"] == f"{customer['invoice_prefix']}-0002"


def test_invoice_lines_list(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    invoice = stripe_fake.billing.add_invoice(customer["id"], 1200, lines=[100] * 12)
    got = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert len(got.lines.data) == 10 and got.lines.has_more is True  # Stripe embeds the first lines only
    lines = list(stripe_client.v1.invoices.line_items.list(invoice["id"], {"limit": 5}).auto_paging_iter())
    assert [ln.id for ln in lines] == [ln["id"] for ln in invoice["lines"]["data"]]


def test_zero_invoice_is_paid_at_finalization(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    draft = stripe_client.v1.invoices.create({"customer": customer["id"]})
    final = stripe_client.v1.invoices.finalize_invoice(draft.id, {"expand": ["payments"]})
    assert (final.status, final.amount_due, final.payments.data) == ("paid", 0, [])


def test_create_invoice_validation(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.invoices.create({"collection_method": "charge_automatically"})
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "customer")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.invoices.create({"customer": "cus_nope"})
    assert (unknown.value.code, unknown.value.param) == ("resource_missing", "customer")
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.create({"customer": customer["id"], "days_until_due": 30})  # charge_automatically
    sent = stripe_client.v1.invoices.create({"customer": customer["id"], "collection_method": "send_invoice", "days_until_due": 14})
    assert sent.due_date == sent.created + 14 * 86400


# -- listing -----------------------------------------------------------------------------------


def test_list_invoices_filters(stripe_fake, stripe_client):
    a, b = stripe_fake.billing.add_customer(), stripe_fake.billing.add_customer()
    day = 86400
    t0 = 1_767_225_600  # 2026-01-01
    made = {
        "a_open_old": stripe_fake.billing.add_invoice(a["id"], 100, created=t0),
        "a_paid": stripe_fake.billing.add_invoice(a["id"], 200, status="paid", created=t0 + day),
        "a_open_sub": stripe_fake.billing.add_invoice(a["id"], 300, created=t0 + 2 * day, subscription="sub_1Xyz"),
        "b_void": stripe_fake.billing.add_invoice(b["id"], 400, status="void", created=t0 + 3 * day),
        "b_draft": stripe_fake.billing.add_invoice(b["id"], 500, status="draft", created=t0 + 4 * day),
        "b_uncollectible": stripe_fake.billing.add_invoice(b["id"], 600, status="uncollectible", created=t0 + 5 * day),
    }
    ids = {name: inv["id"] for name, inv in made.items()}

    def listed(**params):
        return [i.id for i in stripe_client.v1.invoices.list(params).auto_paging_iter()]

    assert listed() == [ids[n] for n in ("b_uncollectible", "b_draft", "b_void", "a_open_sub", "a_paid", "a_open_old")]
    assert listed(customer=a["id"]) == [ids["a_open_sub"], ids["a_paid"], ids["a_open_old"]]
    assert listed(status="open") == [ids["a_open_sub"], ids["a_open_old"]]
    assert listed(customer=a["id"], status="paid") == [ids["a_paid"]]
    assert listed(status="void") == [ids["b_void"]] and listed(status="draft") == [ids["b_draft"]]
    assert listed(status="uncollectible") == [ids["b_uncollectible"]]
    assert listed(created={"gte": t0 + day, "lt": t0 + 3 * day}) == [ids["a_open_sub"], ids["a_paid"]]
    assert listed(created={"gt": t0 + 4 * day}) == [ids["b_uncollectible"]]
    assert listed(created={"lte": t0}) == [ids["a_open_old"]] and listed(created=t0 + day) == [ids["a_paid"]]
    assert listed(subscription="sub_1Xyz") == [ids["a_open_sub"]]
    sub_invoice = stripe_client.v1.invoices.retrieve(ids["a_open_sub"])
    assert sub_invoice.parent.subscription_details.subscription == "sub_1Xyz"
    with pytest.raises(stripe.InvalidRequestError) as bad:
        stripe_client.v1.invoices.list({"status": "overdue"})
    assert bad.value.param == "status"
    page = stripe_client.v1.invoices.list({"limit": 2, "starting_after": ids["b_draft"]})
    assert [i.id for i in page.data] == [ids["b_void"], ids["a_open_sub"]] and page.has_more is True


def test_auto_paging_over_more_than_100_invoices(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    t0 = 1_767_225_600
    ids = [stripe_fake.billing.add_invoice(customer["id"], 100 + i, created=t0 + i)["id"] for i in range(150)]
    stripe_fake.billing.add_invoice(customer["id"], 99, status="paid", created=t0 + 1000)
    got = [i.id for i in stripe_client.v1.invoices.list({"status": "open", "limit": 100}).auto_paging_iter()]
    assert got == ids[::-1]
    gets = stripe_fake.requests_to("GET", "/v1/invoices")
    assert len(gets) == 2 and gets[1].params["starting_after"] == ids[::-1][99] and gets[1].params["status"] == "open"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.list({"limit": 101})


def test_expand_payments(stripe_fake, stripe_client):
    customer, invoice = open_invoice(stripe_fake, amount=2200)
    plain = stripe_client.v1.invoices.retrieve(invoice["id"])
    assert "payments" not in plain and "charge" not in plain and "payment_intent" not in plain
    stripe_client.v1.invoices.pay(invoice["id"], {"off_session": True})
    full = stripe_client.v1.invoices.retrieve(invoice["id"], {"expand": ["payments"]})
    [payment] = full.payments.data
    assert payment.object == "invoice_payment" and payment.invoice == invoice["id"] and payment.is_default
    assert (payment.status, payment.amount_requested, payment.amount_paid) == ("paid", 2200, 2200)
    assert payment.status_transitions.paid_at == full.status_transitions.paid_at
    deep = stripe_client.v1.invoices.retrieve(
        invoice["id"], {"expand": ["payments.data.payment.payment_intent.latest_charge"]}
    )
    intent = deep.payments.data[0].payment.payment_intent
    assert intent.object == "payment_intent" and intent.status == "succeeded"
    assert intent.latest_charge.object == "charge" and intent.latest_charge.payment_method_details.card.last4 == "4242"
    listed = stripe_client.v1.invoices.list({"customer": customer["id"], "expand": ["data.payments"]})
    assert listed.data[0].payments.data[0].status == "paid"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.retrieve(invoice["id"], {"expand": ["currency"]})
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.list({"expand": ["payments"]})  # a list expands data.…


# -- the PDF -----------------------------------------------------------------------------------


def test_invoice_pdf_is_a_real_pdf_served_over_http(stripe_fake, stripe_client):
    _, invoice = open_invoice(stripe_fake, amount=12345)
    response = requests.get(invoice["invoice_pdf"], timeout=5)  # no API key: a file link
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert f"Invoice {invoice['number']}".encode() in pdf and b"123.45 USD" in pdf
    # the cross-reference table points at each object
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref")
    offsets = [int(m.group(1)) for m in re.finditer(rb"(\d{10}) 00000 n", pdf[startxref:])]
    assert offsets and all(pdf[o:].startswith(b"%d 0 obj" % (n + 1)) for n, o in enumerate(offsets))
    length = int(re.search(rb"/Length (\d+)", pdf).group(1))
    stream = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[stream + length :].startswith(b"endstream")
    draft = stripe_fake.billing.add_invoice(invoice["customer"], 100, status="draft")
    assert requests.get(f"{stripe_fake.url}/invoice/{draft['id']}/pdf", timeout=5).status_code == 404
    assert stripe_fake.requests_to("GET", rf"/invoice/{invoice['id']}/pdf")[0].status == 200
    stripe_fake.inject("status", status=503, path=r"/invoice/.*/pdf")  # faults apply to files too
    assert requests.get(invoice["invoice_pdf"], timeout=5).status_code == 503
    assert requests.get(invoice["invoice_pdf"], timeout=5).status_code == 200


# -- the spec check ----------------------------------------------------------------------------


def test_misspelled_billing_params_are_refused(stripe_fake, stripe_client):
    _, invoice = open_invoice(stripe_fake)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.invoices.pay(invoice["id"], {"paymentmethod": "pm_x"})  # type: ignore[typeddict-unknown-key]
    for path, body in (
        ("/v1/invoices", "customer=cus_x&pending_invoice_items_behaviour=include"),
        ("/v1/customers", "email=a@b.example&invoice_settings[default_paymentmethod]=pm_x"),
        ("/v1/invoiceitems", "customer=cus_x&amount=100&curency=usd"),
    ):
        response = raw_post(stripe_fake, path, body)
        assert response.status_code == 400 and "unknown parameter" in response.json()["error"]["message"], path
    assert len(stripe_fake.spec_errors) == 4 and all("unknown parameter" in e for e in stripe_fake.spec_errors)
    assert stripe_fake.billing.charges() == []
    stripe_fake.spec_errors.clear()  # expected here; otherwise the fixture fails the test


def test_newer_billing_params_pass(stripe_fake, stripe_client):
    """Parameters newer than the 2022 spec that the SDK knows are warnings, not errors."""
    customer = stripe_client.v1.customers.create({"email": "n@tenant.example", "business_name": "Acme Ltd"})
    assert customer.business_name == "Acme Ltd"
    assert any("'business_name'" in w for w in stripe_fake.spec_warnings) and stripe_fake.spec_errors == []


# -- the helpers -------------------------------------------------------------------------------


def test_helpers_put_objects_straight_into_the_store(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(
        email="h@tenant.example", name="H", cards=("4242424242424242", "4000000000009995", "5555555555554444"), default=1,
        metadata={"tenant_id": "t7"},
    )
    assert stripe_fake.requests == []  # nothing went over HTTP
    pms = [stripe_fake.billing.payment_method(pm) for pm in customer["payment_methods"]]
    assert [pm["card"]["last4"] for pm in pms] == ["4242", "9995", "4444"]
    assert pms[0]["created"] < pms[1]["created"] < pms[2]["created"] and all(pm["customer"] == customer["id"] for pm in pms)
    assert customer["invoice_settings"]["default_payment_method"] == customer["payment_methods"][1]
    assert (pms[0]["card"]["exp_month"], pms[0]["card"]["exp_year"]) == (12, 2030)
    assert stripe_fake.billing.add_customer(default=None)["invoice_settings"]["default_payment_method"] is None
    card = stripe_fake.billing.add_card(customer["id"], "378282246310005", exp_month=3, exp_year=2031, make_default=True)
    assert (card["card"]["brand"], card["card"]["exp_year"]) == ("amex", 2031)
    assert stripe_fake.billing.customer(customer["id"])["invoice_settings"]["default_payment_method"] == card["id"]
    # copies: changing a result changes nothing in the fake
    card["customer"] = None
    assert stripe_client.v1.payment_methods.retrieve(card["id"]).customer == customer["id"]


@pytest.mark.parametrize("status", ["draft", "open", "paid", "void", "uncollectible"])
def test_add_invoice_in_every_state(stripe_fake, stripe_client, status):
    customer = stripe_fake.billing.add_customer()
    created = 1_767_225_600
    invoice = stripe_fake.billing.add_invoice(customer["id"], 11900, tax=1900, created=created, status=status, attempt_count=2)
    got = stripe_client.v1.invoices.retrieve(invoice["id"], {"expand": ["payments"]})
    assert got.status == status and got.created == created
    assert (got.subtotal, got.total, got.total_excluding_tax, got.amount_due) == (10000, 11900, 10000, 11900)
    assert [ln.amount for ln in got.lines.data] == [10000] and got.total_taxes[0].amount == 1900
    assert got.lines.data[0].taxes[0].amount == 1900
    assert got.attempt_count == 2 and got.attempted
    if status == "draft":
        assert (got.number, got.invoice_pdf, got.hosted_invoice_url, got.payments.data) == (None, None, None, [])
        return
    assert got.number == f"{customer['invoice_prefix']}-0001" and got.status_transitions.finalized_at == created
    assert got.invoice_pdf and got.hosted_invoice_url
    [payment] = got.payments.data
    assert payment.amount_requested == 11900
    expected = {
        "open": ("open", 0, 11900, None),
        "paid": ("paid", 11900, 0, created),
        "void": ("canceled", 0, 11900, None),
        "uncollectible": ("open", 0, 11900, None),
    }[status]
    assert (payment.status, got.amount_paid, got.amount_remaining, got.status_transitions.paid_at) == expected
    charges = stripe_fake.billing.charges(invoice["id"])
    assert [c["status"] for c in charges] == (["succeeded"] if status == "paid" else [])


def test_add_invoice_lines_and_numbers(stripe_fake):
    customer = stripe_fake.billing.add_customer()
    invoice = stripe_fake.billing.add_invoice(
        customer["id"], 1100, tax=100, lines=[{"amount": 600, "description": "Seats"}, 400], number="PM-2026-0007", currency="eur"
    )
    assert [(ln["amount"], ln["description"]) for ln in invoice["lines"]["data"]] == [(600, "Seats"), (400, "Line 2")]
    assert sum(t["amount"] for ln in invoice["lines"]["data"] for t in ln["taxes"]) == 100
    assert (invoice["number"], invoice["currency"]) == ("PM-2026-0007", "eur")
    with pytest.raises(ValueError):
        stripe_fake.billing.add_invoice(customer["id"], 1000, lines=[100, 200])


def test_pay_elsewhere_void_uncollectible_helpers(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4000000000000002",))
    invoice = stripe_fake.billing.add_invoice(customer["id"], 2500)
    paid = stripe_fake.billing.pay_elsewhere(invoice["id"])
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 2500, 0)
    assert paid["payments"]["data"][0]["status"] == "paid"
    [charge] = stripe_fake.billing.charges(invoice["id"])
    assert charge["status"] == "succeeded" and charge["payment_method"] not in customer["payment_methods"]
    assert stripe_client.v1.invoices.retrieve(invoice["id"]).status == "paid"
    other = stripe_fake.billing.add_invoice(customer["id"], 100)
    assert stripe_fake.billing.void(other["id"])["status"] == "void"
    third = stripe_fake.billing.add_invoice(customer["id"], 100)
    assert stripe_fake.billing.mark_uncollectible(third["id"])["status"] == "uncollectible"
    all_charges = stripe_fake.billing.charges()
    assert [c["id"] for c in all_charges] == [charge["id"]]
    assert stripe_fake.requests_to("POST") == []


def test_charges_are_listed_oldest_first(stripe_fake, stripe_client):
    customer, first = open_invoice(stripe_fake, "4000000000009995")
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(first["id"])
    second = stripe_fake.billing.add_invoice(customer["id"], 700, status="paid", created=1_700_000_000)
    later = stripe_fake.billing.add_card(customer["id"], "4242424242424242")
    stripe_client.v1.invoices.pay(first["id"], {"payment_method": later["id"]})
    statuses = [(c["payment_intent"], c["status"]) for c in stripe_fake.billing.charges()]
    assert statuses[0][1] == "succeeded" and statuses[0][0] == stripe_fake.billing.charges(second["id"])[0]["payment_intent"]
    assert [s for _, s in statuses[1:]] == ["failed", "succeeded"]


def test_reset_forgets_billing(stripe_fake):
    customer, invoice = open_invoice(stripe_fake)
    stripe_fake.reset()
    assert stripe_fake.billing.charges() == []
    with pytest.raises(Exception):
        stripe_fake.billing.customer(customer["id"])
    with pytest.raises(Exception):
        stripe_fake.billing.invoice(invoice["id"])


def test_billing_objects_belong_to_their_account(stripe_fake, stripe_client):
    """A connected account (Stripe-Account) has its own customers and invoices."""
    customer = stripe_fake.billing.add_customer()
    account = stripe_fake.accounts.add()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.customers.retrieve(customer["id"], options={"stripe_account": account["id"]})
    assert exc.value.http_status == 404
    theirs = stripe_client.v1.customers.create({"email": "c@connected.example"}, {"stripe_account": account["id"]})
    assert [c.id for c in stripe_client.v1.customers.list(options={"stripe_account": account["id"]}).data] == [theirs.id]
    assert [c.id for c in stripe_client.v1.customers.list().data] == [customer["id"]]
