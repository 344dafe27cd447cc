"""``pmfin notifications``: the emails and dashboard alerts pmfin records for tenants."""

from __future__ import annotations

from typing import Annotated

import typer

from pmfin.commands.common import TenantOption, parse_tenant
from pmfin.context import get_app
from pmfin.errors import ConfigError, PmfinError
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render

service = lazy_module("pmfin.notify")

app = typer.Typer(
    help="Notifications (an email to the tenant's billing contact and a dashboard alert per event): "
    "list them, send the pending emails.",
    no_args_is_help=True,
)

COLUMNS = [
    Col("created_at", "created"),
    Col("tenant_id", "tenant"),
    Col("kind"),
    Col("severity"),
    Col("subject"),
    Col("recipient"),
    Col("email_status", "email"),
    Col("attempts", kind="int"),
    Col("last_error", "last error"),
]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only emails not sent yet.")] = False,
    tenant: TenantOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many, newest first.")] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """Notifications newest first: kind, severity, subject, recipient, email status."""
    tenant_id = parse_tenant(tenant)
    rows = service.list_notifications(get_app(ctx).engine, pending=pending, tenant_id=tenant_id, limit=limit)
    render(rows, fmt, columns=COLUMNS if fmt is Format.table else [Col("id"), Col("key"), *COLUMNS, Col("invoice_id"), Col("sent_at")],
           title="Pending emails" if pending else "Notifications")


@app.command("send")
def send_cmd(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
    """Send every pending email over SMTP (each exactly once, also with two senders at once).

    Exit 0 all sent; 1 the SMTP server could not be reached (the rest stay pending for the next
    try); 2 no SMTP configured or it rejected pmfin's settings."""
    app_ctx = get_app(ctx)
    settings = app_ctx.settings
    if settings.smtp is None:
        raise ConfigError("no SMTP server configured: set PMFIN_SMTP_HOST and PMFIN_SMTP_FROM to send emails")
    report = service.send_pending(app_ctx.engine, settings.smtp)
    render({"sent": len(report.sent), "refused": len(report.refused), "pending": report.pending, "error": report.error},
           fmt, columns=[Col("sent", kind="int"), Col("refused", kind="int"), Col("pending", kind="int"), Col("error")],
           title="Emails")
    for key, reason in report.refused:
        note(f"refused for good: {key}: {reason}")
    if report.error:
        raise PmfinError(report.error + (f" ({report.pending} still pending)" if report.pending else ""),
                         exit_code=2 if report.config_error else 1)
