"""``pmfin dunning`` end to end: the real CLI, the real Stripe SDK over real HTTP to the Stripe fake,
a real PostgreSQL, and (where email is sent) a real SMTP server on loopback.

The journey below uses day 0 = 2026-11-02 10:00 UTC (the first failed payment). With the default
policy: slot 1 at 11-03 10:00, slot 3 at 11-05 10:00, slot 5 at 11-07 10:00, restricted from
11-09 10:00, suspended from 11-16 10:00.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from billing_fixtures import (
    add_tenant,
    alerts,
    at,
    attempts,
    billing_status,
    case_row,
    fail_payment,
    notifications,
    slots,
    table_counts,
)
from smtp_server import body

DAY0 = at("2026-11-02T10:00:00")

INSUFFICIENT = "4000000000009995"  # card_declined / insufficient_funds (soft)
EXPIRED = "4000000000000069"  # expired_card (hard)
GENERIC = "4000000000000002"  # card_declined / generic_decline (soft)
FAILS = "4000000000000341"  # attaches, then card_declined / generic_decline
VISA = "4242424242424242"  # succeeds


@pytest.fixture
def dun(cli, stripe_env):
    """``dun("2026-11-03T10:00:00Z")`` runs ``pmfin dunning run --as-of … --format json``."""

    def run(as_of: str, *args: str, env: dict | None = None, code: int | None = 0):
        result = cli("dunning", "run", "--as-of", as_of, "--format", "json", *args, env={**stripe_env, **(env or {})})
        assert "Traceback" not in result.output, result.output
        if code is not None:
            assert result.exit_code == code, result.output
        out = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        return out, result

    return run


def failing_tenant(engine, stripe_fake, cards=(INSUFFICIENT, EXPIRED, GENERIC), *, name="Acme", amount=4900,
                   email="billing@acme.example"):
    """A tenant whose Stripe customer has ``cards`` (first = default, the rest older→newer), an open
    invoice of ``amount`` and the platform's failed payment of it at day 0."""
    customer = stripe_fake.billing.add_customer(email=email, cards=cards, default=0)
    invoice = stripe_fake.billing.add_invoice(customer["id"], amount, attempt_count=1)
    tenant = add_tenant(engine, name, email=email, customer=customer["id"])
    fail_payment(engine, tenant, invoice["id"], DAY0, amount=amount)
    return tenant, invoice, customer


def case_of(out: dict, invoice_id: str) -> dict:
    (c,) = [c for c in out["cases"] if c["invoice_id"] == invoice_id]
    return c


def pays(stripe_fake, invoice_id=None) -> list[tuple[str, str | None]]:
    """(payment method, outcome) of every charge Stripe made, oldest first."""
    return [(c["payment_method"], c["status"]) for c in stripe_fake.billing.charges(invoice_id)]


# -- the journey, day by day -------------------------------------------------------------------


