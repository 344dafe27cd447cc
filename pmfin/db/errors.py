"""Database exceptions pmfin can explain in one line."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from pmfin.errors import DatabaseError, PmfinError


def translate(exc: BaseException) -> PmfinError | None:
    """A PmfinError for a database failure a person can act on, else None (a bug: let it raise)."""
    if isinstance(exc, PmfinError):
        return exc
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or ""
    first = str(orig or exc).strip().splitlines()[0] if str(orig or exc).strip() else type(exc).__name__
    if isinstance(exc, sa_exc.OperationalError) and sqlstate in ("", "08001", "08006", "08004", "57P03", "28P01", "28000", "3D000"):
        return DatabaseError(f"cannot connect to the database: {first}", detail=str(exc))
    if sqlstate == "42P01":  # undefined_table
        return DatabaseError(
            f"{first} — run `pmfin db init` (and `--app-schema` for the platform tables on a local database)",
            detail=str(exc),
        )
    if sqlstate == "42703":  # undefined_column
        return DatabaseError(f"the database does not match the data contract: {first}", detail=str(exc))
    if sqlstate == "22003":  # numeric_value_out_of_range: an amount beyond what pmfin can add up
        return DatabaseError(f"a value in the database is out of range: {first}", detail=str(exc))
    if sqlstate in ("42501",):  # insufficient_privilege
        return DatabaseError(f"permission denied: {first}", detail=str(exc))
    # Anything else the database refused (a constraint, a trigger, a read-only role): one line,
    # the database's own words; --verbose shows the statement.
    return DatabaseError(f"database error: {first}", detail=str(exc))
