"""The Stripe fake's events: every state change — through the API or a test helper — is an event;
``GET /v1/events`` lists them newest first (created range, type/types, both cursors, 30 days) and
``fake.events`` signs webhook deliveries that the SDK's own verification accepts. Through the real
SDK over real HTTP.
"""

from __future__ import annotations

import json
import time

import pytest
import stripe

from stripe_fake.objects import now
from stripe_fake.spec import load_fixtures

SECRET = "whsec_pmfinTEST0000000000000000000000"


def types(events) -> list[str]:
    return [e["type"] if isinstance(e, dict) else e.type for e in events]


def listed(client, **params) -> list:
    return list(client.v1.events.list({"limit": 100, **params}).auto_paging_iter())


# -- what records events -----------------------------------------------------------------------


def test_a_customer_and_an_invoice_paid_on_the_second_try(stripe_fake, stripe_client):
    customer = stripe_client.v1.customers.create({"email": "owner@tenant.example"})
    bad = stripe_client.v1.payment_methods.attach("pm_card_chargeCustomerFail", {"customer": customer.id})
    update = stripe_client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": bad.id}},
                                               {"idempotency_key": "pmfin:default-card:1"})
    stripe_client.v1.invoice_items.create({"customer": customer.id, "amount": 4900, "currency": "usd"})
    invoice = stripe_client.v1.invoices.create({"customer": customer.id, "pending_invoice_items_behavior": "include"})
    stripe_client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.CardError):
        stripe_client.v1.invoices.pay(invoice.id, {"off_session": True})
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    stripe_client.v1.invoices.pay(invoice.id, {"payment_method": good.id})

    events = listed(stripe_client)
    assert types(reversed(events)) == [
        "customer.created", "payment_method.attached", "customer.updated", "invoiceitem.created", "invoice.created",
        "invoice.finalized", "charge.failed", "payment_intent.payment_failed", "invoice.payment_failed",
        "payment_method.attached", "charge.succeeded", "payment_intent.succeeded", "invoice.paid",
        "invoice.payment_succeeded",
    ]
    by_type = {e.type: e for e in events}  # the newest of each type
    updated = by_type["customer.updated"]
    assert updated.data.object.invoice_settings.default_payment_method == bad.id
    assert updated.data.previous_attributes.to_dict() == {"invoice_settings": {"default_payment_method": None}}
    # request: the API request that caused it — the Request-Id its answer carried — and its key
    assert updated.request.id == update.last_response.request_id and updated.request.idempotency_key == "pmfin:default-card:1"
    failed = by_type["invoice.payment_failed"]
    assert (failed.data.object.id, failed.data.object.status, failed.data.object.attempt_count) == (invoice.id, "open", 1)
    assert "previous_attributes" not in failed.data
    paid = by_type["invoice.paid"]
    assert (paid.data.object.status, paid.data.object.amount_paid) == ("paid", 4900)
    charge = by_type["charge.succeeded"].data.object
    assert charge.amount == 4900 and "refunds" not in charge  # as the API renders a charge
    event = by_type["invoice.finalized"]
    assert (event.object, event.livemode, event.pending_webhooks, event.api_version) == ("event", False, 0, stripe.api_version)
    assert "account" not in event and set(load_fixtures()["event"]) <= set(event.to_dict())
    assert stripe_client.v1.events.retrieve(event.id).data.object.number == event.data.object.number


def test_events_of_helpers_are_automatic_and_a_replay_records_nothing(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("4242424242424242", "5555555555554444"))
    assert types(reversed(stripe_fake.events.all())) == ["customer.created", "payment_method.attached", "payment_method.attached"]
    created = stripe_fake.events.all("customer.created")[0]
    assert created["request"] == {"id": None, "idempotency_key": None}
    assert created["data"]["object"]["invoice_settings"]["default_payment_method"] == customer["payment_methods"][0]
    invoice = stripe_fake.billing.add_invoice(customer["id"], 1500)
    key = {"idempotency_key": f"pmfin:void:{invoice['id']}"}
    before = len(stripe_fake.events.all())
    stripe_client.v1.invoices.void_invoice(invoice["id"], {}, key)
    stripe_client.v1.invoices.void_invoice(invoice["id"], {}, key)  # replayed: no second event
    assert types(stripe_fake.events.all()[: len(stripe_fake.events.all()) - before]) == ["invoice.voided", "payment_intent.canceled"]
    other = stripe_fake.billing.add_invoice(customer["id"], 900)
    stripe_fake.billing.automatic_attempt(other["id"], customer["payment_methods"][0])
    third = stripe_fake.billing.add_invoice(customer["id"], 700)
    stripe_fake.billing.mark_uncollectible(third["id"])
    assert [e["data"]["object"]["id"] for e in stripe_fake.events.all("invoice.paid")] == [other["id"]]
    assert [e["data"]["object"]["id"] for e in stripe_fake.events.all("invoice.marked_uncollectible")] == [third["id"]]
    assert types(stripe_fake.events.all("invoice.p*")) == ["invoice.payment_succeeded", "invoice.paid"]