def test_the_whole_journey_day_by_day(engine, stripe_fake, dun, smtp):
    tenant, invoice, customer = failing_tenant(engine, stripe_fake)
    default, expired, generic = customer["payment_methods"]
    env = smtp.env()
    inv = invoice["id"]

    # day 0 + 1 h: the case opens; nothing is due yet
    out, _ = dun("2026-11-02T11:00:00Z", env=env)
    c = case_of(out, inv)
    assert c["opened"] and c["slot"] is None and c["result"] == "waiting" and c["next_retry"].startswith("2026-11-03T10:00")
    assert case_row(engine, inv)["day0"] == DAY0 and billing_status(engine, tenant) == "active"
    assert pays(stripe_fake, inv) == []

    # day 1: every card, default first, then the others oldest first
    out, _ = dun("2026-11-03T10:00:00Z", env=env)
    c = case_of(out, inv)
    assert (c["slot"], c["result"]) == (1, "declined")
    assert [(s["payment_method_id"], s["outcome"]) for s in c["cards"]] == [
        (default, "declined (card_declined/insufficient_funds)"),
        (expired, "declined (expired_card)"),
        (generic, "declined (card_declined/generic_decline)"),
    ]
    assert [a["idempotency_key"] for a in attempts(engine, inv)] == [
        f"pmfin:dunning:{inv}:1:{default}", f"pmfin:dunning:{inv}:1:{expired}", f"pmfin:dunning:{inv}:1:{generic}"]
    assert [a["hard"] for a in attempts(engine, inv)] == [False, True, False]

    # a second run the same day does nothing more
    out, _ = dun("2026-11-03T18:00:00Z", env=env)
    assert case_of(out, inv)["result"] == "waiting" and len(pays(stripe_fake, inv)) == 3

    # day 3: the expired card (a hard decline) is not tried again
    out, _ = dun("2026-11-05T10:00:00Z", env=env)
    c = case_of(out, inv)
    assert [(s["payment_method_id"], s["action"]) for s in c["cards"]] == [(default, "try"), (expired, "skip"), (generic, "try")]
    assert c["cards"][1]["reason"] == "hard decline (expired_card) in the day-1 retry"

    # day 5, then day 7: restricted
    dun("2026-11-07T10:00:00Z", env=env)
    assert slots(engine, inv) == {1: "declined", 3: "declined", 5: "declined"}
    out, _ = dun("2026-11-09T10:00:00Z", env=env)
    assert case_of(out, inv)["stage_to"] == "restricted" and billing_status(engine, tenant) == "restricted"
    # day 14: suspended
    out, _ = dun("2026-11-16T10:00:00Z", env=env)
    assert case_of(out, inv)["stage_to"] == "suspended" and billing_status(engine, tenant) == "suspended"
    # day 1: 3 cards; days 3 and 5: 2 each (the expired card is out) — and no charge since
    assert [o for _, o in pays(stripe_fake, inv)] == ["failed"] * 7

    # the tenant pays on the hosted page; the next run finds it paid and restores the tenant
    stripe_fake.billing.pay_elsewhere(inv)
    out, _ = dun("2026-11-17T02:00:00Z", env=env)
    c = case_of(out, inv)
    assert (c["close"], c["result"], c["notifications"]) == ("paid_elsewhere", "recovered", ["recovered"])
    assert billing_status(engine, tenant) == "active" and case_row(engine, inv)["status"] == "recovered"
    assert case_row(engine, inv)["amount_recovered"] == 4900
    assert alerts(engine, tenant, open_only=True) == []  # the banner is gone
    assert len(pays(stripe_fake, inv)) == 8  # the hosted-page payment; pmfin charged nothing more

    # exactly one email per event, in order
    assert [n["kind"] for n in notifications(engine, tenant)] == [
        "payment_failed", "retry_declined", "retry_declined", "retry_declined", "restricted", "suspended", "recovered"]
    assert smtp.subjects("billing@acme.example") == [
        f"Payment failed: invoice {invoice['number']} ($49.00)",
        f"Payment retry declined: invoice {invoice['number']} ($49.00)",
        f"Payment retry declined: invoice {invoice['number']} ($49.00)",
        f"Payment retry declined: invoice {invoice['number']} ($49.00)",
        f"Account restricted: invoice {invoice['number']} ($49.00) unpaid",
        f"Account suspended: invoice {invoice['number']} ($49.00) unpaid",
        f"Payment received: invoice {invoice['number']} ($49.00)",
    ]
    first_retry = body(smtp.by_key()[f"dunning:{inv}:retry:1"][0])
    assert "declined (card_declined/insufficient_funds)" in first_retry and "The next attempt is on 2026-11-05." in first_retry
    assert all(invoice["hosted_invoice_url"] in body(m) for m in smtp.messages)

    # nothing more on later runs
    out, _ = dun("2026-11-20T02:00:00Z", env=env)
    assert out["cases"] == [] and len(smtp.messages) == 7


# -- outcomes ------------------------------------------------------------------------------------


