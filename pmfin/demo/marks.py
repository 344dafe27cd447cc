"""Which Stripe ids are the demo's made-up ones — the one rule, for every service that talks to Stripe.

``pmfin demo`` writes Stripe ids for its tenants that exist nowhere at Stripe: connected accounts
(``acct_<16 hex>``), customers (``cus_…``) and invoices (``in_…``). A Stripe id of a row is
**made up** when the row belongs to a tenant the demo created (``pmfin_demo_objects``, kind
``tenant``) — unless that exact id is recorded in ``pmfin_demo_objects`` under its own kind
(``stripe_account``, ``stripe_customer``, ``stripe_invoice``): a real test-mode object that was
created at Stripe for the demo tenant (what ``pmfin demo --stripe`` is to record).

Services that would send such an id to Stripe skip it instead (``connect sync`` does, with a
note). Use ``made_up_sql`` inside a query, ``is_made_up`` for one id. Both read
``pmfin_demo_objects`` by its plain name, so ``pmfin.db.own.readable`` can stand in an empty table
where it does not exist.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from pmfin.db.own import readable

# the kind of Stripe object → its kind in pmfin_demo_objects when it is real
KINDS = {"account": "stripe_account", "customer": "stripe_customer", "invoice": "stripe_invoice"}


def made_up_sql(tenant_id: str, stripe_id: str, kind: str) -> str:
    """An SQL predicate: the Stripe id ``stripe_id`` (an SQL expression) of a row of tenant
    ``tenant_id`` (an SQL expression, uuid or text) is one the demo made up. ``kind``: account,
    customer or invoice."""
    real = KINDS[kind]
    return (
        f"(EXISTS (SELECT 1 FROM pmfin_demo_objects WHERE kind = 'tenant' AND object_id = ({tenant_id})::text) "
        f"AND NOT EXISTS (SELECT 1 FROM pmfin_demo_objects WHERE kind = '{real}' AND object_id = ({stripe_id})))"
    )


def is_made_up(conn: Connection, tenant_id: object, stripe_id: str, kind: str) -> bool:
    """Whether ``stripe_id`` of tenant ``tenant_id`` is a made-up demo id (``made_up_sql``, for one id)."""
    sql = f"SELECT {made_up_sql('CAST(:tenant AS text)', 'CAST(:stripe_id AS text)', kind)}"
    return bool(conn.execute(readable(conn, sql), {"tenant": str(tenant_id), "stripe_id": stripe_id}).scalar_one())
