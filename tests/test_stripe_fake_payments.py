"""The Stripe fake's payments: charges (Connect destination charges and invoice charges), balance
transactions with Stripe's fee, transfers, application fees, refunds, disputes with evidence and
file uploads, and the test helpers ``fake.payments`` / ``fake.uploads`` — through the real SDK over
real HTTP.

These pin down the Stripe behaviour pmfin's reconciliation and dispute code is tested against.
"""

from __future__ import annotations

import io

import pytest
import requests
import stripe

from stripe_fake.env import TEST_KEY
from stripe_fake.resources.billing import stripe_fee
from stripe_fake.spec import load_fixtures

T0 = 1_767_225_600  # 2026-01-01 00:00:00 UTC
DAY = 86400


def raw(fake, method: str, path: str, body: str = ""):
    return requests.request(
        method, fake.url + path, data=body or None, timeout=5,
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/x-www-form-urlencoded"},
    )


def ids(items) -> list[str]:
    return [o.id if hasattr(o, "id") else o["id"] for o in items]


# -- the money model ---------------------------------------------------------------------------


def test_destination_charge_of_100_dollars(stripe_fake, stripe_client):
    """DESIGN.md §4: of $100.00 the tenant nets $77.00 (Stripe transfers $100.00 and takes the
    $23.00 application fee back), Stripe's fee is $3.20 (2.9 % = $2.90, + 30 ¢), the platform keeps
    $23.00 − $3.20 = $19.80."""
    tenant = stripe_fake.accounts.add()["id"]
    made = stripe_fake.payments.add_charge(10000, destination=tenant, application_fee_amount=2300, created=T0,
                                           metadata={"tenant_id": "t1"}, description="Campaign credits")
    assert stripe_fake.requests == []  # a helper: nothing over HTTP
    charge = stripe_client.v1.charges.retrieve(made["id"], {"expand": ["balance_transaction", "transfer", "application_fee"]})
    assert (charge.amount, charge.currency, charge.status, charge.paid, charge.created) == (10000, "usd", "succeeded", True, T0)
    assert charge.transfer_data.destination == tenant and charge.transfer_data.amount is None
    assert charge.application_fee_amount == 2300 and charge.metadata["tenant_id"] == "t1"
    txn = charge.balance_transaction
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.source) == (10000, 320, 9680, "charge", charge.id)
    assert [d.to_dict() for d in txn.fee_details] == [
        {"amount": 320, "application": None, "currency": "usd", "description": "Stripe processing fees", "type": "stripe_fee"}
    ]
    transfer = charge.transfer
    assert (transfer.amount, transfer.destination, transfer.source_transaction) == (10000, tenant, charge.id)
    assert transfer.destination_payment.startswith("py_") and transfer.transfer_group == charge.transfer_group
    fee = charge.application_fee
    assert (fee.amount, fee.account, fee.originating_transaction) == (2300, tenant, charge.id)
    assert fee.charge == transfer.destination_payment  # the fee is taken from the payment on the connected account
    # the connected account's side: $100.00 in, the $23.00 application fee out, $77.00 net
    payment = stripe_client.v1.charges.retrieve(transfer.destination_payment, {"expand": ["balance_transaction"]},
                                                {"stripe_account": tenant})
    theirs = payment.balance_transaction
    assert (payment.amount, payment.source_transfer, theirs.amount, theirs.fee, theirs.net) == (10000, transfer.id, 10000, 2300, 7700)
    assert theirs.fee_details[0].type == "application_fee"
    # the platform: +$100.00 − $3.20, −$100.00 transferred, +$23.00 earned = $19.80
    platform = [stripe_client.v1.balance_transactions.retrieve(t) for t in (txn.id, transfer.balance_transaction, fee.balance_transaction)]
    assert [(t.type, t.net) for t in platform] == [("charge", 9680), ("transfer", -10000), ("application_fee", 2300)]
    assert sum(t.net for t in platform) == 1980
    # every object carries the fixture's keys
    fixtures = load_fixtures()
    assert set(fixtures["charge"]) <= set(charge.to_dict()) | {"refunds"}
    for kind, obj in (("transfer", transfer), ("application_fee", fee), ("balance_transaction", txn)):
        assert set(fixtures[kind]) <= set(obj.to_dict()), kind
    # the helper's result is the charge with those objects as made
    assert (made["balance_transaction"]["fee"], made["transfer"]["id"], made["application_fee"]["id"]) == (320, transfer.id, fee.id)


