"""``pmfin disputes`` through the real CLI and SDK against the Stripe fake, notifications over a real
SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pytest
from sqlalchemy import text

from billing_fixtures import add_tenant, alerts, notifications
from smtp_server import body

UTC = dt.timezone.utc
DAY = 86_400


@pytest.fixture
def acme(engine, stripe_fake):
    """A tenant with a Stripe customer, a plan, a campaign of emails in October 2026 and two seats."""
    customer = stripe_fake.billing.add_customer(email="billing@acme.example", name="Acme Outreach")
    tenant = add_tenant(engine, "Acme Outreach", email="billing@acme.example", customer=customer["id"])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency) "
                          "VALUES ('professional', 'Professional', 'professional', 'month', 14900, 'usd')"))
        conn.execute(text("INSERT INTO subscriptions (tenant_id, id, plan_id, unit_price_cents, currency, started_at) "
                          "VALUES (:t, gen_random_uuid(), 'professional', 14900, 'usd', '2026-01-05T09:00Z')"), {"t": tenant})
        campaign = str(uuid.uuid4())
        conn.execute(text("INSERT INTO campaigns (tenant_id, id, name, created_at) VALUES (:t, :c, 'Q4 outbound', '2026-09-28T10:00Z')"),
                     {"t": tenant, "c": campaign})
        # 300 emails sent 2026-10-01 08:01 … 13:00 (one a minute), and 5 in November (not the disputed month)
        conn.execute(text("INSERT INTO emails (tenant_id, id, campaign_id, status, sent_at) SELECT :t, gen_random_uuid(), :c, "
                          "'sent', '2026-10-01T08:00Z'::timestamptz + make_interval(mins => g) FROM generate_series(1, 300) g"),
                     {"t": tenant, "c": campaign})
        conn.execute(text("INSERT INTO emails (tenant_id, id, campaign_id, status, sent_at) SELECT :t, gen_random_uuid(), :c, "
                          "'sent', '2026-11-03T08:00Z' FROM generate_series(1, 5)"), {"t": tenant, "c": campaign})
        conn.execute(text("INSERT INTO tenant_users (tenant_id, user_id, email, created, deleted) VALUES "
                          "(:t, gen_random_uuid(), 'maria@acme.example', '2026-01-05T09:10Z', NULL), "
                          "(:t, gen_random_uuid(), 'gone@acme.example', '2026-02-01T09:10Z', '2026-06-01T00:00Z')"), {"t": tenant})
    charge = stripe_fake.payments.add_charge(14_900, customer=customer["id"],
                                             created=int(dt.datetime(2026, 10, 15, 12, tzinfo=UTC).timestamp()))
    return {"tenant": tenant, "customer": customer, "charge": charge}


def test_sync_stores_disputes_and_tells_each_new_one_once(cli, engine, stripe_fake, stripe_env, acme, smtp):
    dispute = stripe_fake.payments.add_dispute(acme["charge"]["id"], reason="product_not_received")
    env = {**stripe_env, **smtp.env(), "PMFIN_FINANCE_EMAIL": "finance@penguinmails.example"}
    first = cli("disputes", "sync", "--format", "json", env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"disputes": 1, "new": 1, "updated": 0}
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM pmfin_disputes")).mappings().one()
    assert (str(row["tenant_id"]), row["charge_id"], row["amount"], row["reason"], row["status"]) == (
        acme["tenant"], acme["charge"]["id"], 14900, "product_not_received", "needs_response")
    assert row["due_by"] == dt.datetime.fromtimestamp(dispute["evidence_details"]["due_by"], UTC)
    # one urgent email to the tenant, one to finance, one banner
    assert sorted(m["To"] for m in smtp.messages) == ["billing@acme.example", "finance@penguinmails.example"]
    assert all(m["Subject"].startswith("URGENT: a payment of $149.00 is disputed (product not received)") for m in smtp.messages)
    assert "pmfin disputes evidence " + dispute["id"] in body([m for m in smtp.messages if m["To"].startswith("finance")][0])
    (alert,) = alerts(engine, acme["tenant"], open_only=True)
    assert (alert["kind"], alert["severity"]) == ("dispute", "critical")
    # a second sync updates, and tells nobody again
    second = cli("disputes", "sync", "--format", "json", env=env)
    assert json.loads(second.stdout) == {"disputes": 1, "new": 0, "updated": 1}
    assert len(smtp.messages) == 2 and len(notifications(engine)) == 2


def test_a_connect_charge_dispute_belongs_to_the_destination_tenant(cli, engine, stripe_fake, stripe_env):
    account = stripe_fake.accounts.add()["id"]
    tenant = add_tenant(engine, "Globex")
    with engine.begin() as conn:
        conn.execute(text("UPDATE tenant_config SET stripe_account_id = :a WHERE tenant_id = :t"), {"a": account, "t": tenant})
    charge = stripe_fake.payments.add_charge(5_000, destination=account, application_fee_amount=1150)
    stripe_fake.payments.add_dispute(charge["id"])
    assert cli("disputes", "sync", env=stripe_env).exit_code == 0
    (row,) = json.loads(cli("disputes", "list", "--format", "json").stdout)
    assert row["tenant_id"] == tenant and row["tenant_name"] == "Globex"


def test_list_by_deadline_marks_what_is_due_soon_and_overdue(cli, engine, stripe_fake, stripe_env, acme):
    now = int(time.time())
    charge2 = stripe_fake.payments.add_charge(2_000, customer=acme["customer"]["id"])
    charge3 = stripe_fake.payments.add_charge(3_000, customer=acme["customer"]["id"])
    soon = stripe_fake.payments.add_dispute(acme["charge"]["id"], due_by=now + 3 * DAY)
    later = stripe_fake.payments.add_dispute(charge2["id"], due_by=now + 20 * DAY)
    late = stripe_fake.payments.add_dispute(charge3["id"], created=now - 20 * DAY, due_by=now - 2 * DAY)
    assert cli("disputes", "sync", env=stripe_env).exit_code == 0
    rows = json.loads(cli("disputes", "list", "--open", "--format", "json").stdout)
    assert [r["id"] for r in rows] == [late["id"], soon["id"], later["id"]]  # by deadline
    assert [r["due_soon"] for r in rows] == [False, True, False]
    within = json.loads(cli("disputes", "list", "--due-within", "7", "--format", "json").stdout)
    assert [r["id"] for r in within] == [late["id"], soon["id"]]
    table = cli("disputes", "list")
    assert table.exit_code == 0
    line = {r["id"]: next(ln for ln in table.stdout.splitlines() if r["id"] in ln) for r in rows}
    assert "OVERDUE" in line[late["id"]] and "DUE SOON" in line[soon["id"]] and "DUE" not in line[later["id"]]
    stripe_fake.payments.close_dispute(soon["id"], "won")
    assert cli("disputes", "sync", env=stripe_env).exit_code == 0
    assert soon["id"] not in [r["id"] for r in json.loads(cli("disputes", "list", "--open", "-f", "json").stdout)]


def test_evidence_is_built_from_the_platforms_records_and_staged_then_submitted(cli, engine, stripe_fake, stripe_env, acme):
    dispute = stripe_fake.payments.add_dispute(acme["charge"]["id"], reason="product_not_received")
    cli("disputes", "sync", env=stripe_env)
    staged = cli("disputes", "evidence", dispute["id"], "--format", "json", env=stripe_env)
    assert staged.exit_code == 0, staged.output
    out = json.loads(staged.stdout)
    ev = out["evidence"]
    assert out["period"] == "2026-10" and out["submitted"] is False and out["status"] == "needs_response"
    assert out["sources"] == {"period": "2026-10", "subscriptions": 1, "campaigns": 1, "emails_sent": 300, "seats": 1}
    assert "Professional (professional, billed per month): $149.00 per month, from 2026-01-05 (active)" in ev["product_description"]
    # 300 emails, one a minute from 08:01: the last at 13:00 (the 5 November ones are another month)
    assert ev["uncategorized_text"].startswith("Email records for 2026-10 (UTC): 300 emails sent in 1 campaign(s).")
    assert "first 2026-10-01 08:01, last 2026-10-01 13:00 UTC" in ev["uncategorized_text"]
    assert "maria@acme.example: access from 2026-01-05 (still active)" in ev["access_activity_log"]
    assert "gone@acme.example" not in ev["access_activity_log"]  # left before October
    assert (ev["service_date"], ev["customer_email_address"], ev["customer_name"]) == ("2026-10-15", "billing@acme.example", "Acme Outreach")
    (post,) = stripe_fake.requests_to("POST", f"/v1/disputes/{dispute['id']}")
    assert post.params["submit"] == "false" and post.params["evidence"]["service_date"] == "2026-10-15"
    assert post.idempotency_key.startswith(f"pmfin:disputes:evidence:{dispute['id']}:stage:")
    assert stripe_fake.payments.dispute(dispute["id"])["evidence"]["customer_name"] == "Acme Outreach"

    # submitting is final: not without a terminal unless --yes
    refused = cli("disputes", "evidence", dispute["id"], "--submit", env=stripe_env)
    assert refused.exit_code == 2 and "pass --yes to confirm" in refused.stderr
    assert stripe_fake.payments.dispute(dispute["id"])["status"] == "needs_response"
    submitted = cli("disputes", "evidence", dispute["id"], "--submit", "--yes", "--format", "json", env=stripe_env)
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["status"] == "under_review"
    shown = json.loads(cli("disputes", "show", dispute["id"], "--format", "json").stdout)["dispute"]
    assert shown["status"] == "under_review" and shown["evidence_submitted_at"] and shown["submission_count"] == 1
    again = cli("disputes", "evidence", dispute["id"], env=stripe_env)
    assert again.exit_code == 2 and again.stderr.strip().endswith("Stripe takes evidence only while it needs a response")


@pytest.mark.parametrize("args, message", [
    (["show", "chargeback-1"], "a Stripe dispute id looks like du_1AbC… (or dp_…), got 'chargeback-1'"),
    (["show", "dp_1Nowhere"], "no dispute dp_1Nowhere in pmfin (run `pmfin disputes sync` first)"),
    (["evidence", "dp_1Nowhere"], "no dispute dp_1Nowhere in pmfin (run `pmfin disputes sync` first)"),
    (["sync", "--since", "yesterday"], "--since must be a date YYYY-MM-DD, got 'yesterday'"),
])
def test_bad_input_is_one_line(cli, stripe_env, args, message):
    result = cli("disputes", *args, env=stripe_env)
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {message}"
