"""``pmfin usage``: usage against plan limits, and the alerts at 80 % and 100 % (seed: Usage Tracking & Alerts)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import TenantOption, parse_tenant
from pmfin.context import get_app
from pmfin.errors import ProblemsFound, UsageError
from pmfin.lazy import lazy_module
from pmfin.months import Month
from pmfin.output import Col, Format, FormatOption, note, render, warn

usage = lazy_module("pmfin.metrics.usage")
alerts_service = lazy_module("pmfin.usage_alerts")

app = typer.Typer(
    help="Usage against plan limits — emails sent this month, seats, dedicated IPs, IP reputation — and the "
    "alerts at a threshold (80 %) and at the limit, told once per tenant, metric, threshold and month.",
    no_args_is_help=True,
)

MonthOption = Annotated[Optional[str], typer.Option("--month", "-m", help="Month YYYY-MM (UTC). Default: the current month (so far).", show_default=False)]

REPORT_COLUMNS = [
    Col("tenant"), Col("plan"),
    Col("emails_sent", "emails", kind="int"), Col("email_limit", "limit", kind="int"), Col("email_share", "used", kind="ratio"),
    Col("seats", kind="int"), Col("seat_limit", "limit", kind="int"), Col("seat_share", "used", kind="ratio"),
    Col("ips", "IPs", kind="int"), Col("ip_limit", "limit", kind="int"), Col("ip_share", "used", kind="ratio"),
    Col("avg_reputation", "IP reputation", kind="decimal"),
]
DATA_COLUMNS = [Col("tenant_id"), Col("tenant_name"), Col("month"), Col("as_of"), Col("plan_id"), Col("emails_sent"),
                Col("email_limit"), Col("email_share"), Col("seats"), Col("seat_limit"), Col("seat_share"), Col("ips"),
                Col("ip_limit"), Col("ip_share"), Col("avg_reputation")]


def _month(text: str | None) -> Month:
    current = Month.current()
    if text is None:
        return current
    m = Month.parse(text, flag="--month")
    if m > current:
        raise UsageError(f"--month must not be after the current month ({current}), got '{m}'")
    return m


@app.command("report")
def report_cmd(ctx: typer.Context, month: MonthOption = None, tenant: TenantOption = None, fmt: FormatOption = Format.table) -> None:
    """Per tenant: emails sent in the month against the plan's email limit, seats against the seat
    limit, allocated IPs against the IP limit, each with the share used, and the average IP
    reputation (seats and IPs at the end of the month, or now for the current one). One
    set-based query."""
    m = _month(month)
    tenant_id = parse_tenant(tenant)
    with get_app(ctx).engine.connect() as conn:
        rows = usage.tenant_usage(conn, m, tenant_ids=[str(tenant_id)] if tenant_id else None)
    if tenant_id and not rows:
        raise UsageError(f"no tenant with id {tenant_id} (or it was deleted before {m})")
    if fmt is Format.table:
        render([{**vars(r), "tenant": r.tenant_name or r.tenant_id, "plan": r.plan_name or r.plan_id} for r in rows], fmt,
               columns=REPORT_COLUMNS, title=f"Usage against plan limits, {m}")
    else:
        render(rows, fmt, columns=DATA_COLUMNS)


ALERT_COLUMNS = [Col("tenant"), Col("plan"), Col("metric"), Col("used", kind="int"), Col("limit", kind="int"),
                 Col("share", "used", kind="ratio"), Col("level"), Col("told")]


@app.command("alerts")
def alerts_cmd(
    ctx: typer.Context,
    month: MonthOption = None,
    threshold: Annotated[str, typer.Option("--threshold", help="The share that warns (0.8 = 80 %); at 1 (100 %) the limit is told.")] = "0.8",
    notify: Annotated[bool, typer.Option("--notify", help="Tell each tenant (email + dashboard alert), once per tenant, metric, threshold and month.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Tenants at or above the threshold of a limit, and at the limit. With --notify each is told
    through the notification mechanism — once, however often cron runs it. Exit 1 only when
    emails could not be sent (they stay pending)."""
    m = _month(month)
    t = alerts_service.parse_threshold(threshold)
    app_ctx = get_app(ctx)
    report = alerts_service.run(app_ctx.engine, app_ctx.settings, m, threshold=t, notify=notify)
    new = set(report.new)
    rows = [{**vars(a), "tenant": a.tenant_name or a.tenant_id, "key": a.key,
             "told": ("now" if a.key in new else "before") if notify else "—"} for a in report.alerts]
    if fmt is Format.table:
        render(rows, fmt, columns=ALERT_COLUMNS, title=f"Usage alerts, {m} (threshold {t * 100:.0f}%)")
        if notify:
            note(f"{len(new)} tenant alert(s) told now, {len(rows) - len(new)} told before")
            if app_ctx.settings.smtp is None:
                warn("no SMTP configured (PMFIN_SMTP_HOST): notifications are dashboard alerts only")
    else:
        render(rows, fmt, columns=[Col("tenant_id"), Col("tenant_name"), Col("month"), Col("metric"), Col("used"), Col("limit"),
                                   Col("share"), Col("level"), Col("key"), Col("told")])
    n = report.notifications
    if n is not None and not n.ok:
        raise ProblemsFound(f"emails not sent: {n.error} ({n.pending} pending for `pmfin notifications send`)")