def test_a_retry_that_succeeds_on_the_second_card_recovers_with_one_charge(engine, stripe_fake, dun):
    tenant, invoice, customer = failing_tenant(engine, stripe_fake, cards=(INSUFFICIENT, VISA))
    dun("2026-11-02T12:00:00Z")
    out, _ = dun("2026-11-03T10:30:00Z")
    c = case_of(out, invoice["id"])
    assert (c["result"], c["close"]) == ("recovered", "paid_by_retry")
    assert [s["outcome"] for s in c["cards"]] == ["declined (card_declined/insufficient_funds)", "succeeded"]
    assert pays(stripe_fake, invoice["id"]) == [(customer["payment_methods"][0], "failed"), (customer["payment_methods"][1], "succeeded")]
    assert stripe_fake.billing.invoice(invoice["id"])["status"] == "paid"
    assert slots(engine, invoice["id"]) == {1: "paid"} and billing_status(engine, tenant) == "active"
    # a successful retry tells "recovered", not "declined"
    assert [n["kind"] for n in notifications(engine, tenant)] == ["payment_failed", "recovered"]
    assert [n["email_status"] for n in notifications(engine, tenant)] == ["not_configured"] * 2


def test_paid_elsewhere_before_a_retry_closes_the_case_without_a_charge(engine, stripe_fake, dun):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    dun("2026-11-02T12:00:00Z")
    stripe_fake.billing.pay_elsewhere(invoice["id"])
    before = len(pays(stripe_fake, invoice["id"]))
    out, _ = dun("2026-11-03T10:00:00Z")  # slot 1 is due, but the fresh read says paid
    assert case_of(out, invoice["id"])["close"] == "paid_elsewhere"
    assert len(pays(stripe_fake, invoice["id"])) == before
    assert stripe_fake.requests_to("POST", r"/v1/invoices/.*/pay") == []
    assert case_row(engine, invoice["id"])["status"] == "recovered"


def test_a_voided_invoice_is_written_off_quietly_and_stops_acting_on_the_tenant(engine, stripe_fake, dun):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    dun("2026-11-02T12:00:00Z")
    dun("2026-11-09T10:00:00Z")  # a late run: slot 5 tried, restricted
    assert billing_status(engine, tenant) == "restricted"
    stripe_fake.billing.void(invoice["id"])
    out, _ = dun("2026-11-10T02:00:00Z")
    c = case_of(out, invoice["id"])
    assert (c["close"], c["result"], c["notifications"]) == ("voided", "written_off", [])
    assert billing_status(engine, tenant) == "active" and alerts(engine, tenant, open_only=True) == []
    assert case_row(engine, invoice["id"])["status"] == "written_off"
    assert "written_off" not in [n["kind"] for n in notifications(engine, tenant)]


def test_a_late_run_retries_the_latest_slot_only_and_records_the_others_skipped(engine, stripe_fake, dun):
    _, invoice, _ = failing_tenant(engine, stripe_fake, cards=(INSUFFICIENT,))
    # cron first runs on 11-06 00:00: the case opens with slots 1 and 3 both due
    out, _ = dun("2026-11-06T00:00:00Z")
    c = case_of(out, invoice["id"])
    assert c["opened"] and (c["slot"], c["skipped_slots"]) == (3, [1])
    assert slots(engine, invoice["id"]) == {1: "skipped", 3: "declined"}
    assert [a["slot"] for a in attempts(engine, invoice["id"])] == [3]


def test_a_tenant_is_as_bad_as_its_worst_open_case(engine, stripe_fake, dun):
    customer = stripe_fake.billing.add_customer(cards=(INSUFFICIENT,))
    old = stripe_fake.billing.add_invoice(customer["id"], 4900, attempt_count=1)
    new = stripe_fake.billing.add_invoice(customer["id"], 2500, attempt_count=1)
    tenant = add_tenant(engine, customer=customer["id"])
    fail_payment(engine, tenant, old["id"], DAY0)  # suspended from 11-16 10:00
    fail_payment(engine, tenant, new["id"], at("2026-11-08T10:00:00"))  # restricted from 11-15 10:00
    dun("2026-11-16T12:00:00Z")
    assert case_row(engine, old["id"])["stage"] == "suspended" and case_row(engine, new["id"])["stage"] == "restricted"
    assert billing_status(engine, tenant) == "suspended"
    stripe_fake.billing.pay_elsewhere(old["id"])
    dun("2026-11-16T13:00:00Z")
    assert billing_status(engine, tenant) == "restricted"  # the other case still holds it


