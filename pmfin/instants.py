"""Instants as people type them on the command line (``--as-of``, ``--since``): ISO 8601, UTC."""

from __future__ import annotations

import datetime as dt
import re

from pmfin.errors import UsageError

_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ASCII = re.compile(r"^[0-9T:.+\-Zz ]+$")


def parse_instant(value: str, *, flag: str) -> dt.datetime:
    """``2026-12-01T02:00:00Z``, ``2026-12-01T02:00+01:00``, or a date alone (00:00 UTC) → an
    aware UTC datetime. A time without an offset is UTC."""
    text = (value or "").strip()
    if not text or not _ASCII.match(text):
        raise UsageError(f"{flag} must be an ISO 8601 instant such as 2026-12-01T02:00:00Z or a date 2026-12-01, got {value!r}")
    try:
        if _DATE.match(text):
            parsed = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
        else:
            parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{flag} must be an ISO 8601 instant such as 2026-12-01T02:00:00Z or a date 2026-12-01, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    if not 1970 <= parsed.year <= 2999:
        raise UsageError(f"{flag} must be between 1970 and 2999, got {value!r}")
    return parsed.astimezone(dt.timezone.utc)


def parse_date(value: str, *, flag: str) -> dt.date:
    text = (value or "").strip()
    if not _DATE.match(text):
        raise UsageError(f"{flag} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
