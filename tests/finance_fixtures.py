"""Compact inserts for the finance tests: payments, emails, costs, FX rates, tenants with MRR."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

UTC = dt.timezone.utc


def at(day: str) -> dt.datetime:
    """``'2025-03-15'`` or ``'2025-03-15 10:00'`` → an aware UTC datetime."""
    fmt = "%Y-%m-%d %H:%M" if " " in day else "%Y-%m-%d"
    return dt.datetime.strptime(day, fmt).replace(tzinfo=UTC)


def tenant(engine: Engine, name: str = "t") -> uuid.UUID:
    tid = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:id, :name)"), {"id": tid, "name": name})
    return tid


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
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO payments (tenant_id, id, revenue_stream, amount_cents, currency, status, "
                "refunded_cents, fee_cents, application_fee_cents, created_at) VALUES "
                "(:t, :id, :stream, :amount, :cur, :status, :refunded, :fee, :app_fee, :at)"
            ),
            {
                "t": tenant_id or uuid.uuid4(), "id": uuid.uuid4(), "stream": stream, "amount": amount,
                "cur": currency, "status": status, "refunded": refunded, "fee": fee, "app_fee": app_fee,
                "at": at(day),
            },
        )


def emails(engine: Engine, count: int, day: str | None, status: str = "sent") -> None:
    """``count`` emails sent at ``day`` (None: queued, never sent)."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO emails (tenant_id, id, status, sent_at) "
                "SELECT gen_random_uuid(), gen_random_uuid(), :status, :at FROM generate_series(1, :n)"
            ),
            {"n": count, "status": status, "at": at(day) if day else None},
        )


def cost(engine: Engine, month: str, category: str, amount: int, *, kind: str | None = None, currency: str = "usd") -> None:
    if kind is None:
        kind = "variable" if category in ("marketing", "sales", "customer_success") else "fixed"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source) "
                "VALUES (:m, :c, :k, :a, :cur, 'test')"
            ),
            {"m": dt.date.fromisoformat(month + "-01"), "c": category, "k": kind, "a": amount, "cur": currency},
        )


def fx_rate(engine: Engine, month: str, base: str, quote: str, rate: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pmfin_fx_rates (month, base_currency, quote_currency, rate, source) "
                "VALUES (:m, :b, :q, :r, 'test')"
            ),
            {"m": dt.date.fromisoformat(month + "-01"), "b": base, "q": quote, "r": Decimal(rate)},
        )


def plan(engine: Engine, plan_id: str = "pro", price: int = 10000, cycle: str = "month") -> str:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency) "
                "VALUES (:id, :id, 'professional', :cycle, :price, 'usd') ON CONFLICT (id) DO NOTHING"
            ),
            {"id": plan_id, "cycle": cycle, "price": price},
        )
    return plan_id


def subscription(
    engine: Engine,
    tenant_id: uuid.UUID,
    *,
    price: int,
    start: str,
    end: str | None = None,
    cycle: str = "month",
    currency: str = "usd",
) -> None:
    """A subscription row live from ``start`` to ``end`` (None: still running) at ``price`` per cycle."""
    plan_id = plan(engine, f"plan_{cycle}", 0, cycle)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency, "
                "started_at, ended_at, end_reason) VALUES (:t, :id, :plan, :status, 1, :price, :cur, :start, :end, :reason)"
            ),
            {
                "t": tenant_id, "id": uuid.uuid4(), "plan": plan_id, "status": "canceled" if end else "active",
                "price": price, "cur": currency, "start": at(start), "end": at(end) if end else None,
                "reason": "canceled" if end else None,
            },
        )


def customer(engine: Engine, *, price: int, start: str, end: str | None = None, name: str = "c") -> uuid.UUID:
    """A tenant with one monthly subscription row."""
    tid = tenant(engine, name)
    subscription(engine, tid, price=price, start=start, end=end)
    return tid
