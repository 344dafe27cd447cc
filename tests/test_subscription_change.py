"""``pmfin subscription change`` end to end: the real CLI, the real Stripe SDK over HTTP to the Stripe
fake (whose ``create_preview`` prorates per second as Stripe does), a real PostgreSQL — with the
arithmetic of each case worked by hand, and the history rows fed to ``report mrr``.

Proration, per second of the item's period: round(unit_amount × quantity × (period_end −
proration_date) ÷ (period_end − period_start)), half up; the credit for the old price, the charge
for the new one (``always_invoice``: both invoiced and charged at once).
"""

from __future__ import annotations


import pytest
from sqlalchemy import text

from tenant_billing_fixtures import DECLINES, Catalog, documented, history, instant, js, one_error, plan_changes, snapshot, unix


@pytest.fixture
def cat(engine, stripe_fake):
    return Catalog(engine, stripe_fake)


def change(cli, env, tenant, to, *args):
    return cli("subscription", "change", "--tenant", tenant, "--to", to, *args, env=env)


def mrr(cli, month: str) -> dict:
    return js(cli("report", "mrr", "--month", month, "--format", "json"))


CASES = {
    # Professional $49.00 → Enterprise $99.00 on 16 January 00:00; period 1 January – 1 February (31
    # days), 16 days left: credit −4900 × 16/31 = −2529.03 → −2529; charge +9900 × 16/31 = 5109.68 →
    # 5110; total 2581. MRR at the end of January 4900 → 9900: expansion 5000.
    "monthly upgrade": dict(frm="professional", to="enterprise", quantity=1, at="2026-01-16T00:00:00",
                            credit=-2529, charge=5110, total=2581, paid=2581, month="2026-01",
                            movement=("expansion", 5000), mrr=9900, unit=9900),
    # 2 × Enterprise → 2 × Professional on 21 January 12:00; 10.5 of 31 days left (907,200 of
    # 2,678,400 s): credit −19800 × 0.33871 = −6706.45 → −6706; charge +9800 × 0.33871 = 3319.35 →
    # 3319; total −3387: nothing is charged, the customer keeps a credit of 3387. MRR 19800 → 9800:
    # contraction 10000.
    "monthly downgrade, 2 seats": dict(frm="enterprise", to="professional", quantity=2, at="2026-01-21T12:00:00",
                                       credit=-6706, charge=3319, total=-3387, paid=0, month="2026-01",
                                       movement=("contraction", 10000), mrr=9800, unit=4900),
    # Professional annual $490 → Enterprise annual $990 on 1 April; period 2026 (365 days), 275 days
    # left: credit −49000 × 275/365 = −36917.81 → −36918; charge +99000 × 275/365 = 74589.04 → 74589;
    # total 37671. MRR 49000/12 = 4083.33 → 4083; 99000/12 = 8250: expansion 4167.
    "annual upgrade": dict(frm="professional_annual", to="enterprise_annual", quantity=1, at="2026-04-01T00:00:00",
                           credit=-36918, charge=74589, total=37671, paid=37671, month="2026-04",
                           movement=("expansion", 4167), mrr=8250, unit=99000),
    # Enterprise annual → Professional annual on 15 October 06:00; 77.75 days left (6,717,600 of
    # 31,536,000 s): credit −99000 × 0.213014 = −21088.36 → −21088; charge +49000 × 0.213014 =
    # 10437.67 → 10438; total −10650 (a credit). MRR 8250 → 4083: contraction 4167.
    "annual downgrade": dict(frm="enterprise_annual", to="professional_annual", quantity=1, at="2026-10-15T06:00:00",
                             credit=-21088, charge=10438, total=-10650, paid=0, month="2026-10",
                             movement=("contraction", 4167), mrr=4083, unit=49000),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mid_cycle_change_previewed_applied_and_recorded(cli, stripe_env, cat, engine, stripe_fake, case):
    c = CASES[case]
    t = cat.tenant("Acme", c["frm"], quantity=c["quantity"], seats=2)
    before = snapshot(engine)
    mrr_before = mrr(cli, c["month"])

    # --preview: Stripe's figures, nothing written, nothing changed at Stripe
    p = js(change(cli, stripe_env, t.id, c["to"], "--preview", "--proration-date", c["at"], "--format", "json"))
    assert (p["credit"], p["charge"], p["total"], p["currency"]) == (c["credit"], c["charge"], c["total"], "usd")
    assert p["proration_date"] == instant(c["at"]).isoformat() and p["proration_behavior"] == "always_invoice"
    due = [ln for ln in p["lines"] if ln["due_now"]]
    assert [ln["proration"] for ln in due] == [True, True] and sum(ln["amount"] for ln in due) == c["total"]
    assert p["amount_due"] == c["paid"]
    assert snapshot(engine) == before and stripe_fake.requests_to("POST", r"/v1/subscriptions/.*") == []
    (preview_req,) = stripe_fake.requests_to("POST", "/v1/invoices/create_preview")
    assert preview_req.params["subscription_details"]["proration_date"] == str(unix(c["at"]))

    # the change, confirmed with --yes
    out = js(change(cli, stripe_env, t.id, c["to"], "--yes", "--proration-date", c["at"], "--format", "json"))
    result = out["result"]
    key = f"pmfin:subscription:change:{t.id}:{t.subscription['id']}:{cat.prices[c['to']]['id']}:{unix(c['at'])}"
    assert (result["status"], result["idempotency_key"], result["total"], result["replayed"]) == ("applied", key, c["total"], False)
    assert out["preview"]["total"] == c["total"]
    text_ = documented("subscription change --preview")
    assert [k for k in [*out, *out["preview"], *out["preview"]["lines"][0], *result] if k not in text_] == []
    (update,) = stripe_fake.requests_to("POST", f"/v1/subscriptions/{t.subscription['id']}")
    assert update.idempotency_key == key
    assert update.params["proration_date"] == str(unix(c["at"])) and update.params["proration_behavior"] == "always_invoice"
    assert update.params["items"] == [{"id": t.subscription["items"]["data"][0]["id"], "price": cat.prices[c["to"]]["id"]}]
    assert stripe_fake.subscriptions.get(t.subscription["id"])["items"]["data"][0]["price"]["id"] == cat.prices[c["to"]]["id"]
    invoice = stripe_fake.billing.invoice(result["stripe_invoice_id"])
    assert (invoice["total"], invoice["amount_paid"], invoice["status"]) == (c["total"], c["paid"], "paid")
    assert result["amount_paid"] == c["paid"]

    # the history: the current row ends at the proration date, the next starts at the same instant
    old, new = history(engine, t.id)
    at = instant(c["at"])
    assert (str(old["id"]), old["plan_id"], old["ended_at"], old["end_reason"]) == (t.row, c["frm"], at, "plan_change")
    assert (new["plan_id"], new["started_at"], new["ended_at"], new["unit_price_cents"], new["quantity"]) == (
        c["to"], at, None, c["unit"], c["quantity"])
    assert new["stripe_subscription_id"] == t.subscription["id"] and str(new["id"]) == result["started_row_id"]
    (recorded,) = plan_changes(engine, t.id)
    assert (recorded["status"], recorded["credit"], recorded["charge"], recorded["to_row_id"]) == (
        "applied", c["credit"], c["charge"], new["id"])

    # report mrr sees the expansion or contraction in that month
    after = mrr(cli, c["month"])
    kind, amount = c["movement"]
    assert after[kind] - mrr_before[kind] == amount and after["mrr"] == c["mrr"]

    # the same command again: already on that plan
    assert one_error(change(cli, stripe_env, t.id, c["to"], "--yes")).endswith(f"is already on plan {c['to']}")


def test_monthly_to_annual_restarts_the_cycle_and_charges_the_year_now(cli, stripe_env, cat, engine, stripe_fake):
    """Professional $49.00 a month → Professional annual $490.00 on 16 January: the interval
    changes, so the cycle restarts at the change and the year is due now:
      credit −4900 × 16/31 → −2529; charge: the year 16 January 2026 – 16 January 2027, 49000;
      total 46471. MRR at the end of January: 4900 → 49000/12 = 4083.33 → 4083 (a contraction of 817)."""
    t = cat.tenant("Acme", "professional")
    out = js(change(cli, stripe_env, t.id, "professional_annual", "--yes", "--proration-date", "2026-01-16T00:00:00Z",
                    "-f", "json"))
    p, r = out["preview"], out["result"]
    assert (p["credit"], p["charge"], p["total"], p["direction"]) == (-2529, 49000, 46471, "downgrade")
    assert [(ln["amount"], ln["proration"]) for ln in p["lines"] if ln["due_now"]] == [(-2529, True), (49000, False)]
    assert p["next_renewal"] == "2027-01-16T00:00:00+00:00"
    assert r["amount_paid"] == 46471
    old, new = history(engine, t.id)
    assert (new["plan_id"], new["current_period_start"], new["current_period_end"]) == (
        "professional_annual", instant("2026-01-16"), instant("2027-01-16"))
    assert mrr(cli, "2026-01")["mrr"] == 4083


def test_the_table_and_the_question(cli, stripe_env, cat, engine):
    t = cat.tenant("Acme", "professional")
    shown = change(cli, stripe_env, t.id, "enterprise", "--preview", "--proration-date", "2026-01-16")
    assert shown.exit_code == 0, shown.output
    for text_ in ("credit for unused time", "-$25.29", "new charge", "$51.10", "total due now", "$25.81",
                  "Unused time on Professional after 16 Jan 2026", "Remaining time on Enterprise after 16 Jan 2026"):
        assert text_ in shown.stdout, text_
    # not on a terminal and no --yes: the preview, then a refusal; nothing changed
    before = snapshot(engine)
    refused = change(cli, stripe_env, t.id, "enterprise", "--proration-date", "2026-01-16")
    assert one_error(refused).endswith("not on a terminal, so pass --yes to confirm")
    assert "total due now" in refused.stdout and snapshot(engine) == before


@pytest.mark.parametrize(
    "setup, args, message",
    [
        ("plain", ["--to", "platinum"], "error: no plan 'platinum'; the plans are: enterprise, enterprise_annual, freemium, "
                                        "professional, professional_annual (see `pmfin plans list`)"),
        ("plain", ["--to", "professional"], "is already on plan professional"),
        ("plain", ["--to", "pro fessional"], "error: --to must be a plan id such as professional_annual"),
        ("plain", [], "error: --to must be a plan id such as professional_annual"),
        ("plain", ["--to", "freemium"], "error: plan freemium has no Stripe price (plans.stripe_price_id): it cannot be billed"),
        ("inactive", ["--to", "enterprise"], "error: plan enterprise is no longer offered (plans.active is false)"),
        ("no_stripe_subscription", ["--to", "enterprise"], "has no Stripe subscription (subscriptions.stripe_subscription_id is empty)"),
        ("no_subscription", ["--to", "enterprise"], "has no current subscription to change"),
        ("euro", ["--to", "enterprise"], "error: plan enterprise_eur is priced in EUR"),
        ("plain", ["--to", "enterprise", "--proration-date", "2026-03-01T00:00:00Z"],
         "is outside the current billing period (2026-01-01 00:00:00 – 2026-02-01 00:00:00 UTC)"),
        ("plain", ["--to", "enterprise", "--proration-date", "2999-01-01"], "error: --proration-date must not be in the future"),
        ("plain", ["--to", "enterprise", "--proration-date", "yesterday"], "error: --proration-date must be an ISO 8601 instant"),
        ("plain", ["--to", "enterprise", "--proration-date", "2025-09-30T23:59:59Z"],
         "the proration date must be after its current row began"),
        ("bad_tenant", ["--to", "enterprise"], "error: tenant id must be a UUID, got 'acme'"),
        ("unknown_tenant", ["--to", "enterprise"], "error: no tenant with id 00000000-0000-4000-8000-000000000000"),
    ],
)
def test_bad_input_changes_nothing(cli, stripe_env, cat, engine, stripe_fake, setup, args, message):
    t = cat.tenant("Acme", "professional")
    tenant = t.id
    if setup == "inactive":
        with engine.begin() as conn:
            conn.execute(text("UPDATE plans SET active = false WHERE id = 'enterprise'"))
    elif setup == "no_stripe_subscription":
        tenant = cat.tenant("Initech", "professional", subscribed=False).id
    elif setup == "no_subscription":
        tenant = cat.tenant("Globex", None).id
    elif setup == "euro":
        with engine.begin() as conn:
            conn.execute(text("UPDATE plans SET id = 'enterprise_eur', currency = 'eur' WHERE id = 'enterprise'"))
        args = ["--to", "enterprise_eur"]
    elif setup == "bad_tenant":
        tenant = "acme"
    elif setup == "unknown_tenant":
        tenant = "00000000-0000-4000-8000-000000000000"
    before = snapshot(engine)
    for extra in (["--preview"], ["--yes"]):
        got = one_error(cli("subscription", "change", "--tenant", tenant, *args, *extra, env=stripe_env))
        assert message in got, got
    assert snapshot(engine) == before
    assert stripe_fake.requests_to("POST") == [] or setup == "plain" and "outside" in message
    assert stripe_fake.requests_to("POST", r"/v1/subscriptions/.*") == []


def test_a_downgrade_below_the_seats_or_ips_in_use_needs_force(cli, stripe_env, cat, engine, stripe_fake):
    t = cat.tenant("Acme", "enterprise", seats=7, ips=3)
    before = snapshot(engine)
    refused = one_error(change(cli, stripe_env, t.id, "professional", "--yes", "--proration-date", "2026-01-20"))
    assert refused == (f"error: refusing to move tenant {t.id} (Acme) to professional below its current usage: "
                       "7 seats in use, professional allows 5: remove 2 first; "
                       "3 IPs allocated, professional allows 1: release 2 first (or pass --force)")
    assert snapshot(engine) == before and stripe_fake.requests_to("POST") == []
    forced = js(change(cli, stripe_env, t.id, "professional", "--yes", "--force", "--proration-date", "2026-01-20",
                       "-f", "json"))
    assert forced["result"]["status"] == "applied"
    assert forced["preview"]["forced"] == ["7 seats in use, professional allows 5: remove 2 first",
                                           "3 IPs allocated, professional allows 1: release 2 first"]
    assert [r["plan_id"] for r in history(engine, t.id)] == ["enterprise", "professional"]


def test_a_declined_card_changes_nothing(cli, stripe_env, cat, engine, stripe_fake):
    t = cat.tenant("Acme", "professional", cards=(DECLINES,))
    declined = change(cli, stripe_env, t.id, "enterprise", "--yes", "--proration-date", "2026-01-16")
    assert one_error(declined, code=1).startswith(f"error: the card of tenant {t.id} (Acme) was declined (card_declined")
    assert stripe_fake.subscriptions.get(t.subscription["id"])["items"]["data"][0]["price"]["id"] == cat.prices["professional"]["id"]
    assert [r["plan_id"] for r in history(engine, t.id)] == ["professional"]
    assert [(c["status"], c["to_row_id"]) for c in plan_changes(engine, t.id)] == [("declined", None)]
    assert stripe_fake.billing.invoices(t.customer["id"]) == []


def test_a_lost_answer_is_finished_by_the_rerun_under_the_same_key(cli, stripe_env, cat, engine, stripe_fake):
    """Stripe made the change, but every answer was lost (the SDK's retries too): the command fails
    saying the change is pending; the history is not written. The rerun sends the same request
    under the same key — Stripe replays its answer, one change, one invoice — and writes the history."""
    t = cat.tenant("Acme", "professional")
    path = f"/v1/subscriptions/{t.subscription['id']}"
    stripe_fake.inject("drop", after=True, method="POST", path=path, times=3)
    lost = one_error(change(cli, stripe_env, t.id, "enterprise", "--yes", "--proration-date", "2026-01-16"))
    assert "the change stays pending" in lost and "run the same command again" in lost
    (pending,) = plan_changes(engine, t.id)
    assert pending["status"] == "pending" and [r["plan_id"] for r in history(engine, t.id)] == ["professional"]

    rerun = js(change(cli, stripe_env, t.id, "enterprise", "--yes", "--format", "json"))  # a new run, a new "now"
    assert rerun["preview"] is None and rerun["result"]["replayed"] is True
    assert rerun["result"]["idempotency_key"] == pending["idempotency_key"]
    assert {r.idempotency_key for r in stripe_fake.requests_to("POST", path)} == {pending["idempotency_key"]}
    assert stripe_fake.requests_to("POST", path)[-1].replayed is True
    assert len(stripe_fake.billing.invoices(t.customer["id"])) == 1  # charged once
    old, new = history(engine, t.id)
    assert (old["ended_at"], new["started_at"], new["plan_id"]) == (instant("2026-01-16"), instant("2026-01-16"), "enterprise")
    assert [c["status"] for c in plan_changes(engine, t.id)] == ["applied"]


def test_stripe_unreachable_is_one_line_and_changes_nothing(cli, stripe_env, cat, engine):
    t = cat.tenant("Acme", "professional")
    before = snapshot(engine)
    env = {**stripe_env, "STRIPE_API_BASE": "http://127.0.0.1:9"}
    message = one_error(change(cli, env, t.id, "enterprise", "--yes"))
    assert message.startswith("error: could not read subscription") and "no answer from http://127.0.0.1:9" in message
    assert snapshot(engine) == before


def test_the_platform_history_feeds_the_movements_of_the_month(cli, stripe_env, cat, engine):
    """Two tenants change in January: Acme up (+5000), Globex down with 2 seats (−10000)."""
    acme = cat.tenant("Acme", "professional")
    globex = cat.tenant("Globex", "enterprise", quantity=2)
    before = mrr(cli, "2026-01")
    assert change(cli, stripe_env, acme.id, "enterprise", "--yes", "--proration-date", "2026-01-16").exit_code == 0
    assert change(cli, stripe_env, globex.id, "professional", "--yes", "--proration-date", "2026-01-21T12:00:00Z").exit_code == 0
    after = mrr(cli, "2026-01")
    assert (after["expansion"] - before["expansion"], after["contraction"] - before["contraction"]) == (5000, 10000)
    assert after["mrr"] - before["mrr"] == 5000 - 10000
    assert after["mrr"] - after["prev_mrr"] == (after["new"] + after["reactivation"] + after["expansion"]
                                                 - after["contraction"] - after["churn"])


def test_a_change_asked_for_during_an_outage_is_queued_and_applied_once(cli, stripe_env, cat, engine, stripe_fake):
    """Stripe down: ``--queue`` stores the change with its proration instant (16 January 00:00, the
    figures of the monthly upgrade above: 2581 due now); the flush applies it once, the second flush
    finds nothing, and the history is the same as a change made live."""
    from smtp_server import free_port

    t = cat.tenant("Acme", "professional")
    outage = {**stripe_env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}", "PMFIN_STRIPE_MAX_RETRIES": "0"}
    refused = change(cli, outage, t.id, "enterprise", "--yes", "--proration-date", "2026-01-16")
    assert refused.exit_code != 0 and "--queue" not in refused.stdout
    queued = change(cli, outage, t.id, "enterprise", "--yes", "--queue", "--proration-date", "2026-01-16", "-f", "json")
    assert queued.exit_code == 0, queued.output
    item = js(queued)
    assert item["new"] is True
    assert item["idempotency_key"] == f"pmfin:outbox:subscription.change:{t.id}:enterprise:{unix('2026-01-16T00:00:00')}"
    assert js(change(cli, outage, t.id, "enterprise", "--yes", "--queue", "--proration-date", "2026-01-16",
                     "-f", "json"))["new"] is False  # asked twice, queued once
    assert len(history(engine, t.id)) == 1 and plan_changes(engine, t.id) == []

    flushed = cli("outbox", "flush", "--format", "json", env=stripe_env)
    assert flushed.exit_code == 0, flushed.output
    assert js(flushed) == [{"id": item["queued"], "kind": "subscription.change", "result": "sent", "error": None}]
    assert cli("outbox", "flush", "--format", "json", env=stripe_env).stdout.strip() == "[]"
    (update,) = stripe_fake.requests_to("POST", f"/v1/subscriptions/{t.subscription['id']}")
    assert update.params["proration_date"] == str(unix("2026-01-16T00:00:00"))
    old, new = history(engine, t.id)
    assert (old["ended_at"], new["plan_id"], new["started_at"]) == (instant("2026-01-16"), "enterprise", instant("2026-01-16"))
    (recorded,) = plan_changes(engine, t.id)
    assert (recorded["status"], recorded["credit"], recorded["charge"]) == ("applied", -2529, 5110)  # 2581 due now
