"""``pmfin connect``: Stripe Connect Express accounts for tenants (DESIGN.md §4)."""

from __future__ import annotations

import webbrowser
from dataclasses import asdict
from typing import Annotated, Optional

import typer

from pmfin.commands.common import QueueOption, queue_instead
from pmfin.context import AppContext, get_app
from pmfin.errors import PmfinError, ProblemsFound, UsageError
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, terminal_progress, warn

service = lazy_module("pmfin.stripe_ops.connect")


app = typer.Typer(
    help="Stripe Connect: one Express account per tenant, onboarding links, status and sync.",
    no_args_is_help=True,
)

TenantOption = Annotated[Optional[str], typer.Option("--tenant", "-t", help="Tenant id (UUID).", show_default=False)]

STATUS_COLUMNS = [
    Col("tenant_id", "tenant"),
    Col("tenant_name", "name"),
    Col("stripe_account_id", "account"),
    Col("status"),
    Col("charges_enabled", "charges", kind="bool"),
    Col("payouts_enabled", "payouts", kind="bool"),
    Col("currently_due", "currently due"),
    Col("past_due", "past due"),
    Col("disabled_reason", "disabled reason"),
    Col("checked_at", "checked at"),
    Col("error"),
]


# For people: fewer, wider columns (the full set is in --format json/csv).
TABLE_COLUMNS = [
    Col("tenant"),
    Col("stripe_account_id", "account"),
    Col("status"),
    Col("charges_enabled", "charges", kind="bool"),
    Col("payouts_enabled", "payouts", kind="bool"),
    Col("requirements"),
]


def _render_statuses(data, fmt: Format, title: str) -> None:
    if fmt is not Format.table:
        render(data, fmt, columns=STATUS_COLUMNS, title=title)
        return
    rows = data if isinstance(data, list) else [data]
    people = []
    for s in rows:
        items = list(dict.fromkeys([*s.past_due, *s.currently_due]))
        due = [f"{len(items)} due ({len(s.past_due)} past due): {', '.join(items)}"] if items else []
        due += [f"disabled: {s.disabled_reason}"] if s.disabled_reason else []
        due += [f"last sync failed {s.checked_at:%Y-%m-%d %H:%M} UTC: {s.error}"] if s.status == "failed" else []
        people.append({
            "tenant": s.tenant_name or s.tenant_id,
            "stripe_account_id": s.stripe_account_id,
            "status": s.status,
            "charges_enabled": s.charges_enabled,
            "payouts_enabled": s.payouts_enabled,
            "requirements": "; ".join(due) or None,
        })
    render(people if isinstance(data, list) else people[0], fmt, columns=TABLE_COLUMNS, title=title)


def _stripe(app_ctx: AppContext):
    client = app_ctx.stripe
    if app_ctx.verbose:
        note(client.describe())
    return client


def _tenant(value: str | None):
    if value is None:
        raise UsageError("--tenant is required")
    return service.parse_tenant_id(value)


@app.command("create")
def create_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    email: Annotated[
        Optional[str], typer.Option("--email", help="Account email (default: the tenant's billing email).", show_default=False)
    ] = None,
    country: Annotated[
        Optional[str], typer.Option("--country", help="2-letter country (default: the tenant's country, else the platform's).", show_default=False)
    ] = None,
    queue: QueueOption = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Create the tenant's Express account (card_payments + transfers); a second call shows the existing one."""
    tenant_id = _tenant(tenant)
    country = service.parse_country(country)
    app_ctx = get_app(ctx)
    try:
        result = service.create_account(app_ctx.engine, _stripe(app_ctx), tenant_id, email=email, country=country)
    except PmfinError as err:
        if queue and queue_instead(app_ctx, err, "connect.create",
                                   {"tenant_id": str(tenant_id), "email": email, "country": country},
                                   f"pmfin:connect:create:{tenant_id}", tenant_id=str(tenant_id), fmt=fmt):
            return
        raise
    title = "Connect account created" if result.created else "Connect account (already existed)"
    if fmt is Format.table:
        _render_statuses(result, fmt, title)
    else:
        render(result, fmt, columns=[Col("created", kind="bool"), *STATUS_COLUMNS, Col("idempotency_key")], title=title)
    if result.created and fmt is Format.table:
        note(f"next: pmfin connect link --tenant {tenant_id}  (the tenant finishes onboarding at Stripe)")


@app.command("link")
def link_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the link in a browser, where one exists.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """An onboarding link for the tenant's account. Links are single-use and expire within minutes."""
    tenant_id = _tenant(tenant)
    app_ctx = get_app(ctx)
    link = service.create_onboarding_link(app_ctx.engine, _stripe(app_ctx), tenant_id, app_url=app_ctx.settings.app_url)
    render(
        link,
        fmt,
        columns=[
            Col("tenant_id", "tenant"),
            Col("stripe_account_id", "account"),
            Col("url"),
            Col("expires_at", "expires at"),
            Col("expires_in_seconds", "expires in (s)", kind="int"),
            Col("return_url", "returns to"),
        ],
        title="Onboarding link",
    )
    minutes = max(1, round(link.expires_in_seconds / 60))
    note(f"The link is single-use and expires in about {minutes} minute(s) ({link.expires_at:%H:%M} UTC); "
         "a run in the same minute returns this same link (one idempotency key a minute); run it again "
         "after that for a fresh one.")
    if open_browser and not webbrowser.open(link.url):
        warn("no browser available here: open the URL above yourself")


