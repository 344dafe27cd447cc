"""Write a generated ``Dataset`` into the database: COPY for the rows Python made, one
INSERT … SELECT over ``generate_series`` for the emails, ON CONFLICT DO NOTHING for the shared
catalog (plans, add-ons, costs, FX rates, system_config) so nothing that was there before is
overwritten. Runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Connection

from pmfin.db.bulk import copy_rows
from pmfin.demo.catalog import ADDONS, PLANS
from pmfin.demo.generator import Dataset

DEMO_SOURCE = "demo"

COLUMNS: dict[str, Sequence[str]] = {
    "tenants": ("id", "name", "created", "deleted"),
    "tenant_config": (
        "tenant_id", "billing_email", "country", "currency", "stripe_customer_id", "stripe_account_id",
        "billing_status", "created", "updated",
    ),
    "tenant_users": ("tenant_id", "user_id", "email", "created", "deleted"),
    "subscriptions": (
        "tenant_id", "id", "plan_id", "status", "quantity", "unit_price_cents", "currency", "started_at",
        "trial_ends_at", "current_period_start", "current_period_end", "cancel_at_period_end", "canceled_at",
        "ended_at", "end_reason", "stripe_subscription_id",
    ),
    "subscription_addons": (
        "tenant_id", "id", "addon_id", "quantity", "unit_price_cents", "currency", "started_at", "ended_at",
        "stripe_subscription_item_id",
    ),
    "payments": (
        "tenant_id", "id", "stripe_payment_intent_id", "stripe_charge_id", "stripe_invoice_id", "stripe_account_id",
        "revenue_stream", "amount_cents", "currency", "status", "refunded_cents", "fee_cents",
        "application_fee_cents", "failure_code", "failure_message", "created_at",
    ),
    "campaigns": ("tenant_id", "id", "name", "status", "created_at"),
    "ip_allocations": ("tenant_id", "ip", "reputation_score", "allocated_at", "released_at"),
}

# Emails from the campaign plan, in SQL: one md5 per email gives its id, its fate and its send time.
# ~1.2 % failed (never sent), ~4.9 % bounced, the rest sent; an email whose send time falls after
# the end of the history is still queued (sent_at null).
_EMAILS_SQL = """
INSERT INTO emails (tenant_id, id, campaign_id, status, sent_at)
SELECT c.tenant_id, h.md::uuid, c.campaign_id,
       CASE WHEN h.fate < 800 THEN 'failed'
            WHEN c.created_at + make_interval(secs => h.offs) >= :hist_end THEN 'queued'
            WHEN h.fate < 4000 THEN 'bounced'
            ELSE 'sent' END,
       CASE WHEN h.fate < 800 OR c.created_at + make_interval(secs => h.offs) >= :hist_end THEN NULL
            ELSE c.created_at + make_interval(secs => h.offs) END
