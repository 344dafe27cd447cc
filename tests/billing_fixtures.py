"""Small builders for the invoice, dunning and notification tests: tenants with a Stripe customer,
failed payments as the platform records them, and readers of pmfin's tables."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from sqlalchemy import text

UTC = dt.timezone.utc


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=UTC) if "+" not in text_ else dt.datetime.fromisoformat(text_)


def add_tenant(engine, name: str = "Acme", *, email: str | None = "billing@acme.example", customer: str | None = None,
               status: str = "active") -> str:
    tenant_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name) VALUES (:id, :name)"), {"id": tenant_id, "name": name})
        conn.execute(
            text("INSERT INTO tenant_config (tenant_id, billing_email, stripe_customer_id, billing_status) "
                 "VALUES (:id, :email, :customer, :status)"),
            {"id": tenant_id, "email": email, "customer": customer, "status": status},
        )
    return tenant_id


def fail_payment(engine, tenant_id: str, invoice_id: str, when: dt.datetime, *, amount: int = 4900,
                 currency: str = "usd", code: str = "card_declined") -> None:
    """A failed payment of ``invoice_id`` as the platform records it in ``payments``."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO payments (tenant_id, id, stripe_invoice_id, revenue_stream, amount_cents, currency, status,
                                      failure_code, failure_message, created_at)
                VALUES (:t, :id, :inv, 'subscription', :amount, :currency, 'failed', :code, 'declined', :when)
                """
            ),
            {"t": tenant_id, "id": str(uuid.uuid4()), "inv": invoice_id, "amount": amount, "currency": currency,
             "code": code, "when": when},
        )


def billing_status(engine, tenant_id: str) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT billing_status FROM tenant_config WHERE tenant_id = :t"), {"t": tenant_id}).scalar_one()


def case_row(engine, invoice_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM pmfin_dunning_cases WHERE invoice_id = :i"), {"i": invoice_id}).mappings().one_or_none()
    return dict(row) if row else None


def slots(engine, invoice_id: str) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT slot, outcome FROM pmfin_dunning_slots WHERE invoice_id = :i ORDER BY slot"),
                                 {"i": invoice_id}).all())


def attempts(engine, invoice_id: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            text("SELECT * FROM pmfin_payment_attempts WHERE invoice_id = :i ORDER BY id"), {"i": invoice_id}).mappings()]


def notifications(engine, tenant_id: str | None = None) -> list[dict]:
    sql = "SELECT * FROM pmfin_notifications" + (" WHERE tenant_id = :t" if tenant_id else "") + " ORDER BY id"
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), {"t": tenant_id}).mappings()]


def alerts(engine, tenant_id: str, *, open_only: bool = False) -> list[dict]:
    sql = "SELECT * FROM pmfin_alerts WHERE tenant_id = :t" + (" AND resolved_at IS NULL" if open_only else "") + " ORDER BY id"
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), {"t": tenant_id}).mappings()]


def table_counts(engine) -> dict[str, int]:
    """Rows in every pmfin_* table and in tenant_config's billing columns: for 'nothing was written'."""
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name LIKE 'pmfin\\_%' AND table_name <> 'pmfin_alembic_version'"))]
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in sorted(tables)}
        counts["billing_status"] = json.dumps(sorted(
            (str(a), b) for a, b in conn.execute(text("SELECT tenant_id, billing_status FROM tenant_config"))))
    return counts