@app.command("status")
def status_cmd(
    ctx: typer.Context,
    tenant: TenantOption = None,
    all_tenants: Annotated[
        bool, typer.Option("--all", help="Every tenant, from what the last 'pmfin connect sync' saw (no Stripe call).")
    ] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """not_connected / pending / complete, charges and payouts, requirements due, disabled reason."""
    if (tenant is None) == (not all_tenants):
        raise UsageError("give exactly one of --tenant UUID or --all")
    app_ctx = get_app(ctx)
    if all_tenants:
        rows = service.all_statuses(app_ctx.engine)
        _render_statuses(rows, fmt, "Connect accounts (as of the last sync)")
        if fmt is Format.table and any(r.status == "not_synced" for r in rows):
            note("not_synced: connected, but not seen by 'pmfin connect sync' yet")
        if fmt is Format.table and any(r.status == "failed" for r in rows):
            note("failed: the last 'pmfin connect sync' could not read the account (when and why beside it)")
        if fmt is Format.table and any(r.status == "demo" for r in rows):
            note("demo: an account id made up by pmfin demo; it exists nowhere at Stripe and is never synced")
        return
    tenant_id = _tenant(tenant)
    status = service.account_status(app_ctx.engine, lambda: _stripe(app_ctx), tenant_id)
    _render_statuses(status, fmt, "Connect account")


@app.command("sync")
def sync_cmd(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-j", min=1, max=64, help="Requests in flight at once (paced by PMFIN_STRIPE_RATE).")
    ] = 8,
    fmt: FormatOption = Format.table,
) -> None:
    """Refresh every connected tenant's account from Stripe and store it (so 'status --all' works offline).

    Exit 1 when some accounts could not be read (listed on stdout, and shown as failed by 'status
    --all'); the others are stored. Exit 2, within seconds, when Stripe cannot be reached at all.
    Accounts whose ids pmfin demo made up are skipped, with a note."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

    app_ctx = get_app(ctx)
    engine, client = app_ctx.engine, _stripe(app_ctx)
    with terminal_progress(TextColumn("syncing Connect accounts"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn()) as progress:
        task = progress.add_task("sync", total=None) if progress else None
        result = service.sync_accounts(
            engine,
            client,
            concurrency=concurrency,
            on_start=progress and (lambda total: progress.update(task, total=total)),
            on_progress=progress and (lambda _item: progress.advance(task)),
        )
    rows = [
        {"tenant_id": s.tenant_id, "stripe_account_id": s.stripe_account_id, "result": s.status, "error": None}
        for s in result.synced
    ] + [{"tenant_id": f.tenant_id, "stripe_account_id": f.stripe_account_id, "result": "failed", "error": f.error} for f in result.failed]
    tried = result.total - len(result.skipped)
    title = f"Connect sync: {len(result.synced)} of {tried} accounts stored"
    if fmt is Format.json:
        render({"total": result.total, "synced": [asdict(s) for s in result.synced], "failed": result.failed,
                "skipped": result.skipped}, fmt)
    elif fmt is Format.csv:  # for programs, the skipped accounts too
        skipped = [{"tenant_id": k.tenant_id, "stripe_account_id": k.stripe_account_id, "result": "skipped",
                    "error": k.reason} for k in result.skipped]
        render(rows + skipped, fmt, columns=SYNC_COLUMNS)
    else:
        render(rows, fmt, columns=SYNC_COLUMNS, title=title)
    if result.skipped:
        note(f"skipped {len(result.skipped)} demo account(s): their ids were made up by pmfin demo and exist "
             "nowhere at Stripe (see 'connect status --all')")
    if result.failed:
        raise ProblemsFound(f"{len(result.failed)} of {tried} accounts could not be synced (see the list above)")


SYNC_COLUMNS = [Col("tenant_id", "tenant"), Col("stripe_account_id", "account"), Col("result"), Col("error")]


@app.command("platform")
def platform_cmd(
    ctx: typer.Context,
    set_to: Annotated[
        Optional[str], typer.Option("--set", metavar="ACCOUNT_ID", help="Store this as the platform's own Stripe account.", show_default=False)
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The platform's own Stripe account id (system_config 'stripe_account_id')."""
    app_ctx = get_app(ctx)
    if set_to is not None:
        account_id = service.parse_account_id(set_to)
        result = service.set_platform(app_ctx.engine, account_id)
    else:
        result = service.get_platform(app_ctx.engine)
    render(result, fmt, columns=[Col("stripe_account_id", "platform account"), Col("updated"), Col("changed", kind="bool")],
           title="Platform Stripe account")
    if result.stripe_account_id is None and fmt is Format.table:
        note("not set: pmfin connect platform --set acct_…")
