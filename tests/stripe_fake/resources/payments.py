"""Payments: charges — Connect destination charges and the billing part's invoice charges alike —
with their balance transactions, transfers, application fees, refunds and disputes.
``Payments`` is the engine the HTTP handlers (here and in ``disputes.py``) and the test helpers
(``fake.payments``, ``payments_helpers.py``) share.

Stripe's money model, as kept here (API 2026-10-28; DESIGN.md §4):

- A destination charge is made on the platform: ``transfer_data.destination`` names the connected
  account, ``application_fee_amount`` the platform's share. Its balance transaction (on the
  platform) has ``fee`` = Stripe's processing fee — 2.9 % rounded half up plus the currency's fixed
  fee (``billing.stripe_fee``) — with ``fee_details`` [{type: stripe_fee}], and ``net`` = amount − fee.
- Stripe then transfers the full amount (``transfer``: amount, destination, ``destination_payment``
  = the ``py_…`` payment on the connected account, ``source_transaction`` = the charge, and a
  ``transfer`` balance transaction of −amount on the platform) and takes the application fee back
  from the connected account: the ``py_`` payment's balance transaction there has fee =
  the application fee (fee_details [{type: application_fee}]). The ``application_fee`` object
  (``fee_…``, on the platform, with an ``application_fee`` balance transaction of +fee) names
  ``account`` = the connected account, ``charge`` = the ``py_`` payment the fee was taken from and
  ``originating_transaction`` = the platform's charge, as Stripe's docs define them.
- With ``transfer_data[amount]`` the transfer is that (already net) amount and there is no
  application fee; Stripe refuses both together.
- An amount is at least the currency's minimum charge (50 ¢ for usd) and at most eight digits
  (99,999,999 minor units: $999,999.99).
- A refund (``re_…``) adds to ``amount_refunded``; ``refunded`` once all is refunded; a refund
  balance transaction of −amount; Stripe keeps its processing fee; the transfer is not reversed
  (``reverse_transfer`` defaults to false). ``charge.refunds`` is listed only when expanded
  (API 2022-11-15+).
- A dispute (``dp_…``) sets ``disputed`` on its charge. A chargeback (any status but the
  ``warning_*`` inquiries) withdraws the amount plus Stripe's dispute fee (an ``adjustment``
  balance transaction, in ``dispute.balance_transactions``); a won chargeback reinstates the amount.
"""

from __future__ import annotations

import secrets

from .. import cards
from ..errors import invalid_request
from ..objects import expand_paths, from_fixture, json_copy, new_id, now
from ..server import FakeRequest
from . import ROUTES
from .billing import Billing, expand_list_paths, expand_of, format_amount

PLATFORM_APPLICATION = "ca_stripefakePenguinMailsPlatform0"  # the platform's Connect application
MAX_AMOUNT = 99_999_999  # eight digits
MIN_AMOUNT = {"usd": 50, "eur": 50, "gbp": 30, "jpy": 50, "cad": 50, "aud": 50, "nzd": 50, "chf": 50, "sgd": 50,
              "hkd": 400, "sek": 300, "nok": 300, "dkk": 250, "pln": 200, "czk": 1500, "mxn": 1000, "brl": 50, "inr": 50}
MIN_AMOUNT_DEFAULT = 50
DISPUTE_FEE = 1500  # $15.00 (¥1,500, €15.00, …): withdrawn with a chargeback
EVIDENCE_DAYS = 7  # evidence is due by the end of the 7th day after the dispute (UTC)

