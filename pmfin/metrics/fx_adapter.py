"""The one place the finance metrics ask for an FX rate (``pmfin_fx_rates``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.engine import Connection

from pmfin.db.own import readable
from pmfin.months import Month


def rate(conn: Connection, month: Month, base: str, quote: str) -> Decimal | None:
    """Major units of ``quote`` per major unit of ``base`` for ``month``; the inverse rate when only
    that is stored; None when there is neither. The same rule as the MRR engine
    (``pmfin.metrics.mrr``): a direct rate wins over the inverse of the reverse one."""
    base, quote = base.lower(), quote.lower()
    row = conn.execute(
        readable(
            conn,
            "SELECT lower(base_currency::text) AS b, rate FROM pmfin_fx_rates WHERE month = :month AND "
            "((lower(base_currency::text) = :base AND lower(quote_currency::text) = :quote) "
            "OR (lower(base_currency::text) = :quote AND lower(quote_currency::text) = :base)) "
            "ORDER BY lower(base_currency::text) = :base DESC LIMIT 1"
        ),
        {"month": month.first_day, "base": base, "quote": quote},
    ).first()
    if row is None:
        return None
    found_base, value = row
    return Decimal(value) if found_base.strip() == base else Decimal(1) / Decimal(value)
