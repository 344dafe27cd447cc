"""Find and remove the demo's data, and only the demo's data.

What the demo created is recorded in ``pmfin_demo_objects`` (kinds tenant, plan, addon,
system_config); its costs and FX rates carry ``source = 'demo'``. The demo tenants' rows go from
every tenant-scoped table: the contract's (``TENANT_TABLES``) and every one of pmfin's own, found
in the catalog when the reset runs (``own_tenant_tables``: each ``pmfin_*`` table with a
``tenant_id`` column), so a table added later is covered without being listed anywhere.
Everything else — tenants the demo did not create and all their rows, plans or add-ons that
non-demo rows still reference, a platform account id somebody changed — is left alone.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.migrate import existing_tables
from pmfin.demo.generator import platform_account
from pmfin.demo.loader import DEMO_SOURCE

LOCK_KEY = 0x706D66696E64  # "pmfind": one demo (or reset) at a time

# tenant-scoped contract tables, children before parents (tenant_config references tenants)
TENANT_TABLES = (
    ("emails", "tenant_id"),
    ("campaigns", "tenant_id"),
    ("payments", "tenant_id"),
    ("subscription_addons", "tenant_id"),
    ("subscriptions", "tenant_id"),
    ("ip_allocations", "tenant_id"),
    ("tenant_users", "tenant_id"),
    ("tenant_config", "tenant_id"),
    ("tenants", "id"),
)


@contextmanager
def exclusive(engine: Engine) -> Iterator[Connection]:
    """A connection holding the demo's session-level advisory lock for the whole run.

    The lock covers the schema creation too: a second demo waits here, before it takes any
    table lock, so two runs cannot deadlock or interleave. Released at the end (or when the
    connection dies).
    """
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        conn.commit()
        try:
            yield conn
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            conn.commit()


def foreign_tenants(conn: Connection) -> int:
    """Tenants the demo did not create (every tenant, where the demo never ran); 0 without a
    ``tenants`` table. Reads only: safe before the schema exists."""
    tables = existing_tables(conn)
    if "tenants" not in tables:
        return 0
    if "pmfin_demo_objects" not in tables:
        return conn.execute(text("SELECT count(*) FROM tenants")).scalar_one()
    return conn.execute(
        text(
            "SELECT count(*) FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM pmfin_demo_objects o "
            "WHERE o.kind = 'tenant' AND o.object_id = t.id::text)"
        )
    ).scalar_one()


def has_demo_objects(conn: Connection) -> bool:
    """Whether a demo ever wrote here (reads only; False before the schema exists)."""
    if "pmfin_demo_objects" not in existing_tables(conn):
        return False
    return conn.execute(text("SELECT EXISTS (SELECT 1 FROM pmfin_demo_objects)")).scalar_one()


_OWN_TENANT_TABLES = text(
    r"""
    SELECT c.table_name, c.data_type
    FROM information_schema.columns c
    JOIN information_schema.tables t
      ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE'
    WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id' AND c.table_name LIKE 'pmfin\_%'
    ORDER BY c.table_name
    """
)
_FOREIGN_KEYS = text(
    """
    SELECT child.relname, parent.relname
    FROM pg_constraint k
    JOIN pg_class child ON child.oid = k.conrelid
    JOIN pg_class parent ON parent.oid = k.confrelid
    WHERE k.contype = 'f' AND child.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
    """
)


def own_tenant_tables(conn: Connection) -> list[tuple[str, str]]:
    """(table, type of its tenant_id) for every ``pmfin_*`` table of this schema with a
    ``tenant_id`` column, read from the catalog now; a table that references another (a foreign
    key) comes before it, so deleting in this order never violates one."""
    tables = dict(conn.execute(_OWN_TENANT_TABLES).all())
    order = graphlib.TopologicalSorter({name: set() for name in tables})
    for child, parent in conn.execute(_FOREIGN_KEYS).all():
        if child in tables and parent in tables and child != parent:
            order.add(parent, child)  # the child's rows go first
    try:
        names = list(order.static_order())
    except graphlib.CycleError:  # tables referencing each other: rows cannot go one table at a time
        names = sorted(tables)
    return [(name, tables[name]) for name in names]


def clear(conn: Connection) -> dict[str, int]:
    """Delete every demo row; return rows removed per table (tables with none are left out)."""
    removed: dict[str, int] = {}
    conn.execute(
        text(
            "CREATE TEMP TABLE pmfin_demo_tenants ON COMMIT DROP AS "
            "SELECT object_id::uuid AS id FROM pmfin_demo_objects WHERE kind = 'tenant'"
        )
    )
    conn.execute(text("ANALYZE pmfin_demo_tenants"))
    for table, kind in own_tenant_tables(conn):  # pmfin's own first: they may refer to the contract's
        match = "x.tenant_id = d.id" if kind == "uuid" else "x.tenant_id::text = d.id::text"
        removed[table] = conn.execute(text(f'DELETE FROM "{table}" x USING pmfin_demo_tenants d WHERE {match}')).rowcount
    for table, column in TENANT_TABLES:
        removed[table] = conn.execute(
            text(f"DELETE FROM {table} x USING pmfin_demo_tenants d WHERE x.{column} = d.id")
        ).rowcount
    conn.execute(text("DROP TABLE pmfin_demo_tenants"))
    for kind, table, ref_table, ref_column in (
        ("plan", "plans", "subscriptions", "plan_id"),
        ("addon", "addons", "subscription_addons", "addon_id"),
    ):
        # only catalog rows no remaining (non-demo) row refers to; the others stay recorded
        gone = conn.execute(
            text(
                f"DELETE FROM {table} p USING pmfin_demo_objects o WHERE o.kind = :kind AND o.object_id = p.id "
                f"AND NOT EXISTS (SELECT 1 FROM {ref_table} r WHERE r.{ref_column} = p.id) RETURNING p.id"
            ),
            {"kind": kind},
        ).scalars().all()
        removed[table] = len(gone)
        conn.execute(
            text("DELETE FROM pmfin_demo_objects WHERE kind = :kind AND object_id = ANY(:ids)"),
            {"kind": kind, "ids": list(gone)},
        )
    # the platform account id: only while it still holds the value the demo wrote
    seeds = conn.execute(
        text("SELECT seed FROM pmfin_demo_objects WHERE kind = 'system_config' AND object_id = 'stripe_account_id'")
    ).scalars().all()
    removed["system_config"] = 0
    for seed in seeds:
        removed["system_config"] += conn.execute(
            text("DELETE FROM system_config WHERE key = 'stripe_account_id' AND value = :v"),
            {"v": platform_account(seed)},
        ).rowcount
    # the demo tenants' Stripe ids recorded as real (pmfin demo --stripe) go with their tenants
    conn.execute(text("DELETE FROM pmfin_demo_objects WHERE kind IN ('tenant', 'system_config', 'stripe_account', "
                      "'stripe_customer', 'stripe_invoice')"))
    removed["costs"] = conn.execute(text("DELETE FROM pmfin_costs WHERE source = :s"), {"s": DEMO_SOURCE}).rowcount
    removed["fx_rates"] = conn.execute(
        text("DELETE FROM pmfin_fx_rates WHERE source = :s"), {"s": DEMO_SOURCE}
    ).rowcount
    return {k: v for k, v in removed.items() if v}
