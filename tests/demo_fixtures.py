"""Helpers for the ``pmfin demo`` tests: fresh schemas, table fingerprints, row counts."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from pmfin.db import migrate
from pmfin.db.url import normalize

# a small history that still has every feature (checked by test_demo_features); 2025-06 is in the past
SMALL = ("--tenants", "120", "--months", "14", "--seed", "7", "--end", "2025-06")

# every table the demo writes, with the columns that are the demo's content
# (pmfin_demo_objects.created_at records when the demo ran, so it is not content)
DEMO_TABLES: dict[str, str] = {
    **{t: "x" for t in migrate.CONTRACT_TABLES},
    "pmfin_costs": "x",
    "pmfin_fx_rates": "x",
    "pmfin_demo_objects": "(x.kind, x.object_id, x.seed)",
}


def new_schema(pg_base_url: str) -> tuple[str, str]:
    """A fresh schema with the contract and pmfin's tables: (its name, a URL on it)."""
    from conftest import with_search_path

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize(pg_base_url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    admin.dispose()
    url = with_search_path(pg_base_url, name)
    eng = create_engine(normalize(url))
    migrate.init(eng, app_schema=True)
    eng.dispose()
    return name, url


def drop_schema(pg_base_url: str, name: str) -> None:
    admin = create_engine(normalize(pg_base_url))
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


def fingerprint(engine: Engine, where: str = "true") -> dict[str, str]:
    """md5 over every row of every demo-written table (rows in a canonical order)."""
    out = {}
    with engine.connect() as conn:
        for table, expr in DEMO_TABLES.items():
            out[table] = conn.execute(
                text(f"SELECT md5(coalesce(string_agg(({expr})::text, '|' ORDER BY ({expr})::text), '')) "
                     f"FROM {table} x WHERE {where}")
            ).scalar_one()
    return out


def counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the schema (contract and pmfin_*)."""
    with engine.connect() as conn:
        tables = sorted(migrate.existing_tables(conn))
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in tables}


def add_foreign_tenant(engine: Engine) -> uuid.UUID:
    """A tenant the demo did not create, with a seat, a config, a campaign, an email and a payment."""
    tid = uuid.UUID("00000000-0000-4000-8000-00000000f0f0")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tenants (id, name, created) VALUES (:t, 'Real Customer Inc', '2024-05-01')"),
                     {"t": tid})
        conn.execute(text("INSERT INTO tenant_config (tenant_id, billing_email, stripe_customer_id) "
                          "VALUES (:t, 'ap@real.example', 'cus_REAL0001')"), {"t": tid})
        conn.execute(text("INSERT INTO tenant_users (tenant_id, user_id, email) VALUES (:t, :u, 'me@real.example')"),
                     {"t": tid, "u": uuid.uuid4()})
        cid = uuid.uuid4()
        conn.execute(text("INSERT INTO campaigns (tenant_id, id, name) VALUES (:t, :c, 'real')"), {"t": tid, "c": cid})
        conn.execute(text("INSERT INTO emails (tenant_id, id, campaign_id, status, sent_at) "
                          "VALUES (:t, :e, :c, 'sent', '2025-03-03')"), {"t": tid, "e": uuid.uuid4(), "c": cid})
        conn.execute(text("INSERT INTO payments (tenant_id, id, revenue_stream, amount_cents, currency, status, "
                          "created_at) VALUES (:t, :p, 'services', 50000, 'usd', 'succeeded', '2025-03-04')"),
                     {"t": tid, "p": uuid.uuid4()})
    return tid
