"""``pmfin disputes``: chargebacks, their deadlines, and evidence from the platform's own data."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import YesOption, confirm, stripe_client
from pmfin.context import get_app
from pmfin.instants import parse_date
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, warn

service = lazy_module("pmfin.stripe_ops.disputes")

app = typer.Typer(
    help="Disputes (chargebacks): sync them from Stripe (a new one is told at once to the tenant and to finance), "
    "list them by deadline, and assemble and stage the evidence from the platform's own records.",
    no_args_is_help=True,
)

DisputeArg = Annotated[str, typer.Argument(metavar="ID", help="Stripe dispute id (du_… or dp_…).", show_default=False)]

LIST_COLUMNS = [
    Col("due"),
    Col("id"),
    Col("tenant"),
    Col("amount", kind="money"),
    Col("reason"),
    Col("status"),
    Col("due_by", "evidence due by"),
    Col("days_left", "days left", kind="int"),
    Col("charge_id", "charge"),
]


@app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option("--since", help="Disputes created on or after this date (YYYY-MM-DD). Default: the last 120 days.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Store Stripe's disputes (amount, reason, status, charge, tenant, evidence deadline); each new
    one sends an urgent email to the tenant's billing contact and to PMFIN_FINANCE_EMAIL, with a
    dashboard alert."""
    since_ = parse_date(since, flag="--since") if since is not None else None
    app_ctx = get_app(ctx)
    result = service.sync(app_ctx.engine, stripe_client(app_ctx), app_ctx.settings, since=since_)
    render({"disputes": result.total, "new": len(result.new), "updated": result.updated}, fmt,
           columns=[Col("disputes", kind="int"), Col("new", kind="int"), Col("updated", kind="int")], title="Dispute sync")
    if fmt is Format.table:
        for dispute_id in result.new:
            note(f"new dispute {dispute_id}: pmfin disputes show {dispute_id}")
    if result.notifications is not None and not result.notifications.ok:
        warn(f"emails not sent: {result.notifications.error} (pending for `pmfin notifications send`)")


def _rows(rows):
    def due(r) -> str:
        if r.due_by is not None and r.days_left is not None and r.days_left < 0 and r.status in service.AWAITING:
            return "OVERDUE"
        return "DUE SOON" if r.due_soon else ""

    return [{**vars(r), "tenant": r.tenant_name or r.tenant_id or "(unknown)", "due": due(r)} for r in rows]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only disputes not closed yet.")] = False,
    due_within: Annotated[Optional[int], typer.Option("--due-within", metavar="DAYS", min=0, help="Only those whose evidence is due within DAYS.", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Disputes by evidence deadline (those due within 7 days are marked DUE SOON, those past it
    OVERDUE). Reads only the database."""
    rows = service.list_disputes(get_app(ctx).engine, open_only=open_only, due_within=due_within)
    if fmt is Format.table:
        render(_rows(rows), fmt, columns=LIST_COLUMNS, title="Disputes")
    else:
        render(rows, fmt)


@app.command("show")
def show_cmd(ctx: typer.Context, dispute: DisputeArg, fmt: FormatOption = Format.table) -> None:
    """One dispute: tenant, charge, amount, reason, status, deadline, evidence staged or submitted."""
    row, raw = service.get(get_app(ctx).engine, service.parse_dispute_id(dispute))
    if fmt is Format.json:
        render({"dispute": row, "stripe": raw}, fmt)
        return
    render(_rows([row])[0], fmt, columns=[Col("id"), Col("tenant"), Col("tenant_id", "tenant id"), Col("charge_id", "charge"),
                                          Col("amount", kind="money"), Col("reason"), Col("status"), Col("created"),
                                          Col("due_by", "evidence due by"), Col("days_left", "days left", kind="int"),
                                          Col("submission_count", "submissions", kind="int"),
                                          Col("evidence_staged_at", "evidence staged"),
                                          Col("evidence_submitted_at", "evidence submitted")], title=f"Dispute {row.id}")


@app.command("evidence")
def evidence_cmd(
    ctx: typer.Context,
    dispute: DisputeArg,
    submit: Annotated[bool, typer.Option("--submit", help="After staging, submit the evidence to the bank (final: asks first on a terminal).")] = False,
    yes: YesOption = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Assemble the evidence from the platform's data — the service agreement (plan, price,
    subscription start), the email records of the disputed month (campaigns and emails sent, with
    counts and timestamps), the seats with access — show it, and stage it at Stripe
    (`submit=false`). With --submit it is then submitted, after confirmation."""
    dispute_id = service.parse_dispute_id(dispute)
    app_ctx = get_app(ctx)
    evidence = service.assemble_evidence(app_ctx.engine, dispute_id)
    rows = [{"field": k, "value": v} for k, v in evidence.fields.items()]
    if fmt is Format.table:
        render_sections([(f"Evidence for dispute {dispute_id} ({evidence.period})", rows, [Col("field"), Col("value")]),
                         ("Built from", evidence.sources, None)], fmt)
    if submit:
        confirm(f"Submit this evidence for dispute {dispute_id}? The bank decides on it; it cannot be changed afterwards", yes=yes)
    result = service.stage_evidence(app_ctx.engine, stripe_client(app_ctx), evidence, submit=submit)
    if fmt is not Format.table:
        render({"dispute_id": dispute_id, "period": evidence.period, "evidence": evidence.fields,
                "sources": evidence.sources, "submitted": result.submitted, "status": result.status,
                "submission_count": result.submission_count}, fmt)
        return
    note(f"evidence {'submitted' if result.submitted else 'staged (not submitted)'}: dispute {dispute_id} is {result.status}"
         + ("" if result.submitted else f"; submit with `pmfin disputes evidence {dispute_id} --submit`"))
