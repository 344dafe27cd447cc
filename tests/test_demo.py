"""``pmfin demo``: every feature of the generated history, on one small demo run (module scope).

The history is --tenants 120 --months 14 --seed 7 --end 2025-06 (2024-05 … 2025-06).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import create_engine, text

from pmfin.db.url import normalize
from pmfin.demo.catalog import FIXED_COSTS, VARIABLE_COSTS
from pmfin.months import Month
from pmfin.output import to_plain

from conftest import make_cli
from demo_fixtures import SMALL, drop_schema, new_schema

HIST_START = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
HIST_END = dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def demo(pg_base_url, tmp_path_factory):
    """One demo run in its own schema: (engine, the JSON document it printed)."""
    name, url = new_schema(pg_base_url)
    home = tmp_path_factory.mktemp("demo-home")
    env_file = home / "empty.env"
    env_file.write_text("")
    run = make_cli({"DATABASE_URL": url, "PMFIN_HOME": str(home), "PMFIN_ENV_FILE": str(env_file),
                    "PMFIN_STRIPE_FEE_PERCENT": None, "PMFIN_STRIPE_FEE_FIXED": None,
                    "PMFIN_CONNECT_PLATFORM_SHARE": None, "PMFIN_CURRENCY": None})
    result = run("demo", *SMALL, "--format", "json")
    assert result.exit_code == 0, result.output
    engine = create_engine(normalize(url))
    yield engine, json.loads(result.stdout), run
    engine.dispose()
    drop_schema(pg_base_url, name)


def q(engine, sql, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def one(engine, sql, **params):
    return q(engine, sql, **params)[0][0]


def test_json_document_counts_what_is_in_the_database(demo):
    engine, doc, _ = demo
    assert set(doc) == {"history", "written", "kept", "summary"}
    assert doc["kept"] == {}  # a fresh database: nothing existed to keep
    assert doc["history"] == {"seed": 7, "tenants": 120, "months": 14, "from": "2024-05", "to": "2025-06",
                              "replaced_previous_demo": False}
    for table in ("tenants", "tenant_config", "tenant_users", "subscriptions", "subscription_addons", "payments",
                  "campaigns", "emails", "ip_allocations"):
        assert doc["written"][table] == one(engine, f"SELECT count(*) FROM {table}") > 0, table
    assert doc["written"]["tenants"] == 120
    assert doc["written"]["plans"] == 5 and doc["written"]["addons"] == 3 and doc["written"]["system_config"] == 1
    assert doc["written"]["costs"] == 14 * 9 == one(engine, "SELECT count(*) FROM pmfin_costs")
    assert doc["written"]["fx_rates"] == 14


def test_summary_is_the_metrics_modules_month_metrics_for_the_end_month(demo):
    engine, doc, run = demo
    s = doc["summary"]
    assert s["month"] == "2025-06"  # --end is in the past, so it is the last complete month
    from pmfin.metrics.mrr import month_metrics

    expected = to_plain(month_metrics(engine, Month(2025, 6), "usd"))
    for key in ("mrr", "arr", "customers", "arpu", "new", "expansion", "contraction", "churn", "reactivation",
                "net_new"):
        assert s[key] == expected[key], key
    assert s["arr"] == 12 * s["mrr"]
    assert s["net_new"] == s["new"] + s["reactivation"] + s["expansion"] - s["contraction"] - s["churn"]
    assert 0 < s["customers"] < 120  # freemium, trials and churned tenants are not customers


def test_plans_on_every_tier_and_both_cycles_are_used(demo):
    engine, _, _ = demo
    plans = {r[0]: r[1:] for r in q(engine, "SELECT id, tier, billing_cycle, price_cents FROM plans")}
    assert plans == {
        "freemium": ("freemium", "month", 0),
        "professional": ("professional", "month", 9_900),
        "professional_annual": ("professional", "year", 99_000),
        "enterprise": ("enterprise", "month", 49_900),
        "enterprise_annual": ("enterprise", "year", 499_000),
    }
    used = {r[0] for r in q(engine, "SELECT DISTINCT plan_id FROM subscriptions")}
    assert used == set(plans)


def test_trials_last_14_days_and_some_never_convert(demo):
    engine, _, _ = demo
    trials = q(engine, "SELECT started_at, trial_ends_at, ended_at, end_reason, cancel_at_period_end, canceled_at "
                       "FROM subscriptions WHERE trial_ends_at IS NOT NULL")
    assert trials and all(t[1] - t[0] == dt.timedelta(days=14) for t in trials)
    never = [t for t in trials if t[2] == t[1]]
    assert never and all(t[3] == "canceled" and t[4] and t[0] < t[5] < t[1] for t in never)
    assert any(t[2] is None or t[2] > t[1] for t in trials)  # converted


def test_plan_changes_are_contiguous_history_rows(demo):
    engine, _, _ = demo
    changes = one(engine, "SELECT count(*) FROM subscriptions WHERE end_reason = 'plan_change'")
    assert changes > 5
    # every plan_change row is followed by a row of the same tenant and Stripe subscription
    # starting at exactly the instant it ended
    orphans = one(engine, """
        SELECT count(*) FROM subscriptions a WHERE a.end_reason = 'plan_change' AND NOT EXISTS (
          SELECT 1 FROM subscriptions b WHERE b.tenant_id = a.tenant_id AND b.started_at = a.ended_at
            AND b.stripe_subscription_id = a.stripe_subscription_id AND b.id <> a.id)""")
    assert orphans == 0
    kinds = {r[0] for r in q(engine, """
        SELECT CASE WHEN pa.tier <> pb.tier THEN 'tier' WHEN pa.billing_cycle <> pb.billing_cycle THEN 'cycle'
                    WHEN b.quantity > a.quantity THEN 'more' WHEN b.quantity < a.quantity THEN 'fewer' END
        FROM subscriptions a JOIN subscriptions b ON b.tenant_id = a.tenant_id AND b.started_at = a.ended_at
        JOIN plans pa ON pa.id = a.plan_id JOIN plans pb ON pb.id = b.plan_id
        WHERE a.end_reason = 'plan_change'""")}
    assert {"tier", "more", "fewer"} <= kinds  # upgrades and downgrades (monthly → annual shows at larger sizes)


def test_no_tenant_has_two_overlapping_rows(demo):
    engine, _, _ = demo
    overlaps = one(engine, """
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON a.tenant_id = b.tenant_id AND a.id < b.id
         AND a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity')""")
    assert overlaps == 0
    # live rows (no ended_at) are exactly the running statuses; ended rows are canceled
    statuses = dict(q(engine, "SELECT ended_at IS NULL, array_agg(DISTINCT status ORDER BY status) FROM subscriptions "
                              "GROUP BY 1"))
    assert statuses[False] == ["canceled"]
    assert set(statuses[True]) == {"active", "past_due", "trialing"}


