"""``fake.payments``: test-side helpers for charges, refunds and disputes on the platform account.
They put objects straight into the fake's store (no request logged) and return deep copies.

    fake.payments.add_charge(amount, *, currency="usd", created=None, destination=None,
                             application_fee_amount=None, transfer_amount=None, customer=None,
                             status="succeeded", fee=None, fee_details=None,
                             transfer_destination=None, metadata=None, description=None) -> dict
        A card charge through a payment intent, dated ``created`` (default now). The result is the
        charge with ``balance_transaction``, ``transfer`` and ``application_fee`` expanded to the
        objects made (None where there is none) and its ``refunds`` list.
        - ``destination`` (an account from ``fake.accounts.add()``): a destination charge —
          ``transfer_data.destination``, a transfer of the full amount (or ``transfer_amount``:
          ``transfer_data[amount]``, then no application fee: Stripe refuses both), the ``py_``
          payment on the connected account (its balance transaction's fee is the application fee),
          and with ``application_fee_amount`` an ``application_fee`` object (account, amount,
          ``charge`` = the ``py_`` payment, ``originating_transaction`` = this charge).
        - ``fee``/``fee_details``: the balance transaction's fee instead of Stripe's 2.9 % + fixed
          fee (an international or premium card); either may be given, the details sum to the fee
          (a detail needs ``amount``; ``type`` defaults to stripe_fee, ``description`` to
          "Stripe processing fees").
        - ``transfer_destination``: the transfer (and payment, application fee) go to this other
          account while ``transfer_data.destination`` names ``destination`` — a planted difference.
        - ``customer``: charged on its default card (when that behaves as ``status`` asks);
          otherwise on a new unattached test card. ``status="failed"``: a generic decline, no
          balance transaction, no transfer.
        - Stripe's limits hold: at least the currency's minimum charge (50 ¢ for usd), at most
          eight digits ($999,999.99); anything else is a ValueError.
    fake.payments.refund(charge_id, amount=None, *, reason=None, created=None) -> dict
        The refund (all that is left when ``amount`` is None); the charge's ``amount_refunded``,
        ``refunded`` and ``refunds`` follow. A charged-back charge cannot be refunded (ValueError).
    fake.payments.add_dispute(charge_id, *, amount=None, reason="fraudulent",
                              status="needs_response", created=None, due_by=None) -> dict
        A dispute on a succeeded charge (``disputed`` becomes true): the charge's amount unless
        given; ``evidence_details.due_by`` defaults to the end (23:59:59 UTC) of the 7th day after
        ``created``. A chargeback withdraws amount + the $15 dispute fee (``balance_transactions``);
        ``warning_*`` statuses are inquiries and withdraw nothing.
    fake.payments.close_dispute(dispute_id, status="won") -> dict
        The network's decision: ``won`` (the amount is reinstated) or ``lost``; an inquiry closes
        as ``warning_closed``.
    Readers: ``charge(id)``, ``charges(*, destination=None, customer=None)`` (newest first, as
    ``GET /v1/charges`` lists: invoice charges too), ``dispute(id)``, ``disputes()`` (newest
    first), ``refund(…)``'s result, ``balance_transaction(id, *, account=None)``,
    ``transfer(id)``, ``application_fee(id)``, ``payment_intent(id)``,
    ``destination_payment(py_id, account)`` (the payment on the connected account).
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import StripeApiError
from . import HELPERS
from .payments import Payments


class PaymentHelpers:
    """``fake.payments``: see the module's docstring for the API."""

    def __init__(self, fake):
        self.fake = fake

    @property
    def _p(self) -> Payments:
        return Payments(self.fake)

    def _charge_copy(self, p: Payments, charge: dict) -> dict:
        return p.expand(charge, ["balance_transaction", "transfer", "application_fee"])

    # -- making objects ----------------------------------------------------------------------
    def add_charge(self, amount: int, **options: Any) -> dict:
        """``Payments.connect_charge``'s keyword arguments (the module's docstring lists them),
        under the fake's lock; the charge with its objects expanded."""
        with self.fake.lock:
            p = self._p
            return self._charge_copy(p, p.connect_charge(amount, **options))

    def refund(self, charge_id: str, amount: int | None = None, *, reason: str | None = None,
               created: int | None = None) -> dict:
        with self.fake.lock:
            p = self._p
            try:
                return copy.deepcopy(p.refund(p.get("charge", charge_id), amount, reason=reason, created=created))
            except StripeApiError as err:
                raise ValueError(err.message) from None

    def add_dispute(
        self,
        charge_id: str,
        *,
        amount: int | None = None,
        reason: str = "fraudulent",
        status: str = "needs_response",
        created: int | None = None,
        due_by: int | None = None,
    ) -> dict:
        with self.fake.lock:
            p = self._p
            dispute = p.open_dispute(p.get("charge", charge_id), amount=amount, reason=reason, status=status,
                                     created=created, due_by=due_by)
            return copy.deepcopy(dispute)

    def close_dispute(self, dispute_id: str, status: str = "won") -> dict:
        with self.fake.lock:
            p = self._p
            return copy.deepcopy(p.decide_dispute(p.get("dispute", dispute_id), status))

    # -- reading -----------------------------------------------------------------------------
    def charge(self, charge_id: str) -> dict:
        """The stored charge (``refunds`` included), ids unexpanded."""
        with self.fake.lock:
            return copy.deepcopy(self._p.get("charge", charge_id))

    def charges(self, *, destination: str | None = None, customer: str | None = None) -> list[dict]:
        """The platform's charges newest first (invoice charges too); of one destination or customer."""
        with self.fake.lock:
            found = [
                c for c in self.fake.store.newest_first("charge")
                if (destination is None or (c["transfer_data"] or {}).get("destination") == destination)
                and customer in (None, c["customer"])
            ]
            return copy.deepcopy(found)

    def dispute(self, dispute_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._p.get("dispute", dispute_id))

    def disputes(self) -> list[dict]:
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.newest_first("dispute"))

    def balance_transaction(self, txn_id: str, *, account: str | None = None) -> dict:
        with self.fake.lock:
            return copy.deepcopy(Payments(self.fake, account).get("balance_transaction", txn_id))

    def transfer(self, transfer_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._p.get("transfer", transfer_id))

    def application_fee(self, fee_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._p.get("application_fee", fee_id))

    def payment_intent(self, pi_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self._p.get("payment_intent", pi_id))

    def destination_payment(self, payment_id: str, account: str) -> dict:
        """The ``py_`` payment a transfer made on the connected account."""
        with self.fake.lock:
            return copy.deepcopy(Payments(self.fake, account).get("charge", payment_id))


HELPERS["payments"] = PaymentHelpers
