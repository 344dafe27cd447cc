"""Reading pmfin's own tables on a database where `pmfin db init` has not run.

A read-only replica of the platform's database holds the data contract but not pmfin's
``pmfin_*`` tables, and reports must still work there. ``readable`` gives the SQL of a report
with each missing table it reads replaced by an empty relation of the same shape: no FX rates
(amounts in other currencies are then left out with the usual warning), no imported costs (the
finance reports say so), no demo (``pmfin.demo.marks``). Writes (imports, sync, demo) still need
``pmfin db init``. A table is read by its plain name (``FROM pmfin_costs WHERE …``, no alias).
"""

from __future__ import annotations

import re

from sqlalchemy import TextClause, text
from sqlalchemy.engine import Connection

from pmfin.db.migrate import existing_tables

# Every column of each table, typed: the empty stand-in has the table's shape.
EMPTY = {
    "pmfin_fx_rates": "(SELECT NULL::date AS month, NULL::char(3) AS base_currency, NULL::char(3) AS quote_currency, "
    "NULL::numeric AS rate, NULL::text AS source, NULL::timestamptz AS imported_at WHERE false)",
    "pmfin_costs": "(SELECT NULL::date AS month, NULL::text AS category, NULL::text AS kind, NULL::bigint AS amount_cents, "
    "NULL::char(3) AS currency, NULL::text AS source, NULL::timestamptz AS imported_at WHERE false)",
    "pmfin_demo_objects": "(SELECT NULL::text AS kind, NULL::text AS object_id, NULL::timestamptz AS created_at, "
    "NULL::bigint AS seed WHERE false)",
}


def missing(conn: Connection) -> set[str]:
    """pmfin's own tables that reports read and this database lacks."""
    return set(EMPTY) - existing_tables(conn)


def readable(conn: Connection, sql: str) -> TextClause:
    """``text(sql)``, with each pmfin table it reads that this database lacks read as empty."""
    for name in missing(conn) if any(name in sql for name in EMPTY) else ():
        sql = re.sub(rf"\b{name}\b", f"{EMPTY[name]} AS {name}", sql)
    return text(sql)
