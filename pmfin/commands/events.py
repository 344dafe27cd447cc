"""``pmfin events`` and ``pmfin webhooks``: Stripe's events, by webhook or by sync, through one pipeline."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import progress, stripe_client
from pmfin.context import get_app
from pmfin.errors import ConfigError, ProblemsFound
from pmfin.instants import parse_instant
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, warn

service = lazy_module("pmfin.stripe_ops.events")

app = typer.Typer(
    help="Stripe's events: sync them (for cron, or to catch up after the receiver was down), list, show and "
    "replay them. Webhook deliveries and synced events go through the same pipeline, each handled once.",
    no_args_is_help=True,
)
webhooks_app = typer.Typer(help="The webhook receiver for Stripe's events.", no_args_is_help=True)

EVENT_COLUMNS = [Col("id"), Col("type"), Col("created"), Col("received_at", "received"), Col("processed_at", "processed"),
                 Col("attempts", kind="int"), Col("error")]
JSON_COLUMNS = [Col("id"), Col("type"), Col("created"), Col("received_at"), Col("processed_at"), Col("attempts"),
                Col("error")]
HANDLED = [Col("event_id", "event"), Col("type"), Col("result"), Col("error")]


def _handled_problems(report) -> None:
    if report is None:
        return
    if report.stopped:
        raise ProblemsFound(f"{report.stopped}; the remaining events stay pending")
    if report.failed:
        raise ProblemsFound(f"{len(report.failed)} event(s) could not be handled (see `pmfin events list --failed`)")


@app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option("--since", metavar="TIMESTAMP", help="Fetch the events created since this instant (ISO 8601) instead of those after the stored cursor. Default: the cursor; the first time, the 30 days Stripe keeps.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Fetch Stripe's events newer than the last one synced (GET /v1/events, forward from a stored
    cursor), store them and handle them — for cron where webhooks cannot reach, and to catch up
    after the receiver was down. Exit 1 when some could not be handled."""
    start = parse_instant(since, flag="--since") if since is not None else None
    app_ctx = get_app(ctx)
    with progress("syncing events", enabled=fmt is Format.table) as advance:
        report = service.sync(app_ctx.engine, stripe_client(app_ctx), app_ctx.settings, since=start,
                              on_page=lambda n: advance(None, n, 0))
    if report.warning:
        warn(report.warning)
    handled = report.processed.handled if report.processed else []
    summary = {"fetched": report.fetched, "new": report.new, "handled": len(handled),
               "failed": len([h for h in handled if h.error]), "cursor": report.cursor, "cursor_created": report.cursor_created}
    if fmt is Format.json:
        render({**summary, "warning": report.warning, "events": handled}, fmt)
    else:
        render_sections([("Events sync", summary, None), ("Handled", handled, HANDLED)], fmt)
    _handled_problems(report.processed)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    failed: Annotated[bool, typer.Option("--failed", help="Only events whose handling failed (not processed).")] = False,
    type_: Annotated[Optional[str], typer.Option("--type", metavar="T", help="Only this type (e.g. invoice.paid, or invoice.* ).", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many, newest first.")] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """Stored events, newest first: id, type, created, received, processed, attempts, error."""
    rows = service.list_events(get_app(ctx).engine, failed=failed, type_=type_, limit=limit)
    render(rows, fmt, columns=EVENT_COLUMNS if fmt is Format.table else JSON_COLUMNS, title="Stripe events")


@app.command("show")
def show_cmd(ctx: typer.Context, event: Annotated[str, typer.Argument(metavar="ID", help="The event id (evt_…).")],
             fmt: FormatOption = Format.table) -> None:
    """One stored event: its record and the payload as received."""
    row, payload = service.get_event(get_app(ctx).engine, service.parse_event_id(event))
    if fmt is Format.json:
        render({"event": row, "payload": payload}, fmt)
        return
    render(row, fmt, columns=[*EVENT_COLUMNS, Col("source"), Col("account"), Col("result")], title=f"Event {row.id}")
    if fmt is Format.table:
        import json

        note(json.dumps(payload, indent=2)[:4000])


@app.command("replay")
def replay_cmd(
    ctx: typer.Context,
    event: Annotated[Optional[str], typer.Argument(metavar="[ID]", help="The event to handle again.", show_default=False)] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Handle every failed event again.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Handle an event again (its handler acts on the object's current state, so this is safe), or
    with --failed every event whose handling failed. Exit 1 when some still fail."""
    from pmfin.errors import UsageError

    if (event is None) == (not failed):
        raise UsageError("give an event id, or --failed for every failed event (not both)")
    event_id = service.parse_event_id(event) if event is not None else None
    app_ctx = get_app(ctx)
    report = service.replay(app_ctx.engine, lambda: stripe_client(app_ctx), app_ctx.settings, event_id=event_id, failed=failed)
    render(report.handled, fmt, columns=HANDLED, title="Replayed")
    _handled_problems(report)


@webhooks_app.command("serve")
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    no_process: Annotated[bool, typer.Option("--no-process", help="Only store events; handle them elsewhere (`pmfin events replay`, or a receiver with processing).")] = False,
) -> None:
    """Receive Stripe's webhooks on POST /api/webhooks/stripe: the signature is checked
    (STRIPE_WEBHOOK_SECRET; several, comma-separated, during a rotation), the event stored, 200
    answered at once, and the event handled by a worker. GET /healthz for the load balancer.
    SIGTERM stops it gracefully: no accepted event is lost."""
    app_ctx = get_app(ctx)
    settings = app_ctx.settings
    if not settings.webhook_secrets:
        raise ConfigError("no webhook signing secret: set STRIPE_WEBHOOK_SECRET (whsec_…, from the Stripe Dashboard → "
                          "Developers → Webhooks → the endpoint)")
    engine = app_ctx.engine
    from pmfin.db.migrate import require_contract

    with engine.connect() as conn:
        require_contract(conn, ("pmfin_events",))
    from pmfin.webhooks import serve

    serve(engine, settings, lambda: app_ctx.stripe, host=host, port=port, process=not no_process)
