"""FX rates for reporting in one currency (``pmfin_fx_rates``): import from CSV, list.

A rate row says: in ``month``, 1 ``base`` = ``rate`` ``quote`` (major units). The MRR engine
converts an amount in currency C to the reporting currency R with the rate of the month it
reports: ``C→R`` when present, else the inverse of ``R→C``; with neither, the amount is left
out with a warning (see :mod:`pmfin.metrics.mrr`).

The CSV file has the header ``month,base,quote,rate`` (any column order, nothing else), e.g.::

    month,base,quote,rate
    2025-01,eur,usd,1.0342
    2025-01,gbp,usd,1.2467

A malformed file is rejected whole, ``FILE, line N: reason`` (``pmfin.csvfile``; exit 2); nothing
is imported. Rows for a
(month, base, quote) that already exists replace the stored rate (an upsert).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin import csvfile
from pmfin.db.migrate import require_contract
from pmfin.errors import UsageError
from pmfin.money import is_currency_code
from pmfin.months import Month

COLUMNS = ("month", "base", "quote", "rate")
MAX_DECIMALS = 10  # pmfin_fx_rates.rate is numeric(20, 10)
MAX_INTEGER_DIGITS = 10


@dataclass(frozen=True)
class FxRate:
    month: Month
    base: str
    quote: str
    rate: Decimal
    source: str | None = None
    imported_at: dt.datetime | None = None

    def as_row(self) -> dict:
        return {"month": str(self.month), "base": self.base, "quote": self.quote, "rate": self.rate,
                "source": self.source, "imported_at": self.imported_at}


@dataclass(frozen=True)
class FxImport:
    file: str
    rows: int
    inserted: int
    updated: int


def _currency(value: str, where: str, what: str) -> str:
    c = value.strip().lower()
    if not is_currency_code(c):
        raise UsageError(f"{where}: {what} must be a 3-letter currency code, got {value!r}")
    return c


def _rate(value: str, where: str) -> Decimal:
    raw = value.strip()
    try:
        rate = Decimal(raw) if raw.isascii() else None
    except InvalidOperation:
        rate = None
    if rate is None:
        raise UsageError(f"{where}: rate must be a number like 1.0842, got {value!r}")
    if not rate.is_finite() or rate <= 0:
        raise UsageError(f"{where}: rate must be a positive number, got {value!r}")
    if rate.normalize().as_tuple().exponent < -MAX_DECIMALS:
        raise UsageError(f"{where}: rate has more than {MAX_DECIMALS} decimals: {value!r}")
    if rate.adjusted() + 1 > MAX_INTEGER_DIGITS:
        raise UsageError(f"{where}: rate is too large: {value!r}")
    return rate


def parse_csv(content: str, name: str = "rates.csv") -> list[FxRate]:
    """Every rate of the file, or a UsageError ``NAME, line N: …`` naming the first bad record."""
    rows = csvfile.records(content, name)
    try:
        _, header = next(rows)
    except StopIteration:
        raise UsageError(f"{name}: the file is empty (expected the header month,base,quote,rate)") from None
    names = [h.strip().lower() for h in header]
    if sorted(names) != sorted(COLUMNS):
        raise UsageError(f"{name}, line 1: the header must be month,base,quote,rate (any order), got {','.join(header)!r}")
    index = {n: names.index(n) for n in COLUMNS}
    rates: list[FxRate] = []
    seen: dict[tuple, int] = {}
    for line, fields in rows:
        if csvfile.is_blank(fields):
            continue
        where = f"{name}, line {line}"
        if len(fields) != len(COLUMNS):
            raise UsageError(f"{where}: expected 4 fields (month,base,quote,rate), got {len(fields)}")
        month = Month.parse(fields[index["month"]], flag=f"{where}: month")
        base = _currency(fields[index["base"]], where, "base")
        quote = _currency(fields[index["quote"]], where, "quote")
        if base == quote:
            raise UsageError(f"{where}: base and quote are both {base.upper()}")
        rate = _rate(fields[index["rate"]], where)
        key = (month, base, quote)
        if key in seen:
            raise UsageError(f"{where}: a second rate for {month} {base.upper()}→{quote.upper()} (first on line {seen[key]})")
        seen[key] = line
        rates.append(FxRate(month, base, quote, rate))
    if not rates:
        raise UsageError(f"{name}: no rates after the header")
    return rates


def import_file(engine: Engine, path: Path) -> FxImport:
    """Validate the whole file, then upsert every rate in one transaction."""
    rates = parse_csv(csvfile.read_text(path), name=str(path))
    inserted = 0
    with engine.begin() as conn:
        require_contract(conn, ("pmfin_fx_rates",))
        for r in rates:
            new = conn.execute(
                text(
                    "INSERT INTO pmfin_fx_rates (month, base_currency, quote_currency, rate, source) "
                    "VALUES (:month, :base, :quote, :rate, :source) "
                    "ON CONFLICT (month, base_currency, quote_currency) DO UPDATE "
                    "SET rate = EXCLUDED.rate, source = EXCLUDED.source, imported_at = now() "
                    "RETURNING (xmax = 0)"
                ),
                {"month": r.month.first_day, "base": r.base, "quote": r.quote, "rate": r.rate,
                 "source": Path(path).name},
            ).scalar_one()
            inserted += bool(new)
    return FxImport(str(path), len(rates), inserted, len(rates) - inserted)


def list_rates(conn: Connection | Engine, *, month: Month | None = None, currency: str | None = None) -> list[FxRate]:
    """Stored rates, newest month first; optionally one month and/or rates involving one currency."""
    from pmfin.metrics.mrr import check_currency, connection

    currency = check_currency(currency) if currency is not None else None
    sql = ("SELECT month, lower(base_currency::text), lower(quote_currency::text), rate, source, imported_at "
           "FROM pmfin_fx_rates WHERE (CAST(:month AS date) IS NULL OR month = CAST(:month AS date)) "
           "AND (CAST(:cur AS text) IS NULL OR lower(base_currency::text) = :cur OR lower(quote_currency::text) = :cur) "
           "ORDER BY month DESC, base_currency, quote_currency")
    with connection(conn) as c:
        require_contract(c, ("pmfin_fx_rates",))
        rows = c.execute(text(sql), {"month": month.first_day if month else None,
                                     "cur": currency.lower() if currency else None}).all()
    return [FxRate(Month.of(m), b, q, Decimal(r).normalize(), s, at) for m, b, q, r, s, at in rows]