def test_no_case_for_an_invoice_already_paid_or_void_and_it_is_not_read_again(engine, stripe_fake, dun):
    customer = stripe_fake.billing.add_customer()
    paid = stripe_fake.billing.add_invoice(customer["id"], 4900, status="paid")
    void = stripe_fake.billing.add_invoice(customer["id"], 4900, status="void")
    tenant = add_tenant(engine, customer=customer["id"])
    fail_payment(engine, tenant, paid["id"], DAY0)
    fail_payment(engine, tenant, void["id"], DAY0)
    out, _ = dun("2026-11-03T10:00:00Z")
    assert out["cases"] == [] and out["summary"]["ignored"] == 2
    assert case_row(engine, paid["id"]) is None and billing_status(engine, tenant) == "active"
    reads = len(stripe_fake.requests_to("GET", r"/v1/invoices/.*"))
    dun("2026-11-04T10:00:00Z")
    assert len(stripe_fake.requests_to("GET", r"/v1/invoices/.*")) == reads


def test_an_invoice_stripe_does_not_know_is_reported_not_acted_on(engine, stripe_fake, dun):
    tenant = add_tenant(engine, customer="cus_1Nobody")
    fail_payment(engine, tenant, "in_1DoesNotExist", DAY0)
    out, result = dun("2026-11-03T10:00:00Z", code=1)
    assert out["cases"] == [] and out["summary"]["skipped"] == [
        {"invoice_id": "in_1DoesNotExist", "tenant_id": tenant, "reason": "unknown_invoice"}]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: Stripe does not know invoice in_1DoesNotExist (tenant {tenant}): reported, not acted on")
    assert case_row(engine, "in_1DoesNotExist") is None and billing_status(engine, tenant) == "active"


def test_the_demo_made_up_invoices_are_skipped_with_a_note(engine, stripe_fake, cli, stripe_env):
    tenant = add_tenant(engine, "Demo tenant", customer="cus_0123456789abcdef")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pmfin_demo_objects (kind, object_id) VALUES ('tenant', :t)"), {"t": tenant})
    fail_payment(engine, tenant, "in_0123456789abcdef01234567", DAY0)
    result = cli("dunning", "run", "--as-of", "2026-11-03T10:00:00Z", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "1 failed invoice(s) of the demo's made-up history skipped" in result.stderr
    assert stripe_fake.requests_to("GET", r"/v1/invoices/.*") == []


# -- a Stripe outage is never a decline ------------------------------------------------------------


def test_stripe_failing_on_the_read_changes_nothing_and_the_next_run_catches_up(engine, stripe_fake, dun):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    dun("2026-11-02T12:00:00Z")
    dun("2026-11-07T10:00:00Z")  # slots done (5, with 1 and 3 skipped)
    stripe_fake.inject("status", status=500, method="GET", path=f"/v1/invoices/{invoice['id']}", times=10)
    out, result = dun("2026-11-09T10:00:00Z", code=1)  # restriction is due, but Stripe answers 500
    c = case_of(out, invoice["id"])
    assert (c["result"], c["stage_to"]) == ("unchanged", None)
    assert "Stripe answered HTTP 500" in result.stderr
    assert billing_status(engine, tenant) == "active" and case_row(engine, invoice["id"])["stage"] == "grace"
    stripe_fake.faults.clear()
    out, _ = dun("2026-11-09T11:00:00Z")
    assert case_of(out, invoice["id"])["stage_to"] == "restricted" and billing_status(engine, tenant) == "restricted"


def test_stripe_unreachable_stops_the_sweep_and_changes_nothing(engine, stripe_fake, dun):
    from smtp_server import free_port

    tenants = [failing_tenant(engine, stripe_fake, name=f"T{i}") for i in range(3)]
    dun("2026-11-02T12:00:00Z")
    before = table_counts(engine)
    down = {"STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}", "PMFIN_STRIPE_MAX_RETRIES": "1"}
    out, result = dun("2026-11-09T10:00:00Z", env=down, code=1)
    assert [c["result"] for c in out["cases"]] == ["unchanged"] * 3
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "warning:"))]
    assert len(errors) == 1 and "no answer from http://127.0.0.1:" in errors[0] and "left unchanged" in errors[0]
    after = table_counts(engine)
    # nothing about a case or a tenant changed; the run is recorded and the outage banner raised
    assert {k: v for k, v in after.items() if k not in ("pmfin_dunning_runs", "pmfin_alerts")} == \
        {k: v for k, v in before.items() if k not in ("pmfin_dunning_runs", "pmfin_alerts")}
    assert after["pmfin_alerts"] == before["pmfin_alerts"] + 1
    assert all(billing_status(engine, t) == "active" for t, _, _ in tenants)


