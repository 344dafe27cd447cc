"""The one place the finance metrics ask for an FX rate (``pmfin_fx_rates``)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from pmfin.months import Month


def rate(conn: Connection, month: Month, base: str, quote: str) -> Decimal | None:
    """Major units of ``quote`` per major unit of ``base`` for ``month``; the inverse rate when only
    that is stored; None when there is neither."""
    row = conn.execute(
        text(
            "SELECT base_currency, rate FROM pmfin_fx_rates WHERE month = :month AND "
            "((base_currency = :base AND quote_currency = :quote) OR (base_currency = :quote AND quote_currency = :base)) "
            "ORDER BY base_currency = :base DESC LIMIT 1"
        ),
        {"month": month.first_day, "base": base, "quote": quote},
    ).first()
    if row is None:
        return None
    found_base, value = row
    return Decimal(value) if found_base.strip() == base else Decimal(1) / Decimal(value)