def test_churn_payment_failure_past_due_and_reactivation(demo):
    engine, _, _ = demo
    reasons = {r[0] for r in q(engine, "SELECT DISTINCT end_reason FROM subscriptions WHERE end_reason IS NOT NULL")}
    assert reasons == {"canceled", "plan_change", "payment_failed"}
    # a payment_failed row ends 14 days after a failed renewal of it
    failed_end = q(engine, """
        SELECT s.ended_at - max(p.created_at) FILTER (WHERE p.status = 'failed' AND p.created_at <= s.ended_at
                                                      AND p.created_at >= s.ended_at - interval '14 days')
        FROM subscriptions s JOIN payments p ON p.tenant_id = s.tenant_id AND p.revenue_stream = 'subscription'
        WHERE s.end_reason = 'payment_failed' GROUP BY s.tenant_id, s.id""")
    assert failed_end and all(r[0] is not None for r in failed_end)
    past_due = q(engine, "SELECT s.tenant_id, c.billing_status FROM subscriptions s JOIN tenant_config c "
                         "ON c.tenant_id = s.tenant_id WHERE s.status = 'past_due'")
    assert past_due and all(r[1] in ("active", "restricted") for r in past_due)
    assert {r[0] for r in q(engine, "SELECT DISTINCT billing_status FROM tenant_config")} == {
        "active", "restricted", "suspended"}
    # reactivation: a paid row starts at least a month after the tenant's earlier paid row ended
    # (canceled, failed, or downgraded to freemium)
    reactivated = one(engine, """
        SELECT count(DISTINCT b.tenant_id) FROM subscriptions a JOIN subscriptions b ON b.tenant_id = a.tenant_id
        WHERE a.unit_price_cents > 0 AND a.ended_at > coalesce(a.trial_ends_at, a.started_at)
          AND b.unit_price_cents > 0 AND b.started_at >= a.ended_at + interval '31 days'
          AND NOT EXISTS (SELECT 1 FROM subscriptions m WHERE m.tenant_id = a.tenant_id AND m.unit_price_cents > 0
                          AND m.started_at >= a.ended_at AND m.started_at < b.started_at)""")
    assert reactivated >= 1
    assert one(engine, "SELECT count(*) FROM tenants WHERE deleted IS NOT NULL") >= 1


