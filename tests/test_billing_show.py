"""``pmfin billing show`` end to end: one tenant's billing from the database and the Stripe fake."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import text

from billing_fixtures import at, fail_payment
from pmfin.months import Month
from tenant_billing_fixtures import Catalog, documented, js

INSUFFICIENT = "4000000000009995"


@pytest.fixture
def cat(engine, stripe_fake):
    return Catalog(engine, stripe_fake)


def keys(obj, skip: tuple[str, ...], prefix: str = "") -> set[str]:
    out = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in skip and not prefix:
                out.add(k)
                continue
            out |= {k} | keys(v, skip, k)
    elif isinstance(obj, list) and obj:
        out |= keys(obj[0], skip, prefix)
    return out


def payment(engine, tenant, when, amount, status, *, code=None, message=None, invoice=None):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payments (tenant_id, id, stripe_invoice_id, revenue_stream, amount_cents, currency, "
                          "status, failure_code, failure_message, created_at) VALUES (:t, :id, :inv, 'subscription', :a, "
                          "'usd', :s, :c, :m, :w)"),
                     {"t": tenant, "id": uuid.uuid4(), "inv": invoice, "a": amount, "s": status, "c": code, "m": message,
                      "w": at(when)})


def emails(engine, tenant, n):
    sent = Month.current().start + dt.timedelta(minutes=1)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO emails (tenant_id, id, status, sent_at) SELECT :t, gen_random_uuid(), 'sent', :at "
                          "FROM generate_series(1, :n)"), {"t": tenant, "at": sent, "n": n})


def test_one_screen_from_the_database_and_stripe(cli, stripe_env, cat, engine, stripe_fake):
    t = cat.tenant("Acme", "professional", start="2026-11-15", seats=3, ips=1, cards=(INSUFFICIENT,))
    emails(engine, t.id, 120)
    payment(engine, t.id, "2026-10-15T09:00:00", 4900, "succeeded")
    payment(engine, t.id, "2026-11-15T09:00:00", 4900, "failed", code="card_declined",
            message="Your card has insufficient funds.")
    open_ = stripe_fake.billing.add_invoice(t.customer["id"], 4900, attempt_count=1, created=1_794_700_000)
    paid = stripe_fake.billing.add_invoice(t.customer["id"], 4900, status="paid", created=1_792_000_000)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO subscription_addons (tenant_id, id, addon_id, quantity, unit_price_cents, currency, "
                          "started_at) VALUES (:t, :id, 'dedicated_ip', 1, 4900, 'usd', '2026-06-01')"),
                     {"t": t.id, "id": uuid.uuid4()})

    d = js(cli("billing", "show", "--tenant", t.id, "-f", "json", env=stripe_env))
    assert set(d) == {"tenant", "as_of", "subscription", "addons", "mrr", "usage", "next_invoice", "plan_history", "payments",
                      "invoices", "connect", "dunning", "stripe_error", "notes"}
    assert d["tenant"] == {"tenant_id": t.id, "name": "Acme", "billing_email": "billing@acme.example", "country": "US",
                           "currency": "usd", "stripe_customer_id": t.customer["id"], "billing_status": "active",
                           "why": "no open dunning case"}
    s = d["subscription"]
    assert (s["plan"]["id"], s["price"], s["plan"]["billing_cycle"], s["stripe_subscription_id"]) == (
        "professional", 4900, "month", t.subscription["id"])
    assert d["mrr"] == {"mrr": 4900 + 4900, "currency": "usd"}  # the plan and the dedicated IP
    u = d["usage"]
    assert (u["emails_sent"], u["email_limit"], u["email_share"]) == (120, 50_000, 0.0024)
    assert (u["seats"], u["seat_limit"], u["seat_share"], u["ips"], u["ip_limit"], u["ip_share"], u["avg_reputation"]) == (
        3, 5, 0.6, 1, 1, 1, 90)
    n = d["next_invoice"]
    assert (n["source"], n["date"], n["amount_due"], n["total"], n["proration"]) == (
        "stripe", "2026-12-15T00:00:00+00:00", 4900, 4900, 0)
    assert [p["status"] for p in d["payments"]] == ["failed", "succeeded"]
    assert (d["payments"][0]["failure_code"], d["payments"][0]["failure_message"]) == (
        "card_declined", "Your card has insufficient funds.")
    assert [i["id"] for i in d["invoices"]] == [open_["id"], paid["id"]]
    assert d["invoices"][0]["invoice_pdf"] and d["invoices"][0]["hosted_invoice_url"]
    assert d["connect"]["status"] == "not_connected" and d["dunning"] == [] and d["stripe_error"] is None
    (preview,) = stripe_fake.requests_to("POST", "/v1/invoices/create_preview")
    assert preview.params == {"customer": t.customer["id"], "subscription": t.subscription["id"]}
    # every key is in the README (invoices, connect and dunning are documented with their own commands)
    text_ = documented("billing show")
    d["subscription"].pop("plan")  # as in plans list
    assert [k for k in sorted(keys(d, ("invoices", "connect", "dunning"))) if f"`{k}`" not in text_] == []
    assert stripe_fake.requests_to("POST", r"/v1/(subscriptions|customers|invoices/[^/]+/pay).*") == []

    table = cli("billing", "show", "--tenant", t.id, env=stripe_env)
    assert table.exit_code == 0, table.output
    for text_ in ("Professional (professional), $49.00 / month", "no open dunning case", "$98.00", "120", "2026-12-15: $49.00",
                  "Your card has insufficient funds.", "Dedicated IP × 1", "not_connected"):
        assert text_ in table.stdout, text_
    csv = cli("billing", "show", "--tenant", t.id, "-f", "csv", env=stripe_env)
    assert csv.exit_code == 0 and csv.stdout.startswith("# Billing of Acme\n")


def test_a_plan_change_shows_in_the_history_and_the_payments_answer_the_amount(cli, stripe_env, cat, engine):
    t = cat.tenant("Acme", "professional")
    assert cli("subscription", "change", "--tenant", t.id, "--to", "enterprise", "--yes", "--proration-date", "2026-01-16",
               env=stripe_env).exit_code == 0
    d = js(cli("billing", "show", "--tenant", t.id, "-f", "json", env=stripe_env))
    new, old = d["plan_history"][:2]
    assert (new["plan_id"], new["price"], new["change_credit"], new["change_charge"]) == ("enterprise", 9900, -2529, 5110)
    assert (old["plan_id"], old["end_reason"], old["change_credit"]) == ("professional", "plan_change", None)
    invoice = next(i for i in d["invoices"] if i["id"] == new["change_invoice"])
    assert (invoice["total"], invoice["status"]) == (2581, "paid")


def test_a_restricted_tenant_says_why(cli, stripe_env, cat, engine, stripe_fake):
    t = cat.tenant("Initech", "professional", cards=(INSUFFICIENT,))
    invoice = stripe_fake.billing.add_invoice(t.customer["id"], 4900, attempt_count=1)
    fail_payment(engine, t.id, invoice["id"], at("2026-11-02T10:00:00"), code="card_declined")
    assert cli("dunning", "run", "--as-of", "2026-11-09T12:00:00Z", env=stripe_env).exit_code == 0
    d = js(cli("billing", "show", "--tenant", t.id, "-f", "json", env=stripe_env))
    assert d["tenant"]["billing_status"] == "restricted"
    assert d["tenant"]["why"].startswith(f"restricted (campaign limits): invoice {invoice['number']} ($49.00) unpaid since "
                                         "2026-11-02 10:00 UTC (day ")
    assert d["tenant"]["why"].endswith("suspended from 2026-11-16 10:00 UTC unless paid")
    (case,) = d["dunning"]
    assert (case["invoice_id"], case["stage"], case["restricted_at"], case["retries_left"]) == (
        invoice["id"], "restricted", "2026-11-09T10:00:00+00:00", [])


def test_stripe_unreachable_still_shows_the_database(cli, stripe_env, cat, engine):
    t = cat.tenant("Acme", "professional")
    payment(engine, t.id, "2026-11-15T09:00:00", 4900, "failed", code="expired_card", message="Your card has expired.")
    result = cli("billing", "show", "--tenant", t.id, "-f", "json", env={**stripe_env, "STRIPE_API_BASE": "http://127.0.0.1:9"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith(f"error: could not list the invoices of customer {t.customer['id']}: no answer from http://127.0.0.1:9")
    d = json.loads(result.stdout)
    assert d["invoices"] is None and d["next_invoice"] is None and d["stripe_error"] in line
    assert d["payments"][0]["failure_code"] == "expired_card" and d["subscription"]["plan"]["id"] == "professional"


def test_a_tenant_without_stripe_and_bad_input(cli, stripe_env, cat, engine):
    bare = cat.tenant("Bare", "professional", stripe=False)
    d = js(cli("billing", "show", "--tenant", bare.id, "-f", "json", env={"STRIPE_API_KEY": None}))  # no Stripe needed
    assert d["invoices"] is None and d["stripe_error"] is None
    assert d["next_invoice"]["source"] == "database"
    assert d["notes"] == ["no Stripe customer (tenant_config.stripe_customer_id): nothing read from Stripe"]
    for args, message in ((["--tenant", "acme"], "error: tenant id must be a UUID, got 'acme'"),
                          ([], "error: --tenant is required"),
                          (["--tenant", str(uuid.uuid4()), "--payments", "101"], "error: --payments must be a whole number from 0 to 100, got 101")):
        result = cli("billing", "show", *args, env=stripe_env)
        assert result.exit_code == 2 and result.stderr.strip().splitlines()[0].startswith(message), result.stderr
    missing = cli("billing", "show", "--tenant", "00000000-0000-4000-8000-000000000000", env=stripe_env)
    assert missing.exit_code == 2 and missing.stderr.strip() == "error: no tenant with id 00000000-0000-4000-8000-000000000000"
