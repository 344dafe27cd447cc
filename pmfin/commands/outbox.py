"""``pmfin outbox``: requests queued while Stripe could not be reached, and emails waiting for SMTP."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import stripe_client
from pmfin.context import get_app
from pmfin.errors import ProblemsFound
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections

service = lazy_module("pmfin.stripe_ops.outbox")
notify = lazy_module("pmfin.notify")

app = typer.Typer(
    help="The outbox: requests a person asked for with --queue while Stripe could not be reached "
    "(`invoices pay`, `connect create`), sent once each by `pmfin outbox flush` under their idempotency "
    "keys; and the emails still waiting for SMTP.",
    no_args_is_help=True,
)

COLUMNS = [Col("id", kind="int"), Col("kind"), Col("status"), Col("created_at", "queued"), Col("queued_by", "by"),
           Col("params"), Col("attempts", kind="int"), Col("last_error", "last error"), Col("idempotency_key", "key")]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option("--status", help="queued, done or failed.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Queued, done and failed requests (newest first), and the emails not sent yet."""
    engine = get_app(ctx).engine
    items = service.list_items(engine, status=status)
    emails = notify.list_notifications(engine, pending=True)
    email_cols = [Col("created_at", "created"), Col("kind"), Col("recipient"), Col("subject"), Col("attempts", kind="int"),
                  Col("last_error", "last error")]
    if fmt is Format.json:
        render({"requests": items, "pending_emails": emails}, fmt)
        return
    import json

    rows = [{**vars(i), "params": json.dumps(i.params)} for i in items]
    render_sections([("Outbox: requests", rows, COLUMNS), ("Outbox: emails waiting for SMTP", emails, email_cols)], fmt)


@app.command("flush")
def flush_cmd(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Send every queued request, oldest first, each once under its idempotency key (two flushes
    at once never send one twice). Exit 1 when Stripe still cannot be reached (the rest stay
    queued) or Stripe refused some (marked failed)."""
    app_ctx = get_app(ctx)
    report = service.flush(app_ctx.engine, lambda: stripe_client(app_ctx), app_ctx.settings)
    rows = [{"id": i.id, "kind": i.kind, "result": "sent", "error": None} for i in report.done] + \
           [{"id": i.id, "kind": i.kind, "result": "refused", "error": e} for i, e in report.failed]
    render(rows, fmt, columns=[Col("id", kind="int"), Col("kind"), Col("result"), Col("error")], title="Outbox flush")
    if report.pending_emails and fmt is Format.table:
        note(f"{report.pending_emails} email(s) wait for SMTP: `pmfin notifications send`")
    if report.stopped:
        raise ProblemsFound(f"{report.stopped}; the rest stay queued")
    if report.failed:
        raise ProblemsFound(f"Stripe refused {len(report.failed)} queued request(s) (marked failed; see the list above)")