def test_transfer_amount_is_a_net_transfer_without_application_fee(stripe_fake, stripe_client):
    tenant = stripe_fake.accounts.add()["id"]
    made = stripe_fake.payments.add_charge(10000, destination=tenant, transfer_amount=7700)
    assert made["application_fee"] is None and made["application_fee_amount"] is None
    assert (made["transfer"]["amount"], made["transfer_data"]) == (7700, {"amount": 7700, "destination": tenant})
    payment = stripe_fake.payments.destination_payment(made["transfer"]["destination_payment"], tenant)
    assert stripe_fake.payments.balance_transaction(payment["balance_transaction"], account=tenant)["net"] == 7700
    with pytest.raises(ValueError, match="application_fee_amount together with transfer_data"):
        stripe_fake.payments.add_charge(10000, destination=tenant, transfer_amount=7700, application_fee_amount=2300)
    with pytest.raises(ValueError, match="fake.accounts.add"):
        stripe_fake.payments.add_charge(10000, destination="acct_1nobodyhere0000")


def test_transfer_destination_plants_a_transfer_to_another_account(stripe_fake, stripe_client):
    tenant, other = stripe_fake.accounts.add()["id"], stripe_fake.accounts.add()["id"]
    made = stripe_fake.payments.add_charge(5000, destination=tenant, application_fee_amount=1150, transfer_destination=other)
    charge = stripe_client.v1.charges.retrieve(made["id"], {"expand": ["transfer"]})
    assert charge.transfer_data.destination == tenant and charge.transfer.destination == other
    assert stripe_fake.payments.application_fee(made["application_fee"]["id"])["account"] == other


# $1,000,000.01 cannot be charged at Stripe (amounts have at most eight digits: $999,999.99); its
# fee is checked on the fee function, the largest possible charge through the SDK.
FEES = [
    # amount, currency, fee: 2.9 % rounded half up to the minor unit, + the fixed fee
    (50, "usd", 31),  # 1.45 ¢ → 1 ¢, + 30 ¢
    (99, "usd", 33),  # 2.871 ¢ → 3 ¢, + 30 ¢
    (500, "usd", 45),  # 14.5 ¢ → 15 ¢ (half up), + 30 ¢
    (99_999_999, "usd", 2_900_030),  # $999,999.99: 2,899,999.971 ¢ → 2,900,000 ¢, + 30 ¢
    (2000, "eur", 83),  # 58 c, + 25 c
    (50, "eur", 26),  # 1.45 c → 1 c, + 25 c
    (500, "jpy", 65),  # ¥14.5 → ¥15 (whole yen), + ¥50
    (1000, "jpy", 79),  # ¥29, + ¥50
]


@pytest.mark.parametrize("amount, currency, fee", FEES)
def test_fee_on_each_charge_follows_stripes_rounding(stripe_fake, stripe_client, amount, currency, fee):
    made = stripe_fake.payments.add_charge(amount, currency=currency)
    txn = stripe_client.v1.charges.retrieve(made["id"], {"expand": ["balance_transaction"]}).balance_transaction
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (amount, fee, amount - fee, currency)
    assert txn.fee_details[0].amount == fee


def test_fee_of_a_million_dollars_and_a_cent_and_stripes_amount_limits(stripe_fake):
    assert stripe_fee(100_000_001, "usd") == 2_900_030  # 2,900,000.029 ¢ → 2,900,000 ¢, + 30 ¢
    with pytest.raises(ValueError, match="at most eight digits"):
        stripe_fake.payments.add_charge(100_000_001)
    with pytest.raises(ValueError, match="minimum"):
        stripe_fake.payments.add_charge(49)


def test_fee_override_for_an_international_card(stripe_fake, stripe_client):
    made = stripe_fake.payments.add_charge(
        10000, fee=470, fee_details=[{"amount": 320}, {"amount": 150, "description": "International card fee"}]
    )
    txn = stripe_client.v1.balance_transactions.retrieve(made["balance_transaction"]["id"])
    assert (txn.fee, txn.net) == (470, 9530)
    assert [(d.amount, d.type, d.description) for d in txn.fee_details] == [
        (320, "stripe_fee", "Stripe processing fees"), (150, "stripe_fee", "International card fee")
    ]
    assert stripe_fake.payments.add_charge(10000, fee=400)["balance_transaction"]["fee_details"][0]["amount"] == 400
    with pytest.raises(ValueError, match="sum to"):
        stripe_fake.payments.add_charge(10000, fee=471, fee_details=[{"amount": 470}])