# Dispute statuses: inquiries (warning_*) withdraw nothing; a response is awaited in the first two.
AWAITING_RESPONSE = ("needs_response", "warning_needs_response")
DISPUTE_STATUSES = (
    "warning_needs_response", "warning_under_review", "warning_closed", "needs_response", "under_review", "won", "lost",
)
DISPUTE_REASONS = (
    "bank_cannot_process", "check_returned", "credit_not_processed", "customer_initiated", "debit_not_authorized",
    "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds", "noncompliant",
    "product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized",
)
VISA_REASON_CODES = {
    "fraudulent": "10.4", "duplicate": "12.6.1", "product_not_received": "13.1", "subscription_canceled": "13.2",
    "product_unacceptable": "13.3", "credit_not_processed": "13.6", "general": "13.7", "unrecognized": "10.4",
}
# Evidence fields that take the id of a file uploaded with purpose dispute_evidence; the rest are text.
EVIDENCE_FILES = frozenset(
    "cancellation_policy customer_communication customer_signature duplicate_charge_documentation receipt "
    "refund_policy service_documentation shipping_documentation uncategorized_file".split()
)
EVIDENCE_TEXT = frozenset(
    "access_activity_log billing_address cancellation_policy_disclosure cancellation_rebuttal customer_email_address "
    "customer_name customer_purchase_ip duplicate_charge_explanation duplicate_charge_id product_description "
    "refund_policy_disclosure refund_refusal_explanation service_date shipping_address shipping_carrier shipping_date "
    "shipping_tracking_number uncategorized_text".split()
)
EVIDENCE_MAX_CHARS = 150_000  # all text fields together
EVIDENCE_FIELD_MAX = {"access_activity_log": 20_000}


def check_amount(amount: int, currency: str, what: str = "amount") -> None:
    """Stripe's limits on a charge amount (ValueError: a test helper was asked for the impossible)."""
    minimum = MIN_AMOUNT.get(currency, MIN_AMOUNT_DEFAULT)
    if amount < minimum:
        raise ValueError(f"{what} must be at least {format_amount(minimum, currency)} (Stripe's minimum charge)")
    if amount > MAX_AMOUNT:
        raise ValueError(
            f"{what} must be no more than {format_amount(MAX_AMOUNT, currency)}: Stripe amounts have at most eight digits"
        )


def end_of_day(ts: int) -> int:
    return ts - ts % 86400 + 86399


