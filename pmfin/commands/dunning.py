"""``pmfin dunning``: the failed-payment journey, run nightly from cron (DESIGN.md §4)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import TenantOption, parse_tenant, progress, stripe_client
from pmfin.context import get_app
from pmfin.errors import ProblemsFound
from pmfin.instants import parse_date, parse_instant
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, to_plain, warn

service = lazy_module("pmfin.stripe_ops.dunning")

app = typer.Typer(
    help="Dunning: retry failed invoices on days 1, 3 and 5 over every saved card, restrict on day 7, "
    "suspend on day 14, restore on payment — with an email and a dashboard alert for each step.",
    no_args_is_help=True,
)

RUN_COLUMNS = [
    Col("tenant"),
    Col("invoice"),
    Col("amount_due", "amount due", kind="money"),
    Col("day", kind="int"),
    Col("stage"),
    Col("action"),
    Col("cards"),
    Col("result"),
    Col("notifications"),
]


def _stage(p) -> str:
    return f"{p.stage} → {p.stage_to}" if p.stage_to else p.stage


def _action(p, dry_run: bool) -> str:
    parts = []
    if p.opened:
        parts.append("open case")
    if p.resend:
        parts.append(f"re-send {len(p.resend)} unanswered attempt(s)")
    if p.close and p.close != "paid_by_retry":
        parts.append({"paid_elsewhere": "close: paid elsewhere", "paid_by_retry": "close: paid by retry",
                      "voided": "close: voided (write off)", "uncollectible": "close: uncollectible (write off)"}[p.close])
    if p.new_cards:
        parts.append(f"retry {len(p.new_cards)} new card(s)")
    if p.skipped_slots:
        parts.append("skip day " + ", ".join(str(s) for s in p.skipped_slots))
    if p.slot is not None:
        parts.append(f"retry day {p.slot}")
    if not parts:
        nxt = f" (next retry {p.next_retry:%Y-%m-%d})" if p.next_retry else ""
        parts.append(f"wait{nxt}" if p.result in ("waiting", "stage", "planned") else p.note or "—")
    return "; ".join(parts)


def _cards(p) -> str:
    out = [f"{s.card}: {s.outcome or 'try'} (a new card)" for s in p.new_cards]
    for s in p.cards:
        if s.action == "skip":
            out.append(f"{s.card}: not tried, {s.reason}")
        else:
            out.append(f"{s.card}: {s.outcome or 'try'}")
    return "\n".join(out) or "—"


def _result(p, dry_run: bool) -> str:
    if dry_run:
        return p.note or "(dry run)"
    if p.close == "paid_by_retry":
        return "recovered (paid by the retry)"
    return p.result + (f": {p.note}" if p.note else "")


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    as_of: Annotated[
        Optional[str],
        typer.Option("--as-of", metavar="TIMESTAMP", help="Evaluate the policy at this instant (ISO 8601, e.g. 2026-12-01T02:00:00Z; a date alone is 00:00 UTC). Default: now.", show_default=False),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (cases, slots, cards in order, stage changes, notifications); write nothing, charge nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="If another run is in progress, wait for it instead of exiting.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """The nightly job: open cases for new failed payments, retry due slots, move stages, close
    paid or voided cases, then send the pending emails.

    Exit 0: the run did its work (declines are results). 1: something could not be done
    (Stripe or SMTP unreachable); everything else was done, and rerunning is safe. 2: bad input
    or configuration. A second run while one is in progress exits 0 at once, saying so."""
    at = parse_instant(as_of, flag="--as-of") if as_of is not None else None
    app_ctx = get_app(ctx)
    with progress("dunning", enabled=fmt is Format.table) as advance:
        report = service.run(app_ctx.engine, lambda: stripe_client(app_ctx), app_ctx.settings, as_of=at,
                             dry_run=dry_run, wait=wait, on_progress=advance)
    if report.busy:
        note("another dunning run is in progress: this one did nothing (use --wait to wait for it)")
        return
    _render_run(report, fmt)
    if report.exit_code:
        problems = list(report.errors)
        if report.notifications is not None and report.notifications.error:
            problems.append(f"emails not sent: {report.notifications.error} ({report.notifications.pending} pending for the next run)")
        for line in problems[:-1]:
            warn(line)
        raise ProblemsFound(problems[-1] if problems else "the dunning run could not do everything")


def _render_run(report, fmt: Format) -> None:
    dry = report.dry_run
    if fmt is Format.json:
        render({"summary": service.run_summary(report), "cases": to_plain(report.cases)}, fmt)
        return
    rows = [
        {
            "tenant": p.tenant_name or p.tenant_id,
            "invoice": p.invoice_number or p.invoice_id,
            "amount_due": p.amount_due,
            "currency": p.currency,
            "day": p.day,
            "stage": _stage(p),
            "action": _action(p, dry),
            "cards": _cards(p),
            "result": _result(p, dry),
            "notifications": ", ".join(p.notifications) or "—",
        }
        for p in report.cases
    ]
    title = f"Dunning {'plan (dry run, nothing written or charged)' if dry else 'run'} as of {report.as_of:%Y-%m-%d %H:%M} UTC"
    if fmt is Format.csv:
        render(rows, fmt, columns=RUN_COLUMNS)
        return
    render(rows, fmt, columns=RUN_COLUMNS, title=title)
    summary = service.run_summary(report)
    if report.demo_skipped:
        note(f"{report.demo_skipped} failed invoice(s) of the demo's made-up history skipped (they are not at Stripe)")
    if report.ignored:
        note(f"{report.ignored} failed invoice(s) already paid, void or uncollectible at Stripe: no case opened")
    for s in report.skipped:
        if s.reason.startswith("invoice is"):
            note(f"invoice {s.invoice_id} (tenant {s.tenant_id}): {s.reason}, not acted on")
    if not report.smtp_configured and not dry:
        warn("no SMTP configured (PMFIN_SMTP_HOST): notifications are dashboard alerts only")
    if report.notifications is not None and report.notifications.configured:
        n = report.notifications
        note(f"emails: {len(n.sent)} sent, {n.pending} pending" + (f", {len(n.refused)} refused" if n.refused else ""))
    if not report.cases:
        note("no open dunning cases")
    elif not dry:
        note(f"{summary['cases']} case(s): " + ", ".join(f"{v} {k}" for k, v in sorted(summary['results'].items())))


STATUS_COLUMNS = [
    Col("tenant"),
    Col("invoice"),
    Col("amount_due", "amount due", kind="money"),
    Col("day", kind="int"),
    Col("stage"),
    Col("attempts", kind="int"),
    Col("next_attempt", "next attempt"),
]


def _amounts(amounts: dict[str, int]) -> str:
    from pmfin.money import format_money

    return ", ".join(format_money(v, c) for c, v in sorted(amounts.items())) or "—"


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Recovery figures for cases opened on or after this date (YYYY-MM-DD). Default: the last 30 days.", show_default=False)] = None,
    as_of: Annotated[
        Optional[str],
        typer.Option("--as-of", metavar="TIMESTAMP", help="Days, next attempts and MRR as of this instant (ISO 8601). Default: now.", show_default=False),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Open cases (tenant, invoice, amount due, day, stage, attempts so far, next attempt) and the
    recovery figures: cases opened, recovered (count, amount, rate), written off, still open, and
    what is at risk now (amount due and the tenants' MRR). Reads only the database."""
    tenant_id = parse_tenant(tenant)
    since_ = parse_date(since, flag="--since") if since is not None else None
    app_ctx = get_app(ctx)
    at = parse_instant(as_of, flag="--as-of") if as_of is not None else None
    st = service.status(app_ctx.engine, app_ctx.settings, tenant_id=str(tenant_id) if tenant_id else None, since=since_, at=at)
    if fmt is Format.json:
        render({"cases": st.cases, "figures": st.figures}, fmt)
        return
    rows = [
        {"tenant": c.tenant_name or c.tenant_id, "invoice": c.invoice_number or c.invoice_id, "amount_due": c.amount_due,
         "currency": c.currency, "day": c.day, "stage": c.stage, "attempts": c.attempts, "next_attempt": c.next_attempt,
         "tenant_id": c.tenant_id, "invoice_id": c.invoice_id}
        for c in st.cases
    ]
    f = st.figures
    figures = {
        "period": f"cases opened since {f.since:%Y-%m-%d}",
        "opened": f.opened,
        "recovered": f"{f.recovered} ({_amounts(f.recovered_amounts)})",
        "recovery rate": f"{f.recovery_rate * 100:.1f}%" if f.recovery_rate is not None else "—",
        "written off": f"{f.written_off} ({_amounts(f.written_off_amounts)})",
        "still open": f.still_open,
        "open now": f.open_cases,
        "amount at risk": _amounts(f.at_risk_amounts),
        "MRR of those tenants": _amounts({f.mrr_currency: f.at_risk_mrr}) if f.open_cases else "—",
    }
    if fmt is Format.csv:
        render(rows, fmt, columns=[*STATUS_COLUMNS, Col("tenant_id"), Col("invoice_id")])
        return
    render_sections([("Open dunning cases", rows, STATUS_COLUMNS), ("Recovery", figures, None)], fmt)