def test_detaching_the_default_card(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    [pm] = customer["payment_methods"]
    stripe_client.v1.payment_methods.detach(pm)
    updated, detached = stripe_fake.events.all()[:2]
    assert detached["type"] == "payment_method.detached" and detached["data"]["previous_attributes"] == {"customer": customer["id"]}
    assert updated["type"] == "customer.updated"
    assert updated["data"]["previous_attributes"] == {"invoice_settings": {"default_payment_method": pm}}


def test_refund_and_dispute_events(stripe_fake, stripe_client):
    made = stripe_fake.payments.add_charge(10000)
    stripe_fake.payments.refund(made["id"], 2500)
    refunded = stripe_fake.events.all("charge.refunded")[0]
    assert refunded["data"]["object"]["amount_refunded"] == 2500
    assert refunded["data"]["previous_attributes"] == {"amount_refunded": 0}
    other = stripe_fake.payments.add_charge(5000)
    dispute = stripe_fake.payments.add_dispute(other["id"])
    stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"uncategorized_text": "used daily"}, "submit": True})
    stripe_fake.payments.close_dispute(dispute["id"], "won")
    assert types(stripe_fake.events.all("charge.dispute.*"))[::-1] == [
        "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.updated",
        "charge.dispute.funds_reinstated", "charge.dispute.closed",
    ]
    updated = stripe_fake.events.all("charge.dispute.updated")[0]
    previous = updated["data"]["previous_attributes"]
    assert previous["status"] == "needs_response" and previous["evidence"] == {"uncategorized_text": None}
    assert previous["evidence_details"]["submission_count"] == 0 and updated["request"]["id"].startswith("req_")
    assert stripe_fake.events.all("charge.dispute.closed")[0]["data"]["object"]["status"] == "won"


def test_connect_events_belong_to_the_connected_account(stripe_fake, stripe_client):
    account = stripe_fake.accounts.add()
    stripe_fake.accounts.onboard(account["id"])
    assert types(listed(stripe_client)) == []  # not the platform's own events
    theirs = list(stripe_client.v1.events.list({"limit": 100}, {"stripe_account": account["id"]}).auto_paging_iter())
    assert sorted(types(theirs)) == ["account.updated", "capability.updated", "capability.updated"]
    updated = next(e for e in theirs if e.type == "account.updated")
    assert updated.account == account["id"] and updated.data.object.charges_enabled is True
    assert updated.data.previous_attributes.charges_enabled is False
    assert updated.data.previous_attributes.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    capability = next(e for e in theirs if e.type == "capability.updated").data
    assert (capability.object.object, capability.object.status, capability.object.account) == ("capability", "active", account["id"])
    assert capability.previous_attributes.to_dict() == {"status": "inactive"}
    stripe_client.v1.accounts.update(account["id"], {"metadata": {"tenant_id": "t1"}})
    newest = stripe_client.v1.events.list({"limit": 1}, {"stripe_account": account["id"]}).data[0]
    assert newest.type == "account.updated" and newest.data.previous_attributes.to_dict() == {"metadata": {"tenant_id": None}}
    assert newest.request.id is not None
    assert [e["account"] for e in stripe_fake.events.all("capability.updated")] == [account["id"]] * 2


