"""Small shared pieces of the finance metrics: exact ratios and conversion to the reporting currency.

Amounts stay exact (``Decimal`` minor units) until the end of a computation, where they are
rounded once with ``pmfin.money.round_minor``.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Connection

from pmfin.metrics import fx_adapter
from pmfin.metrics.mrr import ratio
from pmfin.money import exponent, format_money, round_minor
from pmfin.months import Month

__all__ = ["Converter", "ratio"]


class Converter:
    """Converts exact minor-unit amounts of one month to the reporting currency.

    A currency without a rate for the month is left out; each such amount adds a warning that
    says how much was left out (``warnings``).
    """

    def __init__(self, conn: Connection, month: Month, currency: str):
        self.conn = conn
        self.month = month
        self.currency = currency.lower()
        self.warnings: list[str] = []
        self._rates: dict[str, Decimal | None] = {}

    def rate(self, from_currency: str) -> Decimal | None:
        """Major units of the reporting currency per major unit of ``from_currency``."""
        cur = from_currency.strip().lower()
        if cur not in self._rates:
            self._rates[cur] = fx_adapter.rate(self.conn, self.month, cur, self.currency)
        return self._rates[cur]

    def convert(self, amount: Decimal | int, from_currency: str, *, what: str) -> Decimal | None:
        """``amount`` (exact minor units of ``from_currency``) in minor units of the reporting currency."""
        cur = from_currency.strip().lower()
        amount = Decimal(amount)
        if cur == self.currency:
            return amount
        if not amount:
            return Decimal(0)
        rate = self.rate(cur)
        if rate is None:
            self.warnings.append(
                f"left out {format_money(round_minor(amount), cur)} of {what} in {self.month}: "
                f"no FX rate {cur.upper()}→{self.currency.upper()} for {self.month} (pmfin fx)"
            )
            return None
        return amount.scaleb(-exponent(cur)) * rate * Decimal(1).scaleb(exponent(self.currency))
