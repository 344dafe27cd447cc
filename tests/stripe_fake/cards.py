"""Stripe's test cards: what each number is, and what happens when it is attached or charged.

Real Stripe test mode (docs.stripe.com/testing, "Declined payments"): the decline cards are
declined already when attached to a customer — attaching runs a card check the issuer refuses —
except 4000000000000341 (``pm_card_chargeCustomerFail``), which attaches and then declines every
charge. ``code`` is the error's ``code``; ``decline_code`` is set only for ``card_declined``
(the docs list none for expired_card, incorrect_cvc and processing_error).

A card can also decline because of its date: one whose expiry month has passed declines with
``expired_card`` (test helpers may put such a card on a customer; Stripe itself would have
refused to attach it).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str | None
    message: str
    param: str | None = None
    outcome_type: str = "issuer_declined"

    @property
    def reason(self) -> str:
        """``charge.outcome.reason``: the decline code, or the error code when there is none."""
        return self.decline_code or self.code

    @property
    def seller_message(self) -> str:
        if self.decline_code in (None, "generic_decline"):
            return "The bank did not return any further details with this decline."
        return f"The bank returned the decline code `{self.decline_code}`."

    def error(self) -> dict:
        """The body fields of the 402 ``card_error`` (without charge/payment method ids)."""
        err = {
            "type": "card_error",
            "code": self.code,
            "message": self.message,
            "doc_url": f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}",
        }
        if self.decline_code is not None:
            err["decline_code"] = self.decline_code
        if self.param is not None:
            err["param"] = self.param
        return err


GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
INSUFFICIENT_FUNDS = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
LOST = Decline("card_declined", "lost_card", "Your card was declined.")
STOLEN = Decline("card_declined", "stolen_card", "Your card was declined.")
EXPIRED = Decline("expired_card", None, "Your card has expired.", param="exp_month")
INCORRECT_CVC = Decline("incorrect_cvc", None, "Your card's security code is incorrect.", param="cvc")
PROCESSING_ERROR = Decline(
    "processing_error", None, "An error occurred while processing your card. Try again in a little bit."
)
VELOCITY = Decline(
    "card_declined",
    "card_velocity_exceeded",
    "Your card was declined for making repeated attempts too frequently or exceeding its amount limit.",
)


@dataclass(frozen=True)
class CardSpec:
    number: str
    brand: str = "visa"
    funding: str = "credit"
    country: str = "US"
    attach_decline: Decline | None = None  # refused when attached to a customer
    charge_decline: Decline | None = None  # declined when charged

    @property
    def last4(self) -> str:
        return self.number[-4:]


def _card(number: str, decline: Decline | None = None, *, attaches: bool = False, **kw) -> CardSpec:
    return CardSpec(number, attach_decline=None if attaches else decline, charge_decline=decline, **kw)


CARDS: dict[str, CardSpec] = {
    c.number: c
    for c in (
        _card("4242424242424242"),
        _card("4000056655665556", funding="debit"),
        _card("5555555555554444", brand="mastercard"),
        _card("5200828282828210", brand="mastercard", funding="debit"),
        _card("378282246310005", brand="amex"),
        _card("6011111111111117", brand="discover"),
        _card("4000000000000077"),  # succeeds, funds available at once
        _card("4000000000000341", GENERIC, attaches=True),
        _card("4000000000000002", GENERIC),
        _card("4000000000009995", INSUFFICIENT_FUNDS),
        _card("4000000000009987", LOST),
        _card("4000000000009979", STOLEN),
        _card("4000000000000069", EXPIRED),
        _card("4000000000000127", INCORRECT_CVC),
        _card("4000000000000119", PROCESSING_ERROR),
        _card("4000000000006975", VELOCITY),
    )
}

# The magic PaymentMethod ids test mode accepts wherever a payment method id is expected.
MAGIC_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_mastercard_debit": "5200828282828210",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_visa_chargeDeclinedVelocityLimitExceeded": "4000000000006975",
}


def card_for(number: str) -> CardSpec:
    """The test card for ``number``; any other Luhn-valid number is an ordinary Visa that succeeds."""
    number = number.replace(" ", "")
    if number in CARDS:
        return CARDS[number]
    if not (number.isdigit() and 12 <= len(number) <= 19 and luhn_ok(number)):
        raise ValueError(f"not a card number the fake knows: {number!r}")
    brand = {"4": "visa", "5": "mastercard", "3": "amex", "6": "discover"}.get(number[0], "unknown")
    return CardSpec(number, brand=brand)


def by_fingerprint(value: str) -> CardSpec | None:
    """The test card a payment method was made from (by its ``card.fingerprint``), if it is one."""
    return _BY_FINGERPRINT.get(value)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def fingerprint(number: str) -> str:
    """Stable per card number, as Stripe's ``card.fingerprint`` is (16 alphanumerics)."""
    digest = hashlib.sha256(("stripe-fake:" + number).encode()).hexdigest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    value = int(digest, 16)
    return "".join(alphabet[(value >> (6 * i)) % len(alphabet)] for i in range(16))


def is_expired(exp_month: int, exp_year: int, now: float | None = None) -> bool:
    """A card is valid through the last day of its expiry month."""
    today = time.gmtime(time.time() if now is None else now)
    return (exp_year, exp_month) < (today.tm_year, today.tm_mon)


_BY_FINGERPRINT = {fingerprint(number): card for number, card in CARDS.items()}
