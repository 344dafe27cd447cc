"""Money: integer minor units plus an ISO currency code, exactly as Stripe's API has it.

The one rounding rule of pmfin lives here (``round_minor``: half-even, to the minor unit,
applied once at the end of a computation). Never a float for money.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from pmfin.errors import UsageError

# Stripe's zero-decimal currencies (the amount is already in the major unit).
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
# Stripe's three-decimal currencies.
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

# 10¹⁵ minor units ($10 trillion): far above any real amount, far below bigint's 9.2 × 10¹⁸, so
# a typo is an error at input instead of an overflow in the database.
MAX_MINOR = 10**15

SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}


def is_currency_code(text: str) -> bool:
    """Three ASCII letters, as an ISO 4217 code (``usd``, ``EUR``)."""
    return len(text) == 3 and text.isascii() and text.isalpha()


def exponent(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s major unit."""
    c = currency.lower()
    if c in ZERO_DECIMAL:
        return 0
    if c in THREE_DECIMAL:
        return 3
    return 2


def round_minor(value: Decimal | int) -> int:
    """Round an exact amount in minor units to a whole minor unit, half to even."""
    return int(Decimal(value).to_integral_value(rounding=ROUND_HALF_EVEN))


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))


def format_money(minor: int | None, currency: str) -> str:
    """``123456, 'usd'`` → ``$1,234.56``; other currencies get their code: ``1,234.56 CHF``."""
    if minor is None:
        return "—"
    exp = exponent(currency)
    major = to_major(minor, currency)
    text = f"{abs(major):,.{exp}f}"
    sign = "-" if minor < 0 else ""
    symbol = SYMBOLS.get(currency.lower())
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {currency.upper()}"


_AMOUNT = re.compile(r"(?P<minus>-?)(?P<before>[^0-9.\s-]*)\s*(?P<number>[0-9]*\.?[0-9]*)\s*(?P<after>[^0-9.\s]*)")


def _currency_of(mark: str) -> str | None:
    """The currency a symbol (``€``) or an ISO code (``EUR``) written beside an amount stands for."""
    for code, symbol in SYMBOLS.items():
        if mark == symbol:
            return code
    return mark.lower() if is_currency_code(mark) else None


def parse_amount(text: str, currency: str, *, what: str = "amount", allow_negative: bool = False) -> int:
    """Parse a major-unit amount a person typed (``25000``, ``25,000.50``, ``$25000``,
    ``25000 USD``) to minor units of ``currency``.

    A currency symbol or ISO code before or after the number must be ``currency``'s own:
    ``€2500000`` for a USD amount is refused, never read as dollars. Digits are ASCII. More
    digits after the point than the currency has is an error, never a silent rounding.
    """
    cleaned = text.strip().replace(",", "").replace("_", "")
    m = _AMOUNT.fullmatch(cleaned)
    if not m or m["number"].strip(".") == "" or (m["before"] and m["after"]):
        raise UsageError(f"{what} must be an amount like 25000 or 25000.50, got {text!r}")
    for mark in filter(None, (m["before"], m["after"])):
        meant = _currency_of(mark)
        if meant is None:
            raise UsageError(f"{what} must be an amount like 25000 or 25000.50, got {text!r}")
        if meant != currency.lower():
            raise UsageError(f"{what} is in {meant.upper()} ({text.strip()!r}), not in {currency.upper()}: "
                             f"give the amount in {currency.upper()}")
    value = Decimal(m["minus"] + m["number"])
    if value < 0 and not allow_negative:
        raise UsageError(f"{what} must not be negative, got {text!r}")
    minor = value.scaleb(exponent(currency))
    if abs(minor) >= MAX_MINOR:
        raise UsageError(f"{what} is implausibly large ({text!r}); the limit is {MAX_MINOR:.0e} minor units")
    if minor != minor.to_integral_value():
        raise UsageError(
            f"{what} has more decimals than {currency.upper()} allows ({exponent(currency)}): {text!r}"
        )
    return int(minor)


@dataclass(frozen=True, order=True)
class Money:
    """An immutable (minor units, currency) pair. Adding two currencies is an error."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"Money.amount must be int minor units, got {type(self.amount).__name__}")
        object.__setattr__(self, "currency", self.currency.lower())

    def _check(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("can only combine Money with Money")
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency.upper()} with {other.currency.upper()}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)