def test_failed_charge(stripe_fake, stripe_client):
    tenant = stripe_fake.accounts.add()["id"]
    made = stripe_fake.payments.add_charge(2500, destination=tenant, application_fee_amount=575, status="failed")
    charge = stripe_client.v1.charges.retrieve(made["id"])
    assert (charge.status, charge.paid, charge.failure_code, charge.balance_transaction, charge.transfer) == (
        "failed", False, "card_declined", None, None
    )
    intent = stripe_client.v1.payment_intents.retrieve(charge.payment_intent)
    assert intent.status == "requires_payment_method" and intent.last_payment_error.charge == charge.id


def test_charge_of_a_customer_uses_its_default_card(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer(cards=("5555555555554444",))
    made = stripe_fake.payments.add_charge(1200, customer=customer["id"])
    assert made["payment_method"] == customer["payment_methods"][0] and made["customer"] == customer["id"]
    assert made["payment_method_details"]["card"]["brand"] == "mastercard"


# -- listing -----------------------------------------------------------------------------------


def test_list_by_created_range_across_page_boundaries(stripe_fake, stripe_client):
    # 250 charges, one a minute from T0; plus one each side of the range
    made = [stripe_fake.payments.add_charge(1000 + i, created=T0 + 60 * i)["id"] for i in range(250)]
    newest_first = made[::-1]
    window = {"gte": T0, "lt": T0 + 60 * 250}
    got = stripe_client.v1.charges.list({"created": window, "limit": 100}).auto_paging_iter()
    assert ids(got) == newest_first
    gets = stripe_fake.requests_to("GET", "/v1/charges")
    assert len(gets) == 3 and [g.params.get("starting_after") for g in gets] == [None, newest_first[99], newest_first[199]]
    # gt/lte, and an equal `created`
    assert ids(stripe_client.v1.charges.list({"created": {"gt": T0 + 60 * 10, "lte": T0 + 60 * 12}}).data) == [made[12], made[11]]
    assert ids(stripe_client.v1.charges.list({"created": T0 + 60 * 7}).data) == [made[7]]
    # a page boundary inside the range, and has_more at its end
    page = stripe_client.v1.charges.list({"created": {"gte": T0 + 60 * 100, "lt": T0 + 60 * 200}, "limit": 100})
    assert ids(page.data) == newest_first[50:150] and page.has_more is False
    page = stripe_client.v1.charges.list({"created": {"gte": T0 + 60 * 100, "lt": T0 + 60 * 200}, "limit": 99})
    assert ids(page.data) == newest_first[50:149] and page.has_more is True
    # a cursor outside the range still places the page; ending_before walks towards newer charges
    after = stripe_client.v1.charges.list({"created": {"lt": T0 + 60 * 5}, "starting_after": made[200], "limit": 3})
    assert ids(after.data) == [made[4], made[3], made[2]]
    before = stripe_client.v1.charges.list({"ending_before": made[10], "limit": 3})
    assert ids(before.data) == [made[13], made[12], made[11]] and before.has_more is True
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.charges.list({"starting_after": "ch_1gone"})
    assert (unknown.value.code, unknown.value.param) == ("resource_missing", "starting_after")


def test_list_expands_balance_transaction_and_transfer(stripe_fake, stripe_client):
    tenant = stripe_fake.accounts.add()["id"]
    connect = stripe_fake.payments.add_charge(10000, destination=tenant, application_fee_amount=2300, created=T0 + 10)
    plain = stripe_fake.payments.add_charge(700, created=T0 + 20)
    customer = stripe_fake.billing.add_customer()
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900, status="paid", created=T0 + 30)  # a charge too
    listed = stripe_client.v1.charges.list(
        {"created": {"gte": T0, "lt": T0 + DAY}, "limit": 100, "expand": ["data.balance_transaction", "data.transfer"]}
    )
    [paid, mine, theirs] = listed.data
    assert paid.id == stripe_fake.billing.charges(invoice["id"])[0]["id"] and paid.description == "Payment for Invoice"
    assert (paid.balance_transaction.fee, paid.transfer) == (stripe_fee(4900, "usd"), None)
    assert (mine.id, mine.balance_transaction.fee, mine.transfer) == (plain["id"], 50, None)  # 20.3 ¢ → 20 ¢, + 30 ¢
    assert (theirs.id, theirs.balance_transaction.fee, theirs.transfer.destination) == (connect["id"], 320, tenant)
    assert all("refunds" not in c for c in listed.data)  # not included since API 2022-11-15
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.charges.list({"expand": ["transfer"]})  # a list expands data.…


