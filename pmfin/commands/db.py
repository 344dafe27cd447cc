"""``pmfin db``: which database pmfin uses, its data contract and pmfin's own migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from pmfin.context import get_app
from pmfin.lazy import lazy_module
from pmfin.output import Col, FormatOption, Format, note, render

migrate = lazy_module("pmfin.db.migrate")


app = typer.Typer(
    help="The database: which one is in use, the data contract, pmfin's own tables.",
    no_args_is_help=True,
)


@app.command("init")
def init_cmd(
    ctx: typer.Context,
    app_schema: Annotated[
        bool,
        typer.Option(
            "--app-schema",
            help="Also create the PenguinMails data-contract tables (tenants, subscriptions, payments, …) "
            "where missing: for local use, demos and tests. Existing tables are never altered.",
        ),
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Create or migrate pmfin's own pmfin_* tables (idempotent; safe to run twice at once)."""
    app_ctx = get_app(ctx)
    db = app_ctx.database
    result = migrate.init(db.engine, app_schema=app_schema)
    data = {
        "database": db.display_url,
        "embedded": db.embedded,
        "created_tables": result.created_tables,
        "from_revision": result.from_revision,
        "to_revision": result.to_revision,
        "changed": result.changed,
    }
    render(
        data,
        fmt,
        columns=[
            Col("database"),
            Col("embedded", kind="bool"),
            Col("created_tables", "contract tables created"),
            Col("from_revision", "revision before"),
            Col("to_revision", "revision now"),
            Col("changed", kind="bool"),
        ],
        title="pmfin db init",
    )


@app.command("status")
def status_cmd(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Show the database in use (password masked), the migration state and the contract tables."""
    app_ctx = get_app(ctx)
    db = app_ctx.database
    st = migrate.status(db.engine)
    data = {
        "database": db.display_url,
        "embedded": db.embedded,
        "data_directory": str(app_ctx.settings.home) if db.embedded else None,
        "current_revision": st.current_revision,
        "head_revision": st.head_revision,
        "pending_migrations": st.pending,
        "up_to_date": st.up_to_date,
        "contract_tables_present": len(st.contract_present),
        "contract_tables_missing": st.contract_missing,
        "pmfin_tables": st.pmfin_tables,
    }
    render(
        data,
        fmt,
        columns=[
            Col("database"),
            Col("embedded", kind="bool"),
            Col("data_directory", "data directory"),
            Col("current_revision", "revision"),
            Col("head_revision", "latest revision"),
            Col("pending_migrations", "pending migrations"),
            Col("up_to_date", "up to date", kind="bool"),
            Col("contract_tables_present", "contract tables present", kind="int"),
            Col("contract_tables_missing", "contract tables missing"),
            Col("pmfin_tables", "pmfin tables"),
        ],
        title="pmfin db status",
    )
    if fmt is Format.table and not st.up_to_date:
        note("run `pmfin db init` to bring pmfin's tables up to date")


@app.command("url")
def url_cmd(ctx: typer.Context) -> None:
    """Print the libpq URL of the database in use, for psql (the password is masked)."""
    db = get_app(ctx).database
    typer.echo(db.display_url)


@app.command("stop")
def stop_cmd(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL server (the next pmfin command starts it again)."""
    from pmfin.db import embedded

    settings = get_app(ctx).settings
    if settings.database_url:
        note("a DATABASE_URL is configured: there is no embedded server to stop")
        return
    stopped = embedded.stop(settings.home)
    note("embedded PostgreSQL stopped" if stopped else "the embedded PostgreSQL was not running")