def test_subscription_change_events(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    pro = stripe_fake.subscriptions.add_price(4900, product_name="Professional")
    ent = stripe_fake.subscriptions.add_price(9900, product_name="Enterprise")
    start = now() - 10 * 86400
    sub = stripe_fake.subscriptions.add(customer["id"], pro["id"], current_period_start=start)
    item = sub["items"]["data"][0]["id"]
    stripe_client.v1.subscriptions.update(sub["id"], {"items": [{"id": item, "price": ent["id"]}],
                                                      "proration_behavior": "always_invoice"})
    [change] = stripe_fake.events.all("customer.subscription.updated")  # one per change, as it ended up
    assert change["data"]["object"]["items"]["data"][0]["price"]["id"] == ent["id"]
    assert change["data"]["previous_attributes"]["items"]["data"][0]["price"]["id"] == pro["id"]  # a changed list, whole
    invoice = change["data"]["object"]["latest_invoice"]
    assert invoice and change["data"]["previous_attributes"]["latest_invoice"] is None
    assert [e["data"]["object"]["id"] for e in stripe_fake.events.all("invoice.paid")] == [invoice]
    after = types(stripe_fake.events.all())
    assert types(stripe_fake.events.all("customer.subscription.created")) == ["customer.subscription.created"]
    assert stripe_client.v1.invoices.create_preview({"subscription": sub["id"]}).id.startswith("upcoming_in")
    assert types(stripe_fake.events.all()) == after  # a preview records nothing


# -- listing -----------------------------------------------------------------------------------


def test_list_created_ranges_cursors_and_types(stripe_fake, stripe_client):
    t = now() - 3600
    made = [stripe_fake.events.emit(f"test.kind{i % 3}", {"id": f"obj_{i}", "object": "thing"}, created=t + i) for i in range(30)]
    ids = [e["id"] for e in made]
    assert [e.id for e in listed(stripe_client)] == ids[::-1]
    assert [e.id for e in listed(stripe_client, created={"gte": t + 10, "lt": t + 13})] == ids[12:9:-1]
    assert [e.id for e in listed(stripe_client, created={"gt": t + 27})] == ids[:27:-1]
    assert [e.id for e in listed(stripe_client, type="test.kind1")] == ids[1::3][::-1]
    assert [e.id for e in listed(stripe_client, type="test.*", created={"lte": t + 1})] == [ids[1], ids[0]]
    assert [e.id for e in listed(stripe_client, types=["test.kind0", "test.kind2"], created={"lt": t + 6})] == [ids[5], ids[3], ids[2], ids[0]]
    page = stripe_client.v1.events.list({"limit": 5, "starting_after": ids[20]})
    assert [e.id for e in page.data] == ids[19:14:-1] and page.has_more
    # ending_before walks towards newer events: a sync from a stored cursor, oldest first
    cursor, seen = ids[24], []
    while True:
        newer = stripe_client.v1.events.list({"limit": 2, "ending_before": cursor})
        if not newer.data:
            break
        seen += [e.id for e in reversed(newer.data)]
        cursor = newer.data[0].id
    assert seen == ids[25:]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.events.list({"type": "test.kind0", "types": ["test.kind1"]})
    with pytest.raises(stripe.InvalidRequestError) as many:
        stripe_client.v1.events.list({"types": [f"t.{i}" for i in range(21)]})
    assert many.value.param == "types"
    assert stripe_client.v1.events.list({"delivery_success": False}).data == []


def test_events_are_kept_thirty_days(stripe_fake, stripe_client):
    old = stripe_fake.events.emit("test.old", {"id": "obj_1", "object": "thing"}, created=now() - 31 * 86400)
    kept = stripe_fake.events.emit("test.kept", {"id": "obj_2", "object": "thing"}, created=now() - 29 * 86400)
    assert [e.id for e in listed(stripe_client)] == [kept["id"]]
    with pytest.raises(stripe.InvalidRequestError) as gone:
        stripe_client.v1.events.retrieve(old["id"])
    assert gone.value.http_status == 404
    assert stripe_client.v1.events.retrieve(kept["id"]).type == "test.kept"
    # a cursor older than the window lists what is still kept
    assert [e.id for e in stripe_client.v1.events.list({"ending_before": old["id"]}).data] == [kept["id"]]
    assert [e["id"] for e in stripe_fake.events.all()] == [kept["id"], old["id"]]  # the helper sees all


# -- webhook deliveries ------------------------------------------------------------------------


def test_signed_delivery_passes_the_sdks_own_verification(stripe_fake):
    stripe_fake.billing.add_customer()
    event = stripe_fake.events.all("customer.created")[0]
    body, headers = stripe_fake.events.signed_delivery(event, SECRET)
    verified = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
    assert verified.id == event["id"] and verified.type == "customer.created"
    assert json.loads(body) == event and headers["Content-Type"].startswith("application/json")
    timestamp, signature = headers["Stripe-Signature"].split(",")
    assert timestamp.startswith("t=") and abs(int(timestamp[2:]) - time.time()) < 5 and signature.startswith("v1=")
    for bad_body, header, secret in (
        (body.replace(b"customer.created", b"customer.deleted"), headers["Stripe-Signature"], SECRET),  # tampered
        (body, headers["Stripe-Signature"], "whsec_other"),  # another secret
        (body, stripe_fake.events.signed_delivery(event, SECRET, timestamp=int(time.time()) - 301)[1]["Stripe-Signature"], SECRET),
    ):
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(bad_body, header, secret)
    by_id, _ = stripe_fake.events.signed_delivery(event["id"], SECRET, timestamp=1_767_225_600)
    assert json.loads(by_id)["id"] == event["id"]


def test_emit_records_an_event_about_any_object(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    event = stripe_fake.events.emit("customer.updated", {**customer, "email": "new@tenant.example"},
                                    previous_attributes={"email": customer["email"]})
    got = stripe_client.v1.events.retrieve(event["id"])
    assert (got.type, got.data.object.email, got.data.previous_attributes.email) == (
        "customer.updated", "new@tenant.example", customer["email"]
    )
    assert got.request.id is None and stripe_fake.events.get(event["id"]) == event
    stripe_fake.reset()
    assert stripe_fake.events.all() == []