def test_a_500_on_the_charge_leaves_the_attempt_open_and_the_rerun_sends_the_same_key(engine, stripe_fake, dun):
    _, invoice, customer = failing_tenant(engine, stripe_fake, cards=(INSUFFICIENT, VISA))
    dun("2026-11-02T12:00:00Z")
    first, second = customer["payment_methods"]
    # Stripe answers 500 to every try of the first card's charge (the SDK's retries included)
    stripe_fake.inject("status", status=500, method="POST", path=f"/v1/invoices/{invoice['id']}/pay", times=3)
    out, _ = dun("2026-11-03T10:00:00Z", code=1)
    assert case_of(out, invoice["id"])["result"] == "unchanged"
    (pending,) = attempts(engine, invoice["id"])
    assert pending["outcome"] is None and pending["idempotency_key"] == f"pmfin:dunning:{invoice['id']}:1:{first}"
    assert slots(engine, invoice["id"]) == {}  # the slot stays due
    out, _ = dun("2026-11-03T11:00:00Z")
    c = case_of(out, invoice["id"])
    assert c["resend"] == [pending["idempotency_key"]] and (c["result"], c["close"]) == ("recovered", "paid_by_retry")
    # the first card charged once (the re-sent key), then the second card: one success
    assert pays(stripe_fake, invoice["id"]) == [(first, "failed"), (second, "succeeded")]


def test_rate_limited_until_the_retries_run_out_is_an_outage_not_a_decline(engine, stripe_fake, dun):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    dun("2026-11-02T12:00:00Z")
    stripe_fake.inject("status", status=429, retry_after=0, method="GET", path=f"/v1/invoices/{invoice['id']}", times=5)
    out, result = dun("2026-11-03T10:00:00Z", code=1)
    assert case_of(out, invoice["id"])["result"] == "unchanged" and "rate-limiting" in result.stderr
    assert attempts(engine, invoice["id"]) == [] and slots(engine, invoice["id"]) == {}


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_writes_nothing_anywhere(engine, stripe_fake, dun, cli, stripe_env):
    tenant, invoice, customer = failing_tenant(engine, stripe_fake)
    before = table_counts(engine)
    out, _ = dun("2026-11-09T10:00:00Z", "--dry-run")
    c = case_of(out, invoice["id"])
    assert c["opened"] and c["slot"] == 5 and c["skipped_slots"] == [1, 3] and c["stage_to"] == "restricted"
    assert [s["payment_method_id"] for s in c["cards"]] == customer["payment_methods"]
    assert c["notifications"] == ["payment_failed", "retry_declined (if every card declines)", "restricted (unless the retry succeeds)"]
    assert out["summary"]["dry_run"] is True
    assert table_counts(engine) == before
    assert [r.method for r in stripe_fake.requests] and all(r.method == "GET" for r in stripe_fake.requests)
    table = cli("dunning", "run", "--as-of", "2026-11-09T10:00:00Z", "--dry-run", env=stripe_env)
    assert table.exit_code == 0 and "Dunning plan (dry run, nothing written or charged)" in table.stdout
    assert "retry day 5" in table.stdout and "grace → restricted" in table.stdout
    assert table_counts(engine) == before
    # the real run then does what the plan said
    out, _ = dun("2026-11-09T10:00:00Z")
    assert case_of(out, invoice["id"])["slot"] == 5 and billing_status(engine, tenant) == "restricted"