class Payments(Billing):
    """Payment operations on one owner's objects (None: the platform)."""

    # -- charges -----------------------------------------------------------------------------
    def connect_charge(
        self,
        amount: int,
        *,
        currency: str = "usd",
        created: int | None = None,
        destination: str | None = None,
        application_fee_amount: int | None = None,
        transfer_amount: int | None = None,
        customer: str | None = None,
        status: str = "succeeded",
        fee: int | None = None,
        fee_details: list[dict] | None = None,
        transfer_destination: str | None = None,
        metadata: dict | None = None,
        description: str | None = None,
    ) -> dict:
        """A card charge made through a payment intent; with ``destination`` a destination charge
        (transfer, destination payment, application fee). Returns the stored charge."""
        currency = currency.lower()
        check_amount(amount, currency)
        if status not in ("succeeded", "failed"):
            raise ValueError(f"status must be succeeded or failed, not {status!r}")
        if (application_fee_amount is not None or transfer_amount is not None or transfer_destination) and not destination:
            raise ValueError("application_fee_amount, transfer_amount and transfer_destination need a destination")
        if application_fee_amount is not None and transfer_amount is not None:
            raise ValueError("Stripe refuses application_fee_amount together with transfer_data[amount]")
        for name, value in (("application_fee_amount", application_fee_amount), ("transfer_amount", transfer_amount)):
            if value is not None and not 0 <= value <= amount:
                raise ValueError(f"{name} must be between 0 and the amount ({amount})")
        for account in {destination, transfer_destination} - {None}:
            if self.store.get("account", account) is None:
                raise ValueError(f"no connected account {account!r}: make it first (fake.accounts.add())")
        ts = created if created is not None else now()
        cust = self.get("customer", customer) if customer else None
        pm, decline = self._payment_method(cust, failing=status == "failed", at=ts)
        transfer_data = {"amount": transfer_amount, "destination": destination} if destination else None
        intent = self.new_payment_intent(
            amount=amount, currency=currency, customer=customer, description=description, created=ts,
            application_fee_amount=application_fee_amount, transfer_data=transfer_data, metadata=metadata,
        )
        charge = self.new_charge(
            amount=amount, currency=currency, customer=customer, intent=intent, pm=pm, decline=decline, created=ts,
            description=description, metadata=metadata, fee=fee, fee_details=fee_details, receipt_kind="payment",
            emit=False,
        )
        charge.update(application_fee_amount=application_fee_amount, transfer_data=json_copy(transfer_data))
        intent.update(payment_method=pm["id"], latest_charge=charge["id"])
        if decline is not None:
            error = decline.error()
            error.update(charge=charge["id"], payment_method=json_copy(pm))
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.emit("charge.failed", charge, created=ts)
            self.emit("payment_intent.payment_failed", intent, created=ts)
            return charge
        intent.update(status="succeeded", amount_received=amount)
        if destination:
            self._transfer(charge, transfer_destination or destination, transfer_amount, application_fee_amount, ts)
        self.emit("charge.succeeded", charge, created=ts)
        self.emit("payment_intent.succeeded", intent, created=ts)
        if charge["transfer"]:
            self.emit("transfer.created", self.get("transfer", charge["transfer"]), created=ts)
        if charge["application_fee"]:
            self.emit("application_fee.created", self.get("application_fee", charge["application_fee"]), created=ts)
        return charge

    def _payment_method(self, customer: dict | None, *, failing: bool, at: int) -> tuple[dict, cards.Decline | None]:
        """The card a charge is made with: the customer's default when it behaves as asked, else a
        new unattached test card (as if typed in at checkout)."""
        if customer is not None and customer["invoice_settings"]["default_payment_method"]:
            pm = self.get("payment_method", customer["invoice_settings"]["default_payment_method"])
            decline = self.charge_decline(pm, at)
            if (decline is not None) == failing:
                return pm, decline
        number = "4000000000000002" if failing else "4242424242424242"
        pm = self.new_card(number, exp_month=12, exp_year=2030, created=at)
        return pm, cards.GENERIC if failing else None

    def _transfer(self, charge: dict, destination: str, transfer_amount: int | None, app_fee: int | None, ts: int) -> None:
        amount = transfer_amount if transfer_amount is not None else charge["amount"]
        currency = charge["currency"]
        transfer_id, payment_id = new_id("tr"), new_id("py")
        fee_id = new_id("fee") if app_fee is not None else None
        out = self.new_balance_transaction(
            amount=-amount, currency=currency, created=ts, description=None, source=transfer_id,
            type="transfer", reporting_category="transfer", settle_days=0,
        )
        self.put(
            from_fixture(
                "transfer",
                id=transfer_id,
                amount=amount,
                amount_reversed=0,
                balance_transaction=out["id"],
                created=ts,
                currency=currency,
                description=None,
                destination=destination,
                destination_payment=payment_id,
                livemode=False,
                metadata={},
                reversals={"object": "list", "data": [], "has_more": False, "total_count": 0,
                           "url": f"/v1/transfers/{transfer_id}/reversals"},
                reversed=False,
                source_transaction=charge["id"],
                source_type="card",
                transfer_group=charge["transfer_group"],
            )
        )
        # the payment on the connected account, less the application fee Stripe takes back
        theirs = Payments(self.fake, destination)
        fee_details = (
            [{"amount": app_fee, "application": PLATFORM_APPLICATION, "currency": currency,
              "description": "Application fee", "type": "application_fee"}]
            if app_fee else []
        )
        received = theirs.new_balance_transaction(
            amount=amount, currency=currency, created=ts, description=None, source=payment_id, type="payment",
            reporting_category="charge", fee_details=fee_details,
        )
        payment = from_fixture(
            "charge",
            id=payment_id,
            amount=amount,
            amount_captured=amount,
            amount_refunded=0,
            application=PLATFORM_APPLICATION,
            application_fee=fee_id,
            application_fee_amount=app_fee,
            balance_transaction=received["id"],
            billing_details={"address": dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state")),
                             "email": None, "name": None, "phone": None, "tax_id": None},
            calculated_statement_descriptor=None,
            captured=True,
            created=ts,
            currency=currency,
            customer=None,
            description=None,
            disputed=False,
            livemode=False,
            metadata={},
            outcome=None,
            paid=True,
            payment_intent=None,
            payment_method=None,
            payment_method_details={"stripe_account": {}, "type": "stripe_account"},
            receipt_url=None,
            refunded=False,
            refunds={"object": "list", "data": [], "has_more": False, "total_count": 0, "url": f"/v1/charges/{payment_id}/refunds"},
            shipping=None,
            source=None,
            source_transfer=transfer_id,
            status="succeeded",
            transfer=None,
            transfer_data=None,
            transfer_group=None,
        )
        theirs.put(payment)
        charge["transfer"] = transfer_id
        if fee_id is None:
            return
        earned = self.new_balance_transaction(
            amount=app_fee, currency=currency, created=ts, description=None, source=fee_id, type="application_fee",
            reporting_category="platform_earning",
        )
        self.put(
            from_fixture(
                "application_fee",
                id=fee_id,
                account=destination,
                amount=app_fee,
                amount_refunded=0,
                application=PLATFORM_APPLICATION,
                balance_transaction=earned["id"],
                charge=payment_id,
                created=ts,
                currency=currency,
                fee_source={"charge": payment_id, "type": "charge"},
                livemode=False,
                originating_transaction=charge["id"],
                refunded=False,
                refunds={"object": "list", "data": [], "has_more": False, "total_count": 0,
                         "url": f"/v1/application_fees/{fee_id}/refunds"},
            )
        )
        charge["application_fee"] = fee_id

    def render_charge(self, charge: dict, paths: list[str]) -> dict:
        """A charge as the API answers it: ``refunds`` only when expanded (API 2022-11-15+)."""
        out = json_copy(charge)
        if not any(p == "refunds" or p.startswith("refunds.") for p in paths):
            out.pop("refunds", None)
        expand_paths(out, paths, self.lookup)
        return out

    # -- refunds -----------------------------------------------------------------------------
    def refund(self, charge: dict, amount: int | None = None, *, created: int | None = None, reason: str | None = None,
               metadata: dict | None = None) -> dict:
        if charge["status"] != "succeeded":
            raise invalid_request(f"Charge {charge['id']} has not succeeded: there is nothing to refund.", param="charge")
        dispute = self.dispute_of(charge)
        if dispute is not None and not dispute["status"].startswith("warning_"):
            raise invalid_request(f"Charge {charge['id']} has been charged back; cannot issue a refund.", param="charge",
                                  code="charge_disputed")
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise invalid_request(f"Charge {charge['id']} has already been refunded.", param="charge",
                                  code="charge_already_refunded")
        amount = remaining if amount is None else amount
        currency = charge["currency"]
        if amount <= 0:
            raise invalid_request("Refund amount must be positive.", param="amount")
        if amount > remaining:
            raise invalid_request(
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded amount on charge "
                f"({format_amount(remaining, currency)})",
                param="amount",
            )
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid_request("Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer", param="reason")
        ts = created if created is not None else now()
        refund_id = new_id("re")
        txn = self.new_balance_transaction(
            amount=-amount, currency=currency, created=ts, description=f"REFUND FOR CHARGE ({charge['description'] or ''})".replace(" ()", ""),
            source=refund_id, type="refund", reporting_category="refund", settle_days=0,
        )
        refund = self.put(
            from_fixture(
                "refund",
                id=refund_id,
                amount=amount,
                balance_transaction=txn["id"],
                charge=charge["id"],
                created=ts,
                currency=currency,
                customer=charge["customer"],
                customer_account=None,
                destination_details={"card": {"reference": secrets.token_hex(6), "reference_status": "available",
                                              "reference_type": "acquirer_reference_number", "type": "refund"},
                                     "type": "card"},
                metadata=dict(metadata or {}),
                payment_intent=charge["payment_intent"],
                payment_method=charge["payment_method"],
                reason=reason,
                receipt_number=None,
                source_transfer_reversal=None,
                status="succeeded",
                transfer_reversal=None,
            )
        )
        before = json_copy(charge)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refunds = charge["refunds"]
        refunds["data"].insert(0, json_copy(refund))
        refunds["total_count"] = len(refunds["data"])
        self.emit("refund.created", refund, created=ts)
        self.emit("charge.refunded", charge, before, created=ts)
        return refund

    # -- disputes ----------------------------------------------------------------------------
    def dispute_of(self, charge: dict) -> dict | None:
        for dispute in self.store.all("dispute", self.owner):
            if dispute["charge"] == charge["id"]:
                return dispute
        return None

    def open_dispute(
        self,
        charge: dict,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        status: str = "needs_response",
        created: int | None = None,
        due_by: int | None = None,
    ) -> dict:
        if charge["status"] != "succeeded":
            raise ValueError(f"charge {charge['id']} did not succeed: it cannot be disputed")
        if self.dispute_of(charge) is not None:
            raise ValueError(f"charge {charge['id']} is already disputed (a charge has one dispute)")
        if status not in DISPUTE_STATUSES:
            raise ValueError(f"status must be one of {DISPUTE_STATUSES}, not {status!r}")
        if reason not in DISPUTE_REASONS:
            raise ValueError(f"reason must be one of {DISPUTE_REASONS}, not {reason!r}")
        amount = charge["amount"] if amount is None else amount
        if not 0 < amount <= charge["amount"]:
            raise ValueError(f"a dispute's amount is between 1 and the charge's amount ({charge['amount']})")
        ts = created if created is not None else now()
        inquiry = status.startswith("warning_")
        dispute_id = new_id("dp")
        card = charge["payment_method_details"].get("card") or {}
        evidence = {key: None for key in sorted(EVIDENCE_FILES | EVIDENCE_TEXT)}
        evidence["enhanced_evidence"] = {}
        dispute = from_fixture(
            "dispute",
            id=dispute_id,
            amount=amount,
            balance_transactions=[],
            charge=charge["id"],
            created=ts,
            currency=charge["currency"],
            enhanced_eligibility_types=[],
            evidence=evidence,
            evidence_details={
                "due_by": due_by if due_by is not None else end_of_day(ts + EVIDENCE_DAYS * 86400),
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
                "submission_method": "not_submitted",
            },
            intended_submission_method=None,
            is_charge_refundable=inquiry,
            livemode=False,
            metadata={},
            network_reason_code=VISA_REASON_CODES.get(reason),
            payment_intent=charge["payment_intent"],
            payment_method_details={
                "card": {"brand": card.get("brand", "visa"), "case_type": "inquiry" if inquiry else "chargeback",
                         "network_reason_code": VISA_REASON_CODES.get(reason), "network": card.get("network", "visa")},
                "type": "card",
            },
            reason=reason,
            status=status,
        )
        if not inquiry:
            self._dispute_money(dispute, -amount, DISPUTE_FEE, f"Chargeback withdrawal for {charge['id']}", ts)
        if status in ("under_review", "warning_under_review", "won", "lost"):
            dispute["evidence_details"].update(submission_count=1, submission_method="manual")
        if status == "won":
            self._dispute_money(dispute, amount, 0, f"Chargeback reversal for {charge['id']}", ts)
        charge["disputed"] = True
        self.put(dispute)
        self.emit("charge.dispute.created", dispute, created=ts)
        if dispute["balance_transactions"]:
            self.emit("charge.dispute.funds_withdrawn", dispute, created=ts)
        if status in ("won", "lost", "warning_closed"):
            self.emit("charge.dispute.closed", dispute, created=ts)
        return dispute

    def _dispute_money(self, dispute: dict, amount: int, fee: int, description: str, ts: int) -> None:
        details = [{"amount": fee, "application": None, "currency": dispute["currency"], "description": "Dispute fee",
                    "type": "stripe_fee"}] if fee else []
        txn = self.new_balance_transaction(
            amount=amount, currency=dispute["currency"], created=ts, description=description, source=dispute["id"],
            type="adjustment", reporting_category="dispute" if amount < 0 else "dispute_reversal", fee_details=details,
            settle_days=0,
        )
        dispute["balance_transactions"].append(json_copy(txn))

    def update_dispute(self, dispute: dict, params: dict) -> dict:
        """``POST /v1/disputes/{id}``: stage evidence (``submit=false``) or submit it (``submit``
        defaults to true when evidence is given, as at Stripe); ``metadata`` at any time."""
        evidence = params.get("evidence")
        if evidence is not None and not isinstance(evidence, dict):
            raise invalid_request("Invalid hash", param="evidence")
        submit = params.get("submit")
        if submit is not None and submit not in ("true", "false"):
            raise invalid_request(f"Invalid boolean: {submit}", param="submit")
        submitting = submit == "true" or (submit is None and bool(evidence))
        before = json_copy(dispute)
        if (evidence or submit is not None) and dispute["status"] not in AWAITING_RESPONSE:
            raise invalid_request(
                f"This dispute is {dispute['status']}: evidence can only be updated or submitted while the dispute "
                "awaits a response (needs_response or warning_needs_response).",
                param="evidence" if evidence else "submit",
            )
        if evidence:
            staged = dict(dispute["evidence"])
            for key, value in evidence.items():
                param = f"evidence[{key}]"
                if key not in EVIDENCE_FILES and key not in EVIDENCE_TEXT:
                    raise invalid_request(f"The Stripe fake does not implement {param}: add it under tests/stripe_fake/resources/.",
                                          param=param)
                if not isinstance(value, str):
                    raise invalid_request("Invalid string", param=param)
                if value and key in EVIDENCE_FILES:
                    upload = self.store.get("file", value, self.owner)
                    if upload is None:
                        raise invalid_request(f"No such file upload: '{value}'", param=param, code="resource_missing")
                    if upload["purpose"] != "dispute_evidence":
                        raise invalid_request(
                            f"The file {value} was uploaded with purpose '{upload['purpose']}'; dispute evidence needs "
                            "purpose 'dispute_evidence'.",
                            param=param,
                        )
                if len(value) > EVIDENCE_FIELD_MAX.get(key, EVIDENCE_MAX_CHARS):
                    raise invalid_request(f"{param} is too long.", param=param)
                staged[key] = value or None
            if sum(len(v) for k, v in staged.items() if k in EVIDENCE_TEXT and v) > EVIDENCE_MAX_CHARS:
                raise invalid_request(f"The evidence is longer than {EVIDENCE_MAX_CHARS:,} characters in all.", param="evidence")
            dispute["evidence"] = staged
        details = dispute["evidence_details"]
        details["has_evidence"] = any(v for k, v in dispute["evidence"].items() if k != "enhanced_evidence")
        if "metadata" in params:
            metadata = params["metadata"]
            if metadata == "":
                dispute["metadata"] = {}
            elif isinstance(metadata, dict):
                for key, value in metadata.items():
                    if value == "":
                        dispute["metadata"].pop(key, None)
                    else:
                        dispute["metadata"][key] = value
            else:
                raise invalid_request("Invalid hash", param="metadata")
        if submitting:
            ts = now()
            details.update(submission_count=details["submission_count"] + 1, submission_method="manual",
                           past_due=bool(details["due_by"]) and ts > details["due_by"])
            dispute["status"] = "warning_under_review" if dispute["status"].startswith("warning_") else "under_review"
        self.emit_if_changed("charge.dispute.updated", dispute, before)
        return dispute

    def accept_dispute(self, dispute: dict) -> dict:
        """``POST /v1/disputes/{id}/close``: no evidence, the dispute is given up (lost)."""
        if dispute["status"] not in AWAITING_RESPONSE:
            raise invalid_request(f"This dispute is {dispute['status']}: only a dispute awaiting a response can be closed.")
        before = json_copy(dispute)
        dispute["status"] = "warning_closed" if dispute["status"].startswith("warning_") else "lost"
        self.emit("charge.dispute.closed", dispute, before)
        return dispute

    def decide_dispute(self, dispute: dict, status: str, *, at: int | None = None) -> dict:
        """The card network's decision (a test helper): won or lost; an inquiry closes (warning_closed)."""
        inquiry = dispute["status"].startswith("warning_")
        if dispute["status"] in ("won", "lost", "warning_closed"):
            raise ValueError(f"dispute {dispute['id']} is already closed ({dispute['status']})")
        allowed = ("warning_closed",) if inquiry else ("won", "lost")
        if status not in allowed:
            raise ValueError(f"dispute {dispute['id']} is {'an inquiry' if inquiry else 'a chargeback'}: it closes as {' or '.join(allowed)}")
        ts = at if at is not None else now()
        before = json_copy(dispute)
        if status == "won":
            self._dispute_money(dispute, dispute["amount"], 0, f"Chargeback reversal for {dispute['charge']}", ts)
        dispute["status"] = status
        if status == "won":
            self.emit("charge.dispute.funds_reinstated", dispute, created=ts)
        self.emit("charge.dispute.closed", dispute, before, created=ts)
        return dispute

    def render(self, obj: dict, paths: list[str]) -> dict:
        out = json_copy(obj)
        expand_paths(out, paths, self.lookup)
        return out


