"""``pmfin demo``: fill the database with a realistic, deterministic PenguinMails history."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.report import METRIC_COLUMNS  # the same columns as `pmfin report mrr`
from pmfin.context import get_app
from pmfin.months import Month
from pmfin.output import Col, Format, FormatOption, Phases, note, render, render_sections, to_plain

DEMO_HELP = (
    "Fill the database with a realistic, deterministic PenguinMails history, then print the executive "
    "summary of its last complete month.\n\n"
    "The history covers the --months months up to and including --end: plans on every tier (freemium; "
    "professional and enterprise, monthly and annual), 14-day trials (some never convert), upgrades and "
    "downgrades as subscription history rows (plan_change), add-ons, discounts, quantities above one, "
    "past-due and canceled subscriptions, churn and reactivation, tenants billed in EUR (with EUR→USD "
    "rates per month in pmfin_fx_rates), payments of every revenue stream (subscription, add-on, "
    "services, marketplace, Connect charges with the Stripe fee and the platform's share from the "
    "settings; some failed, refunded, partially refunded, disputed), campaigns and emails, seats, IP "
    "allocations, tenant and platform Stripe ids, and monthly costs by category in pmfin_costs.\n\n"
    "The same --seed, --tenants, --months and --end give the same rows. The summary month is --end, or "
    "the month before when --end is the current (still running) month; its numbers come from the metrics "
    "module, exactly as `pmfin report mrr` computes them.\n\n"
    "Safety: pmfin refuses (exit 2, nothing written) when the database holds tenants the demo did not "
    "create; --force adds the demo beside them, touching none of their rows. Running the demo again "
    "replaces the earlier demo data (it is cleared first). --reset only removes demo data. Each run is "
    "one transaction under an advisory lock, so two demos at once never interleave."
)



def _stripe_for_demo(app_ctx, n: int):
    """The Stripe client for --stripe, refused before the demo writes anything: a live key (even
    with --live) or a count out of range."""
    from pmfin.commands.common import stripe_client
    from pmfin.demo.stripe_seed import MAX_TENANTS
    from pmfin.errors import ConfigError, UsageError
    from pmfin.settings import key_mode, mask_secret

    if not 1 <= n <= MAX_TENANTS:
        raise UsageError(f"--stripe-tenants must be between 1 and {MAX_TENANTS}, got {n}")
    key = app_ctx.settings.stripe_api_key or ""
    if key and key_mode(key) != "test":
        raise ConfigError(f"pmfin demo --stripe works only with a test-mode key (sk_test_…), not {mask_secret(key)}: "
                          "it creates customers, cards and failing invoices")
    return stripe_client(app_ctx)


def _counts(counts: dict[str, int]) -> list[dict[str, object]]:
    return [{"table": k, "rows": v} for k, v in counts.items()]


def register(app: typer.Typer) -> None:
    @app.command("demo", help=DEMO_HELP)
    def demo(
        ctx: typer.Context,
        tenants: Annotated[int, typer.Option("--tenants", help="Tenants to create (1 to 1,000,000).")] = 3000,
        months: Annotated[int, typer.Option("--months", help="Months of history (2 to 120).")] = 24,
        seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same rows.")] = 42,
        end: Annotated[
            Optional[str],
            typer.Option("--end", help="Last month of the history, YYYY-MM (default: the current UTC month).",
                         show_default=False),
        ] = None,
        force: Annotated[
            bool, typer.Option("--force", help="Add demo data even though the database holds tenants the demo did not create.")
        ] = False,
        reset: Annotated[
            bool, typer.Option("--reset", help="Only remove the demo's data (foreign rows untouched); generate nothing.")
        ] = False,
        stripe: Annotated[
            bool,
            typer.Option("--stripe", help="Also create, in your Stripe TEST account, customers with test cards and "
                         "failing invoices for a few demo tenants, so `pmfin dunning run` can be tried for real "
                         "(test-mode key only; refused with a live key)."),
        ] = False,
        stripe_tenants: Annotated[
            int, typer.Option("--stripe-tenants", help="How many demo tenants get Stripe objects with --stripe (1 to 20).")
        ] = 3,
        fmt: FormatOption = Format.table,
    ) -> None:
        from pmfin.demo import DemoRequest, reset_demo, run_demo
        from pmfin.demo.service import RUN_STEPS, validate

        current = Month.current()
        end_month = Month.parse(end, flag="--end") if end is not None else current
        if reset:
            app_ctx = get_app(ctx)
            result = reset_demo(app_ctx.engine)
            if fmt is Format.json:
                render({"removed": result.removed, "foreign_tenants": result.foreign_tenants}, fmt)
                return
            render(_counts(result.removed), fmt, columns=[Col("table"), Col("rows", kind="int")],
                   title="demo data removed")
            if fmt is Format.table:
                note(f"{result.foreign_tenants:,} tenants the demo did not create were left untouched.")
            return
        validate(tenants, months, seed, end_month, current=current)  # before opening the database
        app_ctx = get_app(ctx)
        client = _stripe_for_demo(app_ctx, stripe_tenants) if stripe else None  # refuse before writing anything
        request = DemoRequest(tenants=tenants, months=months, seed=seed, end=end_month, force=force)
        with Phases("pmfin demo", RUN_STEPS) as progress:  # on stderr: nothing for 20 s would look hung
            result = run_demo(app_ctx.engine, request, app_ctx.settings, progress=progress, current=current)

        seeded = None
        if client is not None:
            from pmfin.demo.stripe_seed import seed_stripe

            seeded = seed_stripe(app_ctx.engine, client, seed=seed, tenants=stripe_tenants).tenants
        summary = to_plain(result.summary)
        summary["month"] = str(result.summary_month)
        history = {
            "seed": seed, "tenants": tenants, "months": months,
            "from": str(request.first), "to": str(end_month),
            "replaced_previous_demo": bool(result.replaced),
        }
        if fmt is Format.json:
            # "kept": rows that already existed (plans, add-ons, costs, FX rates) and were not overwritten
            document = {"history": history, "written": result.written, "kept": result.skipped, "summary": summary}
            if seeded is not None:
                document["stripe"] = seeded
            render(document, fmt)
            return
        if fmt is Format.table:
            note(f"demo history {request.first} … {end_month}: {tenants:,} tenants, {months} months, seed {seed}")
            if result.replaced:
                note(f"replaced the earlier demo data ({result.replaced.get('tenants', 0):,} tenants cleared first)")
            if result.foreign_tenants:
                note(f"--force: added beside {result.foreign_tenants:,} tenants the demo did not create (untouched)")
            for table, n in result.skipped.items():
                note(f"kept {n} existing {table} row{'s' if n != 1 else ''} (not overwritten)")
            for w in summary.get("warnings") or []:
                note(f"warning: {w}")
        render_sections(
            [
                ("rows written",
                 _counts(result.written), [Col("table"), Col("rows", kind="int")]),
                (f"executive summary {result.summary_month}", summary,
                 METRIC_COLUMNS if fmt is Format.table else [*METRIC_COLUMNS, Col("currency")]),
            ],
            fmt,
        )
        if seeded is not None:
            render(seeded, fmt, columns=[Col("tenant_name", "tenant"), Col("scenario"), Col("customer_id", "customer"),
                                         Col("invoice_id", "invoice"), Col("amount", kind="money"), Col("decline"),
                                         Col("hosted_invoice_url", "hosted page")],
                   title="Stripe test mode: failing invoices for dunning")
        if fmt is Format.table:
            note(f"done in {result.seconds:.1f}s — try `pmfin report summary --month {result.summary_month}`")
            if seeded is not None:
                note("then `pmfin dunning run --dry-run` (the plan) and `pmfin dunning run` (for real, in test mode)")