# -- email -----------------------------------------------------------------------------------------


def test_smtp_down_during_a_run_keeps_emails_pending_and_they_go_once_it_is_back(engine, stripe_fake, dun, cli, smtp):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    smtp.stop()
    out, result = dun("2026-11-03T10:00:00Z", env=smtp.env(), code=1)
    assert case_of(out, invoice["id"])["result"] == "declined"  # the dunning work was done
    assert "emails not sent: cannot reach the SMTP server" in result.stderr
    assert {n["email_status"] for n in notifications(engine, tenant)} == {"pending"}
    smtp.start()
    sent = cli("notifications", "send", env=smtp.env())
    assert sent.exit_code == 0, sent.output
    assert sorted(smtp.by_key()) == sorted([f"dunning:{invoice['id']}:opened", f"dunning:{invoice['id']}:retry:1"])
    dun("2026-11-03T12:00:00Z", env=smtp.env())  # sends nothing again
    assert len(smtp.messages) == 2


def test_without_smtp_the_run_warns_once_and_keeps_alerts(engine, stripe_fake, cli, stripe_env):
    tenant, invoice, _ = failing_tenant(engine, stripe_fake)
    result = cli("dunning", "run", "--as-of", "2026-11-03T10:00:00Z", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("no SMTP configured (PMFIN_SMTP_HOST): notifications are dashboard alerts only") == 1
    assert [a["kind"] for a in alerts(engine, tenant, open_only=True)] == ["payment_failed", "retry_declined"]


# -- input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "2026-11-31T00:00Z", "２０２６-11-01"])
def test_a_bad_as_of_is_one_line(cli, stripe_env, value):
    result = cli("dunning", "run", "--as-of", value, env=stripe_env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"error: --as-of must be an ISO 8601 instant such as 2026-12-01T02:00:00Z or a date 2026-12-01, got {value!r}")


# -- status -----------------------------------------------------------------------------------------


def test_status_shows_open_cases_and_hand_worked_recovery_figures(engine, stripe_fake, dun, cli):
    """Three cases opened on 2026-11-20: A ($49.00) stays open, B ($25.00) is paid on the hosted
    page, C ($30.00) is voided. Since 2026-11-01: opened 3, recovered 1 = $25.00 (rate 1/3 =
    33.3 %), written off 1 = $30.00, still open 1; at risk now $49.00, and A's MRR is its one
    monthly subscription of $99.00."""
    day0 = at("2026-11-20T10:00:00")
    made = {}
    for name, amount in (("A", 4900), ("B", 2500), ("C", 3000)):
        customer = stripe_fake.billing.add_customer(cards=(INSUFFICIENT,))
        invoice = stripe_fake.billing.add_invoice(customer["id"], amount, attempt_count=1)
        tenant = add_tenant(engine, name, customer=customer["id"])
        fail_payment(engine, tenant, invoice["id"], day0, amount=amount)
        made[name] = (tenant, invoice["id"])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, name, billing_cycle, price_cents, currency) VALUES ('pro', 'Pro', 'month', 9900, 'usd')"))
        conn.execute(text("INSERT INTO subscriptions (tenant_id, id, plan_id, unit_price_cents, currency, started_at) "
                          "VALUES (:t, gen_random_uuid(), 'pro', 9900, 'usd', '2026-01-01T00:00Z')"), {"t": made["A"][0]})
    dun("2026-11-20T12:00:00Z")
    stripe_fake.billing.pay_elsewhere(made["B"][1])
    stripe_fake.billing.void(made["C"][1])
    dun("2026-11-20T13:00:00Z")

    result = cli("dunning", "status", "--since", "2026-11-01", "--format", "json")
    assert result.exit_code == 0, result.output
    st = json.loads(result.stdout)
    (case,) = st["cases"]
    assert (case["tenant_name"], case["invoice_id"], case["amount_due"], case["stage"], case["attempts"]) == ("A", made["A"][1], 4900, "grace", 0)
    assert case["next_attempt"].startswith("2026-11-21T10:00")
    f = st["figures"]
    assert (f["opened"], f["recovered"], f["written_off"], f["still_open"], f["open_cases"]) == (3, 1, 1, 1, 1)
    assert f["recovered_amounts"] == {"usd": 2500} and f["written_off_amounts"] == {"usd": 3000}
    assert f["recovery_rate"] == pytest.approx(1 / 3)
    assert f["at_risk_amounts"] == {"usd": 4900} and (f["at_risk_mrr"], f["mrr_currency"]) == (9900, "usd")

    table = cli("dunning", "status", "--since", "2026-11-01")
    assert table.exit_code == 0 and "33.3%" in table.stdout and "$49.00" in table.stdout and "$99.00" in table.stdout
    only_b = json.loads(cli("dunning", "status", "--tenant", made["B"][0], "--since", "2026-11-01", "-f", "json").stdout)
    assert only_b["cases"] == [] and only_b["figures"]["recovered"] == 1 and only_b["figures"]["opened"] == 1