def test_list_filters(stripe_fake, stripe_client):
    customer = stripe_fake.billing.add_customer()
    first = stripe_fake.payments.add_charge(1000, customer=customer["id"], created=T0)
    stripe_fake.payments.add_charge(2000, created=T0 + 1)
    second = stripe_fake.payments.add_charge(3000, customer=customer["id"], created=T0 + 2)
    assert ids(stripe_client.v1.charges.list({"customer": customer["id"]}).data) == [second["id"], first["id"]]
    assert ids(stripe_client.v1.charges.list({"payment_intent": first["payment_intent"]}).data) == [first["id"]]
    tenant = stripe_fake.accounts.add()["id"]
    connect = stripe_fake.payments.add_charge(5000, destination=tenant, application_fee_amount=1150)
    assert ids(stripe_client.v1.transfers.list({"destination": tenant}).data) == [connect["transfer"]["id"]]
    assert ids(stripe_client.v1.application_fees.list({"charge": connect["id"]}).data) == [connect["application_fee"]["id"]]
    assert ids(stripe_client.v1.balance_transactions.list({"type": "application_fee"}).data) == [
        connect["application_fee"]["balance_transaction"]
    ]
    assert len(stripe_client.v1.balance_transactions.list({"limit": 100}).data) == 6  # 4 charges, a transfer, a fee