def test_discounts_quantities_add_ons_and_currencies(demo):
    engine, _, _ = demo
    assert one(engine, "SELECT count(*) FROM subscriptions s JOIN plans p ON p.id = s.plan_id "
                       "WHERE s.unit_price_cents < p.price_cents") > 0
    assert one(engine, "SELECT count(*) FROM subscriptions WHERE unit_price_cents > 0 AND quantity > 1") > 0
    addons = dict(q(engine, "SELECT a.id, a.billing_cycle FROM addons a "
                            "WHERE EXISTS (SELECT 1 FROM subscription_addons s WHERE s.addon_id = a.id)"))
    assert addons == {"dedicated_ip": "month", "extra_domain": "month", "premium_support": "year"}
    # add-ons never outlive the subscription: a running add-on needs a running paid row
    stray = one(engine, """
        SELECT count(*) FROM subscription_addons a WHERE a.ended_at IS NULL AND NOT EXISTS (
          SELECT 1 FROM subscriptions s WHERE s.tenant_id = a.tenant_id AND s.ended_at IS NULL
            AND s.unit_price_cents > 0)""")
    assert stray == 0
    cur = dict(q(engine, "SELECT currency, count(*) FROM tenant_config GROUP BY 1"))
    assert set(cur) == {"usd", "eur"} and cur["eur"] > 5
    # EUR tenants are billed in EUR, and every month of the history has an EUR→USD rate
    assert one(engine, "SELECT count(*) FROM subscriptions s JOIN tenant_config c ON c.tenant_id = s.tenant_id "
                       "WHERE s.currency <> c.currency") == 0
    rates = q(engine, "SELECT month, base_currency, quote_currency, rate, source FROM pmfin_fx_rates ORDER BY month")
    assert [r[0] for r in rates] == [Month(2024, 5).add(i).first_day for i in range(14)]
    assert all(r[1:3] == ("eur", "usd") and r[4] == "demo" and Decimal("1.0") < r[3] < Decimal("1.2") for r in rates)