def payments_for(req: FakeRequest) -> Payments:
    return Payments(req.fake, req.stripe_account)


def lister(object_type: str, url: str, filters: dict[str, str], *, render: str = "render"):
    """A ``GET`` list handler: ``filters`` maps a parameter to the object field it must equal."""

    def handler(req: FakeRequest) -> dict:
        p, pay = req.params, payments_for(req)
        wanted = {field: p[name] for name, field in filters.items() if p.get(name)}

        def match(obj):  # an application fee's charge is also its originating (platform) charge
            return all(obj.get(field) == value or (field == "charge" and obj.get("originating_transaction") == value)
                       for field, value in wanted.items())

        page = req.store.page(object_type, req.stripe_account, p, url, match=match if wanted else None)
        paths = expand_list_paths(p)
        page["data"] = [getattr(pay, render)(o, paths) for o in page["data"]]
        return page

    return handler


def retriever(object_type: str, path_param: str, *, render: str = "render"):
    def handler(req: FakeRequest) -> dict:
        pay = payments_for(req)
        obj = pay.get(object_type, req.path_params[path_param])
        return getattr(pay, render)(obj, expand_of(req))

    return handler


ROUTES.route("GET", "/v1/charges")(
    lister("charge", "/v1/charges", {"customer": "customer", "payment_intent": "payment_intent", "transfer_group": "transfer_group"},
            render="render_charge")
)
ROUTES.route("GET", "/v1/charges/{charge}")(retriever("charge", "charge", render="render_charge"))
ROUTES.route("GET", "/v1/balance_transactions")(
    lister("balance_transaction", "/v1/balance_transactions", {"type": "type", "source": "source", "currency": "currency"})
)
ROUTES.route("GET", "/v1/balance_transactions/{id}")(retriever("balance_transaction", "id"))
ROUTES.route("GET", "/v1/transfers")(
    lister("transfer", "/v1/transfers", {"destination": "destination", "transfer_group": "transfer_group"})
)
ROUTES.route("GET", "/v1/transfers/{transfer}")(retriever("transfer", "transfer"))
ROUTES.route("GET", "/v1/application_fees")(lister("application_fee", "/v1/application_fees", {"charge": "charge"}))
ROUTES.route("GET", "/v1/application_fees/{id}")(retriever("application_fee", "id"))
ROUTES.route("GET", "/v1/refunds")(
    lister("refund", "/v1/refunds", {"charge": "charge", "payment_intent": "payment_intent"})
)
ROUTES.route("GET", "/v1/refunds/{refund}")(retriever("refund", "refund"))
ROUTES.route("GET", "/v1/payment_intents/{intent}")(retriever("payment_intent", "intent"))
