"""``pmfin payment-methods list|set-default|expiring`` end to end (the real CLI, SDK, HTTP to the Stripe
fake, PostgreSQL, and a real SMTP server for --notify)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from billing_fixtures import at, fail_payment
from smtp_server import body
from tenant_billing_fixtures import VISA, Catalog, documented, js, one_error, snapshot

INSUFFICIENT = "4000000000009995"
MASTERCARD = "5555555555554444"


@pytest.fixture
def cat(engine, stripe_fake):
    return Catalog(engine, stripe_fake)


# -- list ------------------------------------------------------------------------------------------


def test_list_shows_the_default_first_then_the_oldest(cli, stripe_env, cat, stripe_fake):
    t = cat.tenant("Acme", cards=(INSUFFICIENT, VISA))  # INSUFFICIENT the default; VISA newer
    old = stripe_fake.billing.add_card(t.customer["id"], MASTERCARD, exp_month=10, exp_year=2024, created=1_600_000_000)
    rows = js(cli("payment-methods", "list", "--tenant", t.id, "-f", "json", env=stripe_env))
    assert [(r["payment_method_id"], r["default"], r["expired"]) for r in rows] == [
        (t.cards[0], True, False), (old["id"], False, True), (t.cards[1], False, False)]
    assert (rows[0]["brand"], rows[0]["last4"], rows[0]["exp_month"], rows[0]["exp_year"], rows[0]["expires_on"]) == (
        "visa", "9995", 12, 2030, "2030-12-31")
    assert rows[1]["expires_on"] == "2024-10-31"
    table = cli("payment-methods", "list", "--tenant", t.id, env=stripe_env)
    assert table.exit_code == 0 and "10/2024" in table.stdout and "9995" in table.stdout
    csv = cli("payment-methods", "list", "--tenant", t.id, "-f", "csv", env=stripe_env)
    assert csv.stdout.splitlines()[0] == ("tenant_id,customer_id,payment_method_id,brand,last4,exp_month,exp_year,"
                                          "expires_on,default,expired")


def test_list_bad_input(cli, stripe_env, cat):
    bare = cat.tenant("Bare", stripe=False)
    assert one_error(cli("payment-methods", "list", "--tenant", bare.id, env=stripe_env)).endswith(
        "has no Stripe customer (tenant_config.stripe_customer_id)")
    assert one_error(cli("payment-methods", "list", env=stripe_env)) == "error: --tenant is required"
    assert one_error(cli("payment-methods", "list", "--tenant", "x", env=stripe_env)) == "error: tenant id must be a UUID, got 'x'"


# -- set-default -----------------------------------------------------------------------------------


def test_set_default_records_who_and_sends_one_key(cli, stripe_env, cat, stripe_fake, engine):
    t = cat.tenant("Acme", cards=(INSUFFICIENT, VISA))
    cus = t.customer["id"]
    out = js(cli("payment-methods", "set-default", t.cards[1], "--tenant", t.id, "-f", "json", env=stripe_env))
    assert (out["changed"], out["previous_default"], out["idempotency_key"]) == (
        True, t.cards[0], f"pmfin:payment-methods:set-default:{cus}:{t.cards[1]}:1")
    assert stripe_fake.billing.customer(cus)["invoice_settings"]["default_payment_method"] == t.cards[1]
    (post,) = stripe_fake.requests_to("POST", f"/v1/customers/{cus}")
    assert post.params == {"invoice_settings": {"default_payment_method": t.cards[1]}}
    # already the default: nothing is sent
    again = cli("payment-methods", "set-default", t.cards[1], "--tenant", t.id, env=stripe_env)
    assert again.exit_code == 0 and "already was the default" in again.stderr
    assert len(stripe_fake.requests_to("POST", f"/v1/customers/{cus}")) == 1
    # back and forth: every change has its own key
    js(cli("payment-methods", "set-default", t.cards[0], "--tenant", t.id, "-f", "json", env=stripe_env))
    third = js(cli("payment-methods", "set-default", t.cards[1], "--tenant", t.id, "-f", "json", env=stripe_env))
    assert third["idempotency_key"].endswith(f"{t.cards[1]}:3")
    assert stripe_fake.billing.customer(cus)["invoice_settings"]["default_payment_method"] == t.cards[1]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT payment_method_id, previous_default, outcome, requested_by "
                                 "FROM pmfin_payment_method_changes ORDER BY id")).all()
    assert [(r[0], r[1], r[2]) for r in rows] == [(t.cards[1], t.cards[0], "succeeded"), (t.cards[0], t.cards[1], "succeeded"),
                                                  (t.cards[1], t.cards[0], "succeeded")]
    assert all(r[3] for r in rows)


def test_set_default_refuses_what_cannot_be_the_default(cli, stripe_env, cat, stripe_fake, engine):
    t = cat.tenant("Acme", cards=(VISA,))
    expired = stripe_fake.billing.add_card(t.customer["id"], MASTERCARD, exp_month=11, exp_year=2024)
    before = snapshot(engine)
    assert one_error(cli("payment-methods", "set-default", expired["id"], "--tenant", t.id, env=stripe_env)) == (
        "error: mastercard •••• 4444 exp 11/2024 expired on 2024-11-30: it cannot pay anything, so it is not made the default")
    assert one_error(cli("payment-methods", "set-default", "pm_1Stranger", "--tenant", t.id, env=stripe_env)).startswith(
        f"error: pm_1Stranger is not a saved card of tenant {t.id} (Acme, customer {t.customer['id']}); its cards: ")
    assert one_error(cli("payment-methods", "set-default", "visa", "--tenant", t.id, env=stripe_env)) == (
        "error: a Stripe payment method id looks like pm_1AbC…, got 'visa'")
    assert snapshot(engine) == before and stripe_fake.requests_to("POST") == []


def test_set_default_is_refused_inside_the_dunning_retry_window(cli, stripe_env, cat, stripe_fake, engine):
    """Day 0 = 2026-11-02 10:00; retries due on days 1, 3, 5 (11-03, 11-05, 11-07 10:00). After the
    day-1 retry the window is still open (days 3 and 5 to come); a run on day 7 makes the day-5
    retry (day 3 skipped as late) and the window closes — the case still open, restricted — so the
    change is allowed."""
    t = cat.tenant("Acme", cards=(INSUFFICIENT,))
    invoice = stripe_fake.billing.add_invoice(t.customer["id"], 4900, attempt_count=1)
    fail_payment(engine, t.id, invoice["id"], at("2026-11-02T10:00:00"))
    assert cli("dunning", "run", "--as-of", "2026-11-03T10:00:00Z", env=stripe_env).exit_code == 0
    new = stripe_fake.billing.add_card(t.customer["id"], "4000000000000341")["id"]  # saved after day 1 (it declines too)
    before = snapshot(engine)
    posts = len(stripe_fake.requests_to("POST"))
    refused = one_error(cli("payment-methods", "set-default", new, "--tenant", t.id, env=stripe_env))
    assert refused == (
        f"error: tenant {t.id} (Acme) is in a dunning retry window: invoice {invoice['number']} ($49.00) failed on "
        "2026-11-02 10:00 UTC and the retries of day 3, 5 are still to come (the next due 2026-11-05 10:00 UTC), each "
        "trying the saved cards default first. The default card can be changed once the last retry (due 2026-11-07 "
        f"10:00 UTC) has run, or as soon as the invoice is paid: `pmfin invoices pay {invoice['id']} --payment-method PM` "
        "pays it with that card now")
    assert snapshot(engine) == before and len(stripe_fake.requests_to("POST")) == posts
    # billing show says the same
    shown = js(cli("billing", "show", "--tenant", t.id, "-f", "json", env=stripe_env))
    assert shown["dunning"][0]["card_change"] == ("blocked until the day-5 retry (due 2026-11-07 10:00 UTC) has run, "
                                                  "or the invoice is paid")
    # the last retry runs: allowed
    assert cli("dunning", "run", "--as-of", "2026-11-09T12:00:00Z", env=stripe_env).exit_code == 0
    shown = js(cli("billing", "show", "--tenant", t.id, "-f", "json", env=stripe_env))
    assert (shown["tenant"]["billing_status"], shown["dunning"][0]["card_change"]) == (
        "restricted", "allowed: every retry of this invoice has run")
    out = js(cli("payment-methods", "set-default", new, "--tenant", t.id, "-f", "json", env=stripe_env))
    assert out["changed"] is True


def test_set_default_after_a_lost_answer_sends_the_same_key(cli, stripe_env, cat, stripe_fake, engine):
    t = cat.tenant("Acme", cards=(INSUFFICIENT, VISA))
    path = f"/v1/customers/{t.customer['id']}"
    stripe_fake.inject("drop", after=True, method="POST", path=path, times=3)
    lost = one_error(cli("payment-methods", "set-default", t.cards[1], "--tenant", t.id, env=stripe_env))
    assert "rerunning is safe" in lost
    # Stripe did make the change: the rerun finds the card is the default, and sends nothing more
    rerun = cli("payment-methods", "set-default", t.cards[1], "--tenant", t.id, "-f", "json", env=stripe_env)
    assert rerun.exit_code == 0 and json.loads(rerun.stdout)["changed"] is False
    keys = {r.idempotency_key for r in stripe_fake.requests_to("POST", path)}
    assert keys == {f"pmfin:payment-methods:set-default:{t.customer['id']}:{t.cards[1]}:1"}


# -- expiring --------------------------------------------------------------------------------------

AS_OF = "2026-12-01T08:00:00Z"


@pytest.fixture
def fleet(cat, stripe_fake):
    """As of 2026-12-01 08:00, --within 30 reaches the cards that work through 2026-12-31:
    acme    12/2026, monthly renewing 2026-12-15 (before the card stops) then 2027-01-15 → listed, renews 2027-01-15
    globex  01/2027 → not within 30 days (within 61: listed)
    initech 11/2026 → already expired (works through 2026-11-30) → listed as expired, renews 2026-12-15
    umbrella 12/2026, but its subscription ends at the period's end → not listed
    hooli   12/2026, freemium (nothing is charged) → not listed
    stark   12/2026 but not its default card → not listed
    wayne   12/2026, annual, renewing 2027-03-01 → listed, renews 2027-03-01
    """
    t = {}

    def tenant(name, exp, plan="professional", start="2026-11-15", default=True):
        tt = cat.tenant(name, plan, start=start, cards=(VISA,))
        if exp is not None:
            stripe_fake.billing.add_card(tt.customer["id"], MASTERCARD, exp_month=exp[0], exp_year=exp[1], make_default=default)
        t[name] = tt
        return tt

    tenant("acme", (12, 2026))
    tenant("globex", (1, 2027))
    tenant("initech", (11, 2026))
    tenant("umbrella", (12, 2026))
    tenant("hooli", (12, 2026), plan="freemium")
    tenant("stark", (12, 2026), default=False)
    tenant("wayne", (12, 2026), plan="enterprise_annual", start="2026-03-01")
    with cat.engine.begin() as conn:
        conn.execute(text("UPDATE subscriptions SET cancel_at_period_end = true WHERE tenant_id = :t"), {"t": t["umbrella"].id})
    return t


def test_expiring_lists_default_cards_before_the_renewal_that_would_fail(cli, stripe_env, fleet):
    out = js(cli("payment-methods", "expiring", "--as-of", AS_OF, "-f", "json", env=stripe_env))
    got = [(c["tenant_name"], c["expires_on"], c["status"], c["days_left"], c["renews_at"], c["amount"]) for c in out["cards"]]
    assert got == [
        ("initech", "2026-11-30", "expired", -1, "2026-12-15T00:00:00+00:00", 4900),
        ("acme", "2026-12-31", "expiring", 30, "2027-01-15T00:00:00+00:00", 4900),
        ("wayne", "2026-12-31", "expiring", 30, "2027-03-01T00:00:00+00:00", 99000),
    ]
    assert out["summary"]["tenants_checked"] == 6 and out["summary"]["notified"] is None  # hooli pays nothing
    assert all(c["notified"] is None for c in out["cards"])
    text_ = documented("payment-methods expiring")
    assert [k for k in [*out["summary"], *out["cards"][0]] if k not in text_] == []
    wider = js(cli("payment-methods", "expiring", "--as-of", AS_OF, "--within", "61", "-f", "json", env=stripe_env))
    assert [c["tenant_name"] for c in wider["cards"]] == ["initech", "acme", "wayne", "globex"]
    table = cli("payment-methods", "expiring", "--as-of", AS_OF, env=stripe_env)
    assert table.exit_code == 0 and "mastercard •••• 4444 exp 12/2026" in table.stdout


def test_expiring_notify_tells_each_card_once(cli, stripe_env, fleet, engine, smtp):
    env = {**stripe_env, **smtp.env()}
    first = js(cli("payment-methods", "expiring", "--as-of", AS_OF, "--notify", "-f", "json", env=env))
    assert [c["notified"] for c in first["cards"]] == [True, True, True]
    assert (first["summary"]["notified"], first["summary"]["emails_sent"]) == (3, 3)
    second = js(cli("payment-methods", "expiring", "--as-of", "2026-12-05T08:00:00Z", "--notify", "-f", "json", env=env))
    assert [c["notified"] for c in second["cards"]] == [False, False, False] and second["summary"]["emails_sent"] == 0
    assert len(smtp.messages) == 3
    acme = next(m for m in smtp.messages if m["To"] == "billing@acme.example")
    assert acme["Subject"] == "Your Mastercard card ending 4444 expires on 2026-12-31"
    assert "The next charge, $49.00 on 2027-01-15, would fail on it." in body(acme)
    assert "https://app.penguinmails.example/dashboard/settings/billing" in body(acme)
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(text("SELECT key FROM pmfin_alerts WHERE kind = 'card_expiring' ORDER BY key"))]
    pm = fleet["acme"].customer["id"]
    assert len(keys) == 3 and all(k.startswith("card_expiring:pm_") for k in keys) and pm


def test_expiring_bad_input(cli, stripe_env, fleet):
    assert one_error(cli("payment-methods", "expiring", "--within", "-1", env=stripe_env)) == (
        "error: --within must be a whole number of days from 0 to 366, got -1")
    assert one_error(cli("payment-methods", "expiring", "--within", "soon", env=stripe_env)).startswith("error: ")
    assert one_error(cli("payment-methods", "expiring", "--as-of", "tomorrow", env=stripe_env)).startswith(
        "error: --as-of must be an ISO 8601 instant")
