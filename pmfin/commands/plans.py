"""``pmfin plans``: the plan catalog as a feature matrix, and a tenant's plan beside another."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pmfin.commands.common import TenantOption, parse_tenant
from pmfin.context import get_app
from pmfin.lazy import lazy_module
from pmfin.output import Col, Format, FormatOption, note, render, render_sections, to_plain

service = lazy_module("pmfin.metrics.plans")

app = typer.Typer(help="The plan catalog (plans and add-ons) and what a plan change would mean for a tenant.",
                  no_args_is_help=True)

ToOption = Annotated[Optional[str], typer.Option("--to", help="The plan id to compare with (see `pmfin plans list`).",
                                                 show_default=False)]

PLAN_COLUMNS = [
    Col("id", "plan"), Col("tier"), Col("billing_cycle", "cycle"), Col("price", kind="money"),
    Col("monthly_price", "per month", kind="money"), Col("email_limit", "emails / month", kind="int"),
    Col("ip_limit", "IPs", kind="int"), Col("seat_limit", "seats", kind="int"), Col("premium_support", "premium support"),
]
PLAN_DATA_COLUMNS = [
    Col("id"), Col("name"), Col("tier"), Col("billing_cycle"), Col("price"), Col("monthly_price"), Col("currency"),
    Col("email_limit"), Col("ip_limit"), Col("seat_limit"), Col("premium_support"), Col("premium_support_price"),
    Col("premium_support_cycle"), Col("stripe_price_id"), Col("active"),
]
ADDON_COLUMNS = [Col("id", "add-on"), Col("name"), Col("billing_cycle", "cycle"), Col("price", kind="money"),
                 Col("monthly_price", "per month", kind="money")]
ADDON_DATA_COLUMNS = [Col("id"), Col("name"), Col("billing_cycle"), Col("price"), Col("monthly_price"), Col("currency"),
                      Col("stripe_price_id")]


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also plans no longer offered (plans.active false).")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """The catalog as a feature matrix: tier, billing cycle, price (and per month), emails a month,
    IPs, seats and premium support of each plan, then the add-ons. Premium support is the
    `premium_support` add-on (the data has no per-plan flag for it)."""
    with get_app(ctx).engine.connect() as conn:
        cat = service.catalog(conn, include_inactive=all_)
    table = fmt is Format.table
    if fmt is Format.json:
        render({"plans": cat.plans, "addons": cat.addons}, fmt)
        return
    plans = [dict(to_plain(p), premium_support=service.support_text(p) if table else p.premium_support) for p in cat.plans]
    render_sections([("Plans", plans, PLAN_COLUMNS if table else PLAN_DATA_COLUMNS),
                     ("Add-ons", cat.addons, ADDON_COLUMNS if table else ADDON_DATA_COLUMNS)], fmt)
    if table and not all_:
        note("plans no longer offered are left out: --all shows them")


@app.command("compare")
def compare_cmd(ctx: typer.Context, tenant: TenantOption = None, to: ToOption = None, fmt: FormatOption = Format.table) -> None:
    """The tenant's current plan beside another: tier, cycle, price (the tenant's own) and per
    month, limits, premium support, this month's usage against each, and what the tenant would
    lose. Seats or IPs in use above the new limits are what `pmfin subscription change` refuses
    without --force."""
    tenant_id = parse_tenant(tenant, required=True)
    plan_id = service.parse_plan_id(to)
    with get_app(ctx).engine.connect() as conn:
        c = service.compare(conn, tenant_id, plan_id)
    if fmt is Format.json:
        render({
            "tenant_id": c.tenant_id, "tenant_name": c.tenant_name, "direction": c.direction,
            "current": {"plan": c.current.plan, "quantity": c.current.quantity, "unit_price": c.current.unit_price,
                        "price": c.current.price, "currency": c.current.currency, "subscription_id": c.current.id},
            "new": {"plan": c.to, "quantity": c.current.quantity, "unit_price": c.to.price,
                    "price": c.to.price * c.current.quantity, "currency": c.to.currency},
            "mrr": {"current": c.current_mrr, "new": c.new_mrr, "change": c.new_mrr - c.current_mrr, "currency": c.currency},
            "usage": c.usage, "losses": c.losses, "blockers": c.blockers,
        }, fmt)
        return
    title = f"{c.tenant_name or c.tenant_id}: {c.current.plan.id} → {c.to.id} ({c.direction})"
    render_sections([(title, c.rows, [Col("attribute", "what"), Col("current"), Col("new"), Col("change")])], fmt)
    if fmt is Format.table:
        for loss in c.losses:
            note(("BLOCKS THE CHANGE: " if loss in c.blockers else "would lose: ") + loss)
        if not c.losses:
            note("nothing would be lost")
