"""Writing many rows at once: ``COPY … FROM STDIN`` through psycopg 3, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.engine import Connection


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    """COPY ``rows`` (tuples in the order of ``columns``) into ``table``; the number of rows."""
    raw = conn.connection.driver_connection
    n = 0
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
                n += 1
    return n