def test_ten_thousand_charges_page_without_scanning(stripe_fake):
    """The list is answered from the sorted index: each page looks at no more objects than it
    returns (+1 with a filter), however many charges the store holds."""
    for i in range(10_000):
        stripe_fake.payments.add_charge(1000, created=T0 + i)
    store = stripe_fake.store
    store.examined = 0
    seen, after, pages = [], None, 0
    while True:
        query = f"/v1/charges?created[gte]={T0 + 100}&created[lt]={T0 + 10_000}&limit=100"
        page = raw(stripe_fake, "GET", query + (f"&starting_after={after}" if after else "")).json()
        pages += 1
        seen += [c["created"] for c in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert seen == list(range(T0 + 9_999, T0 + 99, -1)) and pages == 99
    assert store.examined == 9_900  # exactly the charges returned: no scan, no reversed copies
    store.examined = 0
    customer_page = raw(stripe_fake, "GET", f"/v1/charges?limit=100&payment_intent={stripe_fake.payments.charges()[5]['payment_intent']}")
    assert len(customer_page.json()["data"]) == 1
    assert store.examined == 10_000  # a filter without an index scans (as a sparse filter must)
    store.examined = 0
    raw(stripe_fake, "GET", f"/v1/charges?limit=100&starting_after={after}&created[gte]={T0}")
    assert store.examined == 100


# -- refunds -----------------------------------------------------------------------------------


def test_refunds(stripe_fake, stripe_client):
    tenant = stripe_fake.accounts.add()["id"]
    made = stripe_fake.payments.add_charge(10000, destination=tenant, application_fee_amount=2300)
    first = stripe_fake.payments.refund(made["id"], 2500, reason="requested_by_customer")
    charge = stripe_client.v1.charges.retrieve(made["id"])
    assert (charge.amount_refunded, charge.refunded) == (2500, False) and "refunds" not in charge
    assert (first["amount"], first["status"], first["charge"], first["reason"]) == (2500, "succeeded", made["id"], "requested_by_customer")
    txn = stripe_client.v1.balance_transactions.retrieve(first["balance_transaction"])
    assert (txn.type, txn.amount, txn.fee, txn.net, txn.source) == ("refund", -2500, 0, -2500, first["id"])
    rest = stripe_fake.payments.refund(made["id"])  # what is left
    full = stripe_client.v1.charges.retrieve(made["id"], {"expand": ["refunds"]})
    assert (full.amount_refunded, full.refunded, rest["amount"]) == (10000, True, 7500)
    assert ids(full.refunds.data) == [rest["id"], first["id"]]
    assert ids(stripe_client.v1.refunds.list({"charge": made["id"]}).data) == [rest["id"], first["id"]]
    assert stripe_client.v1.refunds.retrieve(first["id"]).amount == 2500
    # Stripe keeps its fee; the transfer is not reversed by default
    assert stripe_fake.payments.balance_transaction(made["balance_transaction"]["id"])["fee"] == 320
    assert stripe_fake.payments.transfer(made["transfer"]["id"])["amount_reversed"] == 0
    with pytest.raises(ValueError, match="already been refunded"):
        stripe_fake.payments.refund(made["id"])
    other = stripe_fake.payments.add_charge(1000)
    with pytest.raises(ValueError, match="greater than unrefunded amount"):
        stripe_fake.payments.refund(other["id"], 1001)


# -- disputes ----------------------------------------------------------------------------------


def pdf_upload(client, purpose: str = "dispute_evidence", data: bytes = b"%PDF-1.4\n% service agreement\n%%EOF\n"):
    return client.v1.files.create({"file": io.BytesIO(data), "purpose": purpose})


def test_dispute_is_listed_and_moves_money(stripe_fake, stripe_client):
    made = stripe_fake.payments.add_charge(10000, created=T0)
    dispute = stripe_fake.payments.add_dispute(made["id"], created=T0 + 5 * DAY)
    assert (dispute["amount"], dispute["reason"], dispute["status"], dispute["charge"]) == (10000, "fraudulent", "needs_response", made["id"])
    assert dispute["payment_intent"] == made["payment_intent"]
    assert dispute["evidence_details"]["due_by"] == T0 + 13 * DAY - 1  # the end of the 7th day after
    charge = stripe_client.v1.charges.retrieve(made["id"])
    assert charge.disputed is True
    # a chargeback withdraws the amount and the $15.00 dispute fee
    [withdrawal] = dispute["balance_transactions"]
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"], withdrawal["type"]) == (-10000, 1500, -11500, "adjustment")
    listed = stripe_client.v1.disputes.list({"created": {"gte": T0, "lt": T0 + 30 * DAY}, "expand": ["data.charge"]})
    [got] = listed.data
    assert got.id == dispute["id"] and got.charge.id == made["id"] and got.charge.amount == 10000
    assert set(load_fixtures()["dispute"]) <= set(got.to_dict())
    assert stripe_client.v1.disputes.list({"created": {"gte": T0 + 6 * DAY}}).data == []
    assert ids(stripe_client.v1.disputes.list({"charge": made["id"]}).data) == [dispute["id"]]
    assert ids(stripe_client.v1.disputes.list({"payment_intent": made["payment_intent"]}).data) == [dispute["id"]]
    with pytest.raises(ValueError, match="charged back"):
        stripe_fake.payments.refund(made["id"])
    with pytest.raises(ValueError, match="already disputed"):
        stripe_fake.payments.add_dispute(made["id"])
    won = stripe_fake.payments.close_dispute(dispute["id"], "won")
    assert won["status"] == "won" and [t["amount"] for t in won["balance_transactions"]] == [-10000, 10000]


def test_stage_then_submit_evidence(stripe_fake, stripe_client):
    made = stripe_fake.payments.add_charge(4900)
    dispute = stripe_fake.payments.add_dispute(made["id"], reason="product_not_received")
    agreement = pdf_upload(stripe_client)
    assert (agreement.purpose, agreement.type, agreement.object) == ("dispute_evidence", "pdf", "file")
    staged = stripe_client.v1.disputes.update(dispute["id"], {
        "evidence": {
            "service_documentation": agreement.id,
            "access_activity_log": "2026-01-03T10:00:00Z login 203.0.113.7; 1,204 emails sent",
            "uncategorized_text": "Plan Professional, $49.00/month, since 2025-06-01",
            "product_description": "Cold-email sending platform",
            "customer_email_address": "owner@tenant.example",
            "service_date": "2026-01-01",
        },
        "submit": False,
        "metadata": {"pmfin_case": "42"},
    })
    assert staged.status == "needs_response" and staged.evidence.service_documentation == agreement.id
    assert staged.evidence.customer_email_address == "owner@tenant.example" and staged.metadata["pmfin_case"] == "42"
    assert (staged.evidence_details.has_evidence, staged.evidence_details.submission_count) == (True, 0)
    # staged evidence can change before it is submitted; '' clears a field
    again = stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"service_date": ""}, "submit": False})
    assert again.evidence.service_date is None and again.evidence.product_description == "Cold-email sending platform"
    submitted = stripe_client.v1.disputes.update(dispute["id"], {"submit": True})
    assert submitted.status == "under_review" and submitted.evidence_details.submission_count == 1
    assert submitted.evidence_details.past_due is False
    assert stripe_fake.payments.dispute(dispute["id"])["evidence"]["uncategorized_text"].startswith("Plan Professional")
    # not awaiting a response any more: evidence is refused, metadata is not
    for params in ({"evidence": {"uncategorized_text": "more"}, "submit": False}, {"submit": True}):
        with pytest.raises(stripe.InvalidRequestError) as late:
            stripe_client.v1.disputes.update(dispute["id"], params)
        assert late.value.http_status == 400 and "under_review" in late.value.user_message
    assert stripe_client.v1.disputes.update(dispute["id"], {"metadata": {"note": "x"}}).metadata["note"] == "x"
    lost = stripe_fake.payments.close_dispute(dispute["id"], "lost")
    assert lost["status"] == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"uncategorized_text": "too late"}})