# -- pmfin demo --stripe -----------------------------------------------------------------------------


def test_demo_stripe_creates_failing_invoices_that_dunning_then_works(cli, engine, stripe_fake, stripe_env):
    demo = cli("demo", "--tenants", "60", "--months", "6", "--seed", "3", "--stripe",
               "--format", "json", env=stripe_env)
    assert demo.exit_code == 0, demo.output
    seeded = json.loads(demo.stdout)["stripe"]
    assert [s["scenario"] for s in seeded] == ["declines on every retry", "recovered by the first retry on its second card",
                                               "to be paid on the hosted invoice page"]
    for s in seeded:
        inv = stripe_fake.billing.invoice(s["invoice_id"])
        assert inv["status"] == "open" and inv["customer"] == s["customer_id"] and inv["attempt_count"] == 1
        assert stripe_fake.billing.customer(s["customer_id"])["metadata"]["tenant_id"] == s["tenant_id"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT stripe_customer_id FROM tenant_config WHERE tenant_id = :t"),
                                {"t": s["tenant_id"]}).scalar_one() == s["customer_id"]
            (status, code) = conn.execute(text("SELECT status, failure_code FROM payments WHERE stripe_invoice_id = :i"),
                                          {"i": s["invoice_id"]}).one()
        assert (status, code) == ("failed", "generic_decline")
    # every write carried an idempotency key
    assert all(r.idempotency_key and r.idempotency_key.startswith("pmfin:demo:3:") for r in stripe_fake.requests_to("POST"))

    # the three real invoices open cases (the demo's made-up ones never reach Stripe)
    run = cli("dunning", "run", "--format", "json", env=stripe_env)
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout)
    assert sorted(c["invoice_id"] for c in out["cases"]) == sorted(s["invoice_id"] for s in seeded)
    assert all(c["opened"] for c in out["cases"])
    read = {r.path for r in stripe_fake.requests_to("GET", r"/v1/invoices/.*")}
    assert read == {f"/v1/invoices/{s['invoice_id']}" for s in seeded}


def test_demo_stripe_refuses_a_live_key_before_writing_anything(cli, engine, stripe_fake, stripe_env):
    before = table_counts(engine)
    live = {**stripe_env, "STRIPE_API_KEY": "sk_live_" + "x" * 24}
    result = cli("--live", "demo", "--tenants", "10", "--months", "3", "--stripe", env=live)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().startswith("error: pmfin demo --stripe works only with a test-mode key (sk_test_…), not sk_live_…")
    assert table_counts(engine) == before and stripe_fake.requests == []
