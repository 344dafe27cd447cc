"""``pmfin db init`` / ``pmfin db status``: the data contract and pmfin's own migrations.

pmfin's own tables (all ``pmfin_*``) are versioned with Alembic; its version table is
``pmfin_alembic_version``. Both the contract DDL and the migrations run in one transaction
under a transaction-scoped advisory lock, so two ``db init`` at once are safe and a re-run is
a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

VERSION_TABLE = "pmfin_alembic_version"
_LOCK_KEY = 0x706D66696E  # "pmfin"

CONTRACT_TABLES = (
    "tenants",
    "tenant_users",
    "tenant_config",
    "system_config",
    "plans",
    "addons",
    "subscriptions",
    "subscription_addons",
    "payments",
    "campaigns",
    "emails",
    "ip_allocations",
)


@dataclass
class InitResult:
    created_tables: list[str] = field(default_factory=list)
    from_revision: str | None = None
    to_revision: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.created_tables) or self.from_revision != self.to_revision


@dataclass
class Status:
    current_revision: str | None
    head_revision: str | None
    pending: list[str]
    contract_present: list[str]
    contract_missing: list[str]
    pmfin_tables: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.pending and self.current_revision is not None


def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def _script():
    from alembic.script import ScriptDirectory

    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return ScriptDirectory.from_config(cfg)


def existing_tables(conn: Connection) -> set[str]:
    rows = conn.execute(
        text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    )
    return {r[0] for r in rows}


def current_revision(conn: Connection) -> str | None:
    """The applied revision(s), ``+``-joined when branches are applied side by side."""
    if VERSION_TABLE not in existing_tables(conn):
        return None
    rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE} ORDER BY version_num")).all()
    return "+".join(r[0] for r in rows) if rows else None


def head_revision() -> str | None:
    return "+".join(sorted(_script().get_heads())) or None


def app_schema_sql() -> str:
    return resources.files("pmfin.db").joinpath("app_schema.sql").read_text()


def init(engine: Engine, *, app_schema: bool = False) -> InitResult:
    from alembic import command

    result = InitResult()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        before = existing_tables(conn)
        if app_schema:
            conn.exec_driver_sql(app_schema_sql())
            after = existing_tables(conn)
            result.created_tables = [t for t in CONTRACT_TABLES if t in after and t not in before]
        result.from_revision = current_revision(conn)
        command.upgrade(_alembic_config(conn), "heads")
        result.to_revision = current_revision(conn)
    return result


def status(engine: Engine) -> Status:
    with engine.connect() as conn:
        tables = existing_tables(conn)
        current = current_revision(conn)
    script = _script()
    head = head_revision()
    applied: set[str] = set()
    for rev_id in (current or "").split("+"):
        if rev_id:
            applied.update(r.revision for r in script.iterate_revisions(rev_id, "base"))
    pending = [r.revision for r in script.walk_revisions() if r.revision not in applied]
    pending.reverse()
    return Status(
        current_revision=current,
        head_revision=head,
        pending=pending,
        contract_present=[t for t in CONTRACT_TABLES if t in tables],
        contract_missing=[t for t in CONTRACT_TABLES if t not in tables],
        pmfin_tables=sorted(t for t in tables if t.startswith("pmfin_")),
    )


def require_contract(conn: Connection, tables: tuple[str, ...] = CONTRACT_TABLES) -> None:
    """DatabaseError (exit 2) naming the tables this database lacks, and the command that helps:
    the platform's contract tables come from the platform (or ``--app-schema`` locally); pmfin's
    own ``pmfin_*`` tables from ``pmfin db init``."""
    from pmfin.errors import DatabaseError

    present = existing_tables(conn)
    missing = [t for t in tables if t not in present]
    if not missing:
        return
    contract = [t for t in missing if not t.startswith("pmfin_")]
    own = [t for t in missing if t.startswith("pmfin_")]
    if contract:
        raise DatabaseError(
            f"missing table{'s' if len(contract) > 1 else ''} {', '.join(contract)} — this is not a PenguinMails "
            "database, or run `pmfin db init --app-schema` to create the data contract locally"
        )
    raise DatabaseError(
        f"pmfin's own table{'s are' if len(own) > 1 else ' is'} missing ({', '.join(own)}) — "
        "run `pmfin db init` once on this database (it creates only pmfin_* tables)"
    )