def test_evidence_without_submit_is_submitted_as_stripe_does(stripe_fake, stripe_client):
    """``submit`` defaults to true: evidence sent without it goes to the bank at once."""
    dispute = stripe_fake.payments.add_dispute(stripe_fake.payments.add_charge(1000)["id"])
    got = stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"uncategorized_text": "see the log"}})
    assert (got.status, got.evidence_details.submission_count) == ("under_review", 1)


def test_inquiry_and_accepting_a_dispute(stripe_fake, stripe_client):
    inquiry = stripe_fake.payments.add_dispute(stripe_fake.payments.add_charge(1000)["id"], status="warning_needs_response",
                                               reason="general")
    assert inquiry["balance_transactions"] == [] and inquiry["is_charge_refundable"] is True  # no money moves
    got = stripe_client.v1.disputes.update(inquiry["id"], {"evidence": {"uncategorized_text": "delivered"}, "submit": True})
    assert got.status == "warning_under_review"
    assert stripe_fake.payments.close_dispute(inquiry["id"], "warning_closed")["status"] == "warning_closed"
    chargeback = stripe_fake.payments.add_dispute(stripe_fake.payments.add_charge(2000)["id"])
    assert stripe_client.v1.disputes.close(chargeback["id"]).status == "lost"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.close(chargeback["id"])
    with pytest.raises(ValueError, match="already closed"):
        stripe_fake.payments.close_dispute(chargeback["id"], "won")


def test_evidence_documents_must_be_uploaded_files(stripe_fake, stripe_client):
    dispute = stripe_fake.payments.add_dispute(stripe_fake.payments.add_charge(1000)["id"])
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"service_documentation": "Signed contract"}, "submit": False})
    assert (missing.value.code, missing.value.param) == ("resource_missing", "evidence[service_documentation]")
    identity = pdf_upload(stripe_client, purpose="identity_document")
    with pytest.raises(stripe.InvalidRequestError) as wrong_purpose:
        stripe_client.v1.disputes.update(dispute["id"], {"evidence": {"customer_communication": identity.id}, "submit": False})
    assert "dispute_evidence" in wrong_purpose.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as not_a_pdf:
        pdf_upload(stripe_client, data=b"plain text is not accepted as evidence")
    assert not_a_pdf.value.param == "file"
    png = pdf_upload(stripe_client, data=b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    assert png.type == "png" and stripe_fake.uploads.contents(png.id).startswith(b"\x89PNG")
    assert stripe_client.v1.files.retrieve(png.id).size == 40
    assert stripe_fake.payments.dispute(dispute["id"])["evidence"]["service_documentation"] is None


def test_misspelled_params_are_refused(stripe_fake, stripe_client):
    dispute = stripe_fake.payments.add_dispute(stripe_fake.payments.add_charge(1000)["id"])
    for method, path, body in (
        ("GET", "/v1/charges?created[gte]=1&expnd[0]=data.transfer", ""),
        ("GET", "/v1/charges?created[gtee]=1", ""),
        ("POST", f"/v1/disputes/{dispute['id']}", "evidence[servce_documentation]=x&submit=false"),
        ("POST", f"/v1/disputes/{dispute['id']}", "sumbit=true"),
    ):
        response = raw(stripe_fake, method, path, body)
        assert response.status_code == 400, path
    assert len(stripe_fake.spec_errors) == 4
    assert stripe_fake.payments.dispute(dispute["id"])["status"] == "needs_response"
    stripe_fake.spec_errors.clear()  # expected here; otherwise the fixture fails the test


def test_reset_forgets_payments(stripe_fake):
    made = stripe_fake.payments.add_charge(1000)
    stripe_fake.reset()
    assert stripe_fake.payments.charges() == []
    with pytest.raises(Exception):
        stripe_fake.payments.charge(made["id"])
