"""Compact helpers to insert data-contract rows (DESIGN.md §2) for metric tests.

Shared by the core-metrics and the finance tests; the signatures are kept stable.

    from metrics_fixtures import Ledger

    def test_something(engine):
        with Ledger(engine) as led:                      # one transaction, committed on exit
            acme = led.tenant("acme")                     # deterministic uuid from the name
            led.sub(acme, "2025-01-10", price=10_000)     # $100/month from 10 Jan, still running
            led.sub(acme, "2025-01-10", "2025-03-01", price=120_000, cycle="year")
            led.addon(acme, "2025-02", price=2_500, quantity=2)
            led.fx("2025-02", "eur", "usd", "1.10")

Instants: a ``datetime`` (naive means UTC), or text: ``"2025-03"`` (first instant of the month),
``"2025-03-15"`` (midnight UTC), ``"2025-03-15T12:30"`` / ``"2025-03-15 12:30:00+02:00"``.
Plans and add-ons are created on demand (``plan_id`` defaults to ``test_<cycle>_<currency>``),
so a test names only what matters: tenant, span, price, cycle, quantity, currency, trial.
Every helper accepts an Engine or a Connection (the module-level functions) and returns the id
of the row it wrote.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

UTC = dt.timezone.utc
_NS = uuid.UUID("5b1c3c38-5d2e-4b39-9a43-6b1f0b1e7e01")

Instant = dt.datetime | dt.date | str


def ts(value: Instant | None) -> dt.datetime | None:
    """An aware UTC datetime from a datetime/date/text instant (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    s = str(value).strip()
    if len(s) == 7:  # YYYY-MM
        s += "-01"
    parsed = dt.datetime.fromisoformat(s)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def month_date(value: Instant) -> dt.date:
    """First day of the month of ``value`` ("2025-03" → 2025-03-01)."""
    t = ts(value)
    assert t is not None
    t = t.astimezone(UTC)
    return dt.date(t.year, t.month, 1)


def tenant_id(name: str) -> uuid.UUID:
    """The deterministic id ``Ledger.tenant(name)`` gives a tenant."""
    return uuid.uuid5(_NS, f"tenant:{name}")


def _run(conn: Engine | Connection, sql: str, params: dict[str, Any]) -> None:
    if isinstance(conn, Engine):
        with conn.begin() as c:
            c.execute(text(sql), params)
    else:
        conn.execute(text(sql), params)


def add_tenant(
    conn: Engine | Connection,
    name: str,
    *,
    id: uuid.UUID | None = None,
    created: Instant = "2024-01-01",
    currency: str = "usd",
    deleted: Instant | None = None,
) -> uuid.UUID:
    """A ``tenants`` row and its ``tenant_config`` row."""
    tid = id or tenant_id(name)
    _run(
        conn,
        "INSERT INTO tenants (id, name, created, deleted) VALUES (:id, :name, :created, :deleted)",
        {"id": tid, "name": name, "created": ts(created), "deleted": ts(deleted)},
    )
    _run(
        conn,
        "INSERT INTO tenant_config (tenant_id, currency) VALUES (:id, :currency)",
        {"id": tid, "currency": currency},
    )
    return tid


def add_plan(
    conn: Engine | Connection,
    plan_id: str,
    *,
    price: int = 0,
    cycle: str = "month",
    currency: str = "usd",
    tier: str = "professional",
) -> str:
    """A ``plans`` row (no-op when the id exists)."""
    _run(
        conn,
        "INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency) "
        "VALUES (:id, :id, :tier, :cycle, :price, :currency) ON CONFLICT (id) DO NOTHING",
        {"id": plan_id, "tier": tier, "cycle": cycle, "price": price, "currency": currency},
    )
    return plan_id


def add_addon_type(
    conn: Engine | Connection, addon_id: str, *, price: int = 0, cycle: str = "month", currency: str = "usd"
) -> str:
    """An ``addons`` row (no-op when the id exists)."""
    _run(
        conn,
        "INSERT INTO addons (id, name, billing_cycle, price_cents, currency) "
        "VALUES (:id, :id, :cycle, :price, :currency) ON CONFLICT (id) DO NOTHING",
        {"id": addon_id, "cycle": cycle, "price": price, "currency": currency},
    )
    return addon_id


def add_subscription(
    conn: Engine | Connection,
    tenant: uuid.UUID,
    start: Instant,
    end: Instant | None = None,
    *,
    price: int,
    cycle: str = "month",
    quantity: int = 1,
    currency: str = "usd",
    trial_ends: Instant | None = None,
    status: str | None = None,
    plan_id: str | None = None,
    end_reason: str | None = None,
    id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A ``subscriptions`` row: ``price`` is unit_price_cents per billing cycle per unit."""
    plan_id = plan_id or f"test_{cycle}_{currency}"
    add_plan(conn, plan_id, price=max(price, 0), cycle=cycle, currency=currency)
    if status is None:
        status = "canceled" if end is not None else "active"
    sid = id or uuid.uuid4()
    _run(
        conn,
        "INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency, "
        "started_at, trial_ends_at, ended_at, end_reason) VALUES "
        "(:tenant, :id, :plan, :status, :quantity, :price, :currency, :start, :trial, :end, :reason)",
        {
            "tenant": tenant, "id": sid, "plan": plan_id, "status": status, "quantity": quantity,
            "price": price, "currency": currency, "start": ts(start), "trial": ts(trial_ends),
            "end": ts(end), "reason": end_reason,
        },
    )
    return sid


def add_subscription_addon(
    conn: Engine | Connection,
    tenant: uuid.UUID,
    start: Instant,
    end: Instant | None = None,
    *,
    price: int,
    cycle: str = "month",
    quantity: int = 1,
    currency: str = "usd",
    addon_id: str | None = None,
    id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A ``subscription_addons`` row: ``price`` is unit_price_cents per billing cycle per unit."""
    addon_id = addon_id or f"addon_{cycle}_{currency}"
    add_addon_type(conn, addon_id, price=max(price, 0), cycle=cycle, currency=currency)
    aid = id or uuid.uuid4()
    _run(
        conn,
        "INSERT INTO subscription_addons (tenant_id, id, addon_id, quantity, unit_price_cents, currency, "
        "started_at, ended_at) VALUES (:tenant, :id, :addon, :quantity, :price, :currency, :start, :end)",
        {
            "tenant": tenant, "id": aid, "addon": addon_id, "quantity": quantity, "price": price,
            "currency": currency, "start": ts(start), "end": ts(end),
        },
    )
    return aid


def add_payment(
    conn: Engine | Connection,
    tenant: uuid.UUID,
    at: Instant,
    amount: int,
    *,
    stream: str = "subscription",
    currency: str = "usd",
    status: str = "succeeded",
    refunded: int = 0,
    fee: int | None = None,
    application_fee: int | None = None,
    stripe_account_id: str | None = None,
    stripe_charge_id: str | None = None,
    failure_code: str | None = None,
    id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A ``payments`` row (``amount`` gross, minor units)."""
    pid = id or uuid.uuid4()
    _run(
        conn,
        "INSERT INTO payments (tenant_id, id, revenue_stream, amount_cents, currency, status, refunded_cents, "
        "fee_cents, application_fee_cents, stripe_account_id, stripe_charge_id, failure_code, created_at) VALUES "
        "(:tenant, :id, :stream, :amount, :currency, :status, :refunded, :fee, :app_fee, :acct, :charge, "
        ":failure, :at)",
        {
            "tenant": tenant, "id": pid, "stream": stream, "amount": amount, "currency": currency,
            "status": status, "refunded": refunded, "fee": fee, "app_fee": application_fee,
            "acct": stripe_account_id, "charge": stripe_charge_id, "failure": failure_code, "at": ts(at),
        },
    )
    return pid


def add_emails(
    conn: Engine | Connection,
    tenant: uuid.UUID,
    at: Instant,
    count: int,
    *,
    status: str = "sent",
) -> None:
    """``count`` ``emails`` rows sent at ``at`` (one statement, generate_series)."""
    _run(
        conn,
        "INSERT INTO emails (tenant_id, id, status, sent_at) "
        "SELECT :tenant, gen_random_uuid(), :status, :at FROM generate_series(1, :n)",
        {"tenant": tenant, "status": status, "at": ts(at), "n": count},
    )


def add_fx_rate(
    conn: Engine | Connection, month: Instant, base: str, quote: str, rate: str | Decimal, *, source: str = "test"
) -> None:
    """A ``pmfin_fx_rates`` row: 1 ``base`` = ``rate`` ``quote`` (major units) in ``month``."""
    _run(
        conn,
        "INSERT INTO pmfin_fx_rates (month, base_currency, quote_currency, rate, source) "
        "VALUES (:month, :base, :quote, :rate, :source)",
        {"month": month_date(month), "base": base, "quote": quote, "rate": Decimal(str(rate)), "source": source},
    )


def add_cost(
    conn: Engine | Connection,
    month: Instant,
    category: str,
    amount: int,
    *,
    kind: str = "fixed",
    currency: str = "usd",
    source: str = "test",
) -> None:
    """A ``pmfin_costs`` row (``amount`` in minor units)."""
    _run(
        conn,
        "INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source) "
        "VALUES (:month, :category, :kind, :amount, :currency, :source)",
        {"month": month_date(month), "category": category, "kind": kind, "amount": amount,
         "currency": currency, "source": source},
    )


class Ledger:
    """All the helpers above bound to one transaction: ``with Ledger(engine) as led: ...``."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._cm = None
        self.conn: Connection | None = None

    def __enter__(self) -> Ledger:
        self._cm = self._engine.begin()
        self.conn = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        assert self._cm is not None
        self._cm.__exit__(*exc)
        self.conn = None

    def tenant(self, name: str, **kw: Any) -> uuid.UUID:
        return add_tenant(self.conn, name, **kw)

    def plan(self, plan_id: str, **kw: Any) -> str:
        return add_plan(self.conn, plan_id, **kw)

    def addon_type(self, addon_id: str, **kw: Any) -> str:
        return add_addon_type(self.conn, addon_id, **kw)

    def sub(self, tenant: uuid.UUID, start: Instant, end: Instant | None = None, **kw: Any) -> uuid.UUID:
        return add_subscription(self.conn, tenant, start, end, **kw)

    def addon(self, tenant: uuid.UUID, start: Instant, end: Instant | None = None, **kw: Any) -> uuid.UUID:
        return add_subscription_addon(self.conn, tenant, start, end, **kw)

    def payment(self, tenant: uuid.UUID, at: Instant, amount: int, **kw: Any) -> uuid.UUID:
        return add_payment(self.conn, tenant, at, amount, **kw)

    def emails(self, tenant: uuid.UUID, at: Instant, count: int, **kw: Any) -> None:
        add_emails(self.conn, tenant, at, count, **kw)

    def fx(self, month: Instant, base: str, quote: str, rate: str | Decimal, **kw: Any) -> None:
        add_fx_rate(self.conn, month, base, quote, rate, **kw)

    def cost(self, month: Instant, category: str, amount: int, **kw: Any) -> None:
        add_cost(self.conn, month, category, amount, **kw)