def test_every_revenue_stream_and_payment_status(demo):
    engine, _, _ = demo
    streams = {r[0] for r in q(engine, "SELECT DISTINCT revenue_stream FROM payments")}
    assert streams == {"subscription", "addon", "services", "marketplace", "connect"}
    statuses = {r[0] for r in q(engine, "SELECT DISTINCT status FROM payments")}
    assert statuses == {"succeeded", "failed", "refunded", "partially_refunded", "disputed"}
    failures = q(engine, "SELECT DISTINCT status = 'failed', failure_code, failure_message IS NOT NULL, "
                         "fee_cents IS NULL FROM payments")
    assert {r[1] for r in failures if r[0]} == {"card_declined", "insufficient_funds", "expired_card"}
    assert all(r[2] and r[3] for r in failures if r[0]) and all(r[1] is None for r in failures if not r[0])
    refunds = q(engine, "SELECT status, bool_and(refunded_cents = amount_cents), "
                        "bool_and(refunded_cents > 0 AND refunded_cents < amount_cents), bool_and(refunded_cents = 0) "
                        "FROM payments GROUP BY status")
    by_status = {r[0]: r[1:] for r in refunds}
    assert by_status["refunded"][0] and by_status["partially_refunded"][1] and by_status["succeeded"][2]
    # a subscription invoice is charged on each billing date: monthly rows every month, annual every year
    annual = q(engine, """
        SELECT count(*) FROM payments p JOIN subscriptions s ON s.tenant_id = p.tenant_id
        JOIN plans pl ON pl.id = s.plan_id AND pl.billing_cycle = 'year'
        WHERE p.revenue_stream = 'subscription' AND p.status <> 'failed'
          AND p.created_at >= coalesce(s.trial_ends_at, s.started_at) AND p.created_at < coalesce(s.ended_at, 'infinity')
          AND p.amount_cents = s.unit_price_cents * s.quantity""")
    assert annual[0][0] > 0
    assert one(engine, "SELECT count(DISTINCT stripe_charge_id) = count(*) FROM payments")
    assert one(engine, "SELECT min(created_at) >= :a AND max(created_at) < :b FROM payments", a=HIST_START, b=HIST_END)


def test_connect_charges_carry_the_stripe_fee_and_the_platform_share():
    """Of a $100.00 Connect charge the tenant keeps $77.00: the platform's 23 % = $23.00 covers
    Stripe's 2.9 % + 30¢ = $2.90 + $0.30 = $3.20 and leaves $19.80 (DESIGN.md §4)."""
    from pmfin.demo.generator import Generator, Options

    g = Generator(Options(1, 2, 1, Month(2025, 1), Decimal("2.9"), {"usd": 30, "eur": 25}, Decimal("0.23")))
    assert g.fee(10_000, "usd") == 320
    # 2.9 % of $12.50 = 36.25¢ → 36 (half-even), + 30 = 66
    assert g.fee(1_250, "usd") == 66
    # the fixed part is per currency: 2.9 % of €100 = 290 + 25 = 315
    assert g.fee(10_000, "eur") == 315


def test_connect_fees_in_the_database_follow_the_settings(demo):
    engine, _, _ = demo
    rows = q(engine, "SELECT p.amount_cents, p.fee_cents, p.application_fee_cents, p.status, p.stripe_account_id, "
                     "c.stripe_account_id, p.currency FROM payments p JOIN tenant_config c ON c.tenant_id = p.tenant_id "
                     "WHERE p.revenue_stream = 'connect'")
    assert len(rows) > 50

    def half_up(x: Decimal) -> int:  # PMFIN_FEE_ROUNDING's default, as Stripe rounds its fee
        return int(x.to_integral_value(rounding=ROUND_HALF_UP))

    for amount, fee, app_fee, status, account, tenant_account, currency in rows:
        assert account == tenant_account and account.startswith("acct_")
        if status == "failed":
            assert fee is None and app_fee is None
            continue
        assert app_fee == half_up(Decimal(amount) * Decimal("0.23"))
        assert fee == half_up(Decimal(amount) * Decimal("0.029")) + {"usd": 30, "eur": 25}[currency]
    # only Connect charges have an application fee and a connected account
    assert one(engine, "SELECT count(*) FROM payments WHERE revenue_stream <> 'connect' "
                       "AND (application_fee_cents IS NOT NULL OR stripe_account_id IS NOT NULL)") == 0


def test_connect_share_comes_from_the_settings(database_url, pmfin_home):
    run = make_cli({"DATABASE_URL": database_url, "PMFIN_HOME": str(pmfin_home),
                    "PMFIN_CONNECT_PLATFORM_SHARE": "0.10", "PMFIN_STRIPE_FEE_FIXED": "usd=25,eur=25",
                    "PMFIN_FEE_ROUNDING": "half_even"})
    result = run("demo", "--tenants", "60", "--months", "6", "--seed", "3", "--end", "2025-06", "--format", "json")
    assert result.exit_code == 0, result.output
    eng = create_engine(normalize(database_url))
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT amount_cents, fee_cents, application_fee_cents FROM payments "
                                 "WHERE revenue_stream = 'connect' AND status <> 'failed'")).all()
    eng.dispose()
    assert rows
    for amount, fee, app_fee in rows:
        assert app_fee == int((Decimal(amount) / 10).to_integral_value(rounding=ROUND_HALF_EVEN))
        assert fee == int((Decimal(amount) * Decimal("0.029")).to_integral_value(rounding=ROUND_HALF_EVEN)) + 25