FROM pmfin_demo_campaign_emails c
CROSS JOIN LATERAL generate_series(1, c.emails) AS g(n)
CROSS JOIN LATERAL (
    SELECT m AS md,
           ('x' || substr(m, 1, 8))::bit(32)::int & 65535 AS fate,
           (('x' || substr(m, 9, 8))::bit(32)::int & 2147483647) % c.span_seconds AS offs
    FROM md5(c.campaign_id::text || ':' || g.n) AS m
) AS h
WHERE c.batch = :batch
"""
EMAIL_BATCHES = 10


def load(
    conn: Connection,
    data: Dataset,
    *,
    seed: int,
    hist_end: dt.datetime,
    step: Callable[..., None] = lambda _name, _rows=None: None,
) -> tuple[dict[str, int], dict[str, int]]:
    """Write ``data``; return (rows written per table, rows skipped because something was there).

    ``step(phase)`` when a phase begins, ``step(phase, rows)`` with the rows it has written so far."""
    written: dict[str, int] = {}
    skipped: dict[str, int] = {}

    step("plans and add-ons")
    plan_rows = [
        {"id": p.id, "name": p.name, "tier": p.tier, "cycle": p.cycle, "price": p.price_cents,
         "email": p.email_limit, "ip": p.ip_limit, "seat": p.seat_limit, "price_id": f"price_demo_{p.id}"}
        for p in PLANS.values()
    ]
    new_plans = [
        conn.execute(
            text(
                "INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency, email_limit, ip_limit, "
                "seat_limit, stripe_price_id, active) VALUES (:id, :name, :tier, :cycle, :price, 'usd', :email, :ip, "
                ":seat, :price_id, true) ON CONFLICT (id) DO NOTHING RETURNING id"
            ),
            row,
        ).scalar()
        for row in plan_rows
    ]
    new_addons = [
        conn.execute(
            text(
                "INSERT INTO addons (id, name, billing_cycle, price_cents, currency, stripe_price_id) "
                "VALUES (:id, :name, :cycle, :price, 'usd', :price_id) ON CONFLICT (id) DO NOTHING RETURNING id"
            ),
            {"id": a.id, "name": a.name, "cycle": a.cycle, "price": a.price_cents, "price_id": f"price_demo_{a.id}"},
        ).scalar()
        for a in ADDONS.values()
    ]
    new_keys = [
        conn.execute(
            text(
                "INSERT INTO system_config (key, value, updated) VALUES ('stripe_account_id', :v, :at) "
                "ON CONFLICT (key) DO NOTHING RETURNING key"
            ),
            {"v": data.platform_account, "at": hist_end},
        ).scalar()
    ]
    written["plans"] = sum(1 for p in new_plans if p)
    written["addons"] = sum(1 for a in new_addons if a)
    written["system_config"] = sum(1 for k in new_keys if k)
    skipped["plans"] = len(PLANS) - written["plans"]
    skipped["addons"] = len(ADDONS) - written["addons"]
    step("plans and add-ons", written["plans"] + written["addons"])

    for table in ("tenants", "tenant_config", "tenant_users", "subscriptions", "subscription_addons", "payments",
                  "campaigns", "ip_allocations"):
        step(table.replace("_", " "))
        written[table] = copy_rows(conn, table, COLUMNS[table], getattr(data, table))
        step(table.replace("_", " "), written[table])

    step("emails")
    conn.execute(
        text(
            "CREATE TEMP TABLE pmfin_demo_campaign_emails (tenant_id uuid, campaign_id uuid, created_at timestamptz, "
            "span_seconds int, emails int, batch int) ON COMMIT DROP"
        )
    )
    campaigns = data.campaign_emails
    copy_rows(conn, "pmfin_demo_campaign_emails",
              ("tenant_id", "campaign_id", "created_at", "span_seconds", "emails", "batch"),
              (c + (i * EMAIL_BATCHES // len(campaigns),) for i, c in enumerate(campaigns)))
    written["emails"] = 0
    for batch in range(EMAIL_BATCHES):  # in batches, so that progress shows in the longest step
        written["emails"] += conn.execute(text(_EMAILS_SQL), {"hist_end": hist_end, "batch": batch}).rowcount
        step("emails", written["emails"])

    step("costs and FX rates")
    # imported_at: the first instant after the month (when its books closed), so reruns are identical
    written["costs"] = conn.execute(
        text(
            "INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source, imported_at) "
            "VALUES (:m, :c, :k, :a, :cur, :src, (:m)::timestamp AT TIME ZONE 'UTC' + interval '1 month') "
            "ON CONFLICT DO NOTHING"
        ),
        [{"m": m, "c": c, "k": k, "a": a, "cur": cur, "src": DEMO_SOURCE} for m, c, k, a, cur in data.costs],
    ).rowcount
    skipped["costs"] = len(data.costs) - written["costs"]
    written["fx_rates"] = conn.execute(
        text(
            "INSERT INTO pmfin_fx_rates (month, base_currency, quote_currency, rate, source, imported_at) "
            "VALUES (:m, :b, :q, :r, :src, (:m)::timestamp AT TIME ZONE 'UTC' + interval '1 month') "
            "ON CONFLICT DO NOTHING"
        ),
        [{"m": m, "b": b, "q": q, "r": r, "src": DEMO_SOURCE} for m, b, q, r in data.fx_rates],
    ).rowcount
    skipped["fx_rates"] = len(data.fx_rates) - written["fx_rates"]
    step("costs and FX rates", written["costs"] + written["fx_rates"])

    step("bookkeeping")
    objects = [("tenant", str(t[0]), seed) for t in data.tenants]
    objects += [("plan", p, seed) for p in new_plans if p]
    objects += [("addon", a, seed) for a in new_addons if a]
    objects += [("system_config", k, seed) for k in new_keys if k]
    step("bookkeeping", copy_rows(conn, "pmfin_demo_objects", ("kind", "object_id", "seed"), objects))
    return written, {k: v for k, v in skipped.items() if v}
