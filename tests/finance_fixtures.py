"""Terse inserts for the finance tests, on top of ``metrics_fixtures`` (the shared contract helpers).

A payment or an email batch that belongs to no tenant in particular gets a fresh tenant id;
a cost's kind follows the category vocabulary unless given.
"""

from __future__ import annotations

import uuid

from sqlalchemy.engine import Engine

from metrics_fixtures import add_cost, add_emails, add_fx_rate, add_payment

VARIABLE = ("marketing", "sales", "customer_success")


def payment(
    engine: Engine,
    *,
    amount: int,
    day: str,
    stream: str | None = "subscription",
    status: str = "succeeded",
    currency: str = "usd",
    refunded: int = 0,
    fee: int | None = None,
    app_fee: int | None = None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    add_payment(
        engine, tenant_id or uuid.uuid4(), day, amount, stream=stream, status=status, currency=currency,
        refunded=refunded, fee=fee, application_fee=app_fee,
    )


def emails(engine: Engine, count: int, day: str | None, status: str = "sent") -> None:
    """``count`` emails sent at ``day`` (None: never sent)."""
    add_emails(engine, uuid.uuid4(), day, count, status=status)


def cost(engine: Engine, month: str, category: str, amount: int, *, kind: str | None = None, currency: str = "usd") -> None:
    add_cost(engine, month, category, amount, kind=kind or ("variable" if category in VARIABLE else "fixed"), currency=currency)


def fx_rate(engine: Engine, month: str, base: str, quote: str, rate: str) -> None:
    add_fx_rate(engine, month, base, quote, rate)