def test_campaigns_and_emails(demo):
    engine, _, _ = demo
    statuses = dict(q(engine, "SELECT status, count(*) FROM emails GROUP BY 1"))
    assert set(statuses) == {"queued", "sent", "bounced", "failed"}
    total = sum(statuses.values())
    assert statuses["sent"] > 0.9 * total > statuses["bounced"] + statuses["failed"] + statuses["queued"]
    # sent and bounced emails have a send time inside the history; failed and queued ones none
    assert one(engine, "SELECT count(*) FROM emails WHERE (sent_at IS NULL) <> (status IN ('queued', 'failed'))") == 0
    assert one(engine, "SELECT min(sent_at) >= :a AND max(sent_at) < :b FROM emails", a=HIST_START, b=HIST_END)
    # every email belongs to a campaign of its tenant, sent after the campaign was created
    assert one(engine, "SELECT count(*) FROM emails e LEFT JOIN campaigns c ON c.tenant_id = e.tenant_id "
                       "AND c.id = e.campaign_id WHERE c.id IS NULL OR e.sent_at < c.created_at") == 0
    assert {r[0] for r in q(engine, "SELECT DISTINCT status FROM campaigns")} >= {"completed", "draft"}
    # every month of the history has email volume
    months = one(engine, "SELECT count(DISTINCT date_trunc('month', sent_at AT TIME ZONE 'UTC')) FROM emails")
    assert months == 14


def test_seats_ips_and_config(demo):
    engine, _, _ = demo
    seats = q(engine, "SELECT count(*), count(*) FILTER (WHERE deleted IS NOT NULL) FROM tenant_users")[0]
    assert seats[0] > 120 and seats[1] > 0
    assert one(engine, "SELECT count(*) FROM tenants t WHERE NOT EXISTS "
                       "(SELECT 1 FROM tenant_users u WHERE u.tenant_id = t.id)") == 0
    ips = q(engine, "SELECT count(*), count(*) FILTER (WHERE released_at IS NOT NULL), min(reputation_score), "
                    "max(reputation_score) FROM ip_allocations")[0]
    assert ips[0] > 0 and ips[1] > 0 and 0 <= ips[2] < ips[3] <= 100
    config = q(engine, "SELECT count(*), count(stripe_customer_id), count(stripe_account_id), "
                       "bool_and(stripe_customer_id LIKE 'cus\\_%'), bool_and(billing_email LIKE '%@%') "
                       "FROM tenant_config")[0]
    assert config[0] == config[1] == 120 and config[2] > 0 and config[3] and config[4]
    platform = q(engine, "SELECT value FROM system_config WHERE key = 'stripe_account_id'")
    assert len(platform) == 1 and platform[0][0].startswith("acct_")
    kinds = dict(q(engine, "SELECT kind, count(*) FROM pmfin_demo_objects WHERE seed = 7 GROUP BY 1"))
    assert kinds == {"tenant": 120, "plan": 5, "addon": 3, "system_config": 1}


def test_costs_for_every_month_in_every_category(demo):
    engine, _, _ = demo
    rows = q(engine, "SELECT month, category, kind, amount_cents, currency, source FROM pmfin_costs")
    assert {(r[1], r[2]) for r in rows} == {(c, "fixed") for c in FIXED_COSTS} | {(c, "variable") for c in VARIABLE_COSTS}
    assert {r[1] for r in rows} == {"infrastructure", "software", "personnel", "legal", "insurance", "operations",
                                    "marketing", "sales", "customer_success"}
    assert len({r[0] for r in rows}) == 14 and len(rows) == 14 * 9
    assert all(r[3] > 0 and r[3] % 100 == 0 and r[4] == "usd" and r[5] == "demo" for r in rows)
