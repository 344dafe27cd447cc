"""Working through a Stripe outage: requests queued with --queue and flushed once (one request per
key), the platform-wide banner raised and cleared, and ``pmfin doctor``."""

from __future__ import annotations

import datetime as dt
import json
import threading

from sqlalchemy import text

from billing_fixtures import add_tenant, at, fail_payment
from smtp_server import free_port

VISA, INSUFFICIENT = "4242424242424242", "4000000000009995"


def down(stripe_env) -> dict:
    return {**stripe_env, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}", "PMFIN_STRIPE_MAX_RETRIES": "0"}


def banner(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT * FROM pmfin_alerts WHERE kind = 'stripe_unreachable' ORDER BY id")).mappings()]


def outbox(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM pmfin_outbox ORDER BY id")).mappings()]


def test_a_payment_asked_for_during_an_outage_is_queued_and_sent_once(cli, engine, stripe_fake, stripe_env):
    customer = stripe_fake.billing.add_customer(cards=(VISA,))
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900, attempt_count=1)
    tenant = add_tenant(engine, customer=customer["id"])
    fail_payment(engine, tenant, invoice["id"], at("2026-11-02T10:00:00"))
    outage = down(stripe_env)

    # the nightly run meets the outage: nothing changes, the banner goes up
    run = cli("dunning", "run", "--as-of", "2026-11-02T12:00:00Z", env=outage)
    assert run.exit_code == 1
    (b,) = banner(engine)
    assert b["tenant_id"] is None and b["resolved_at"] is None and b["message"].startswith("Payments are delayed")

    # without --queue: one line, nothing queued; with it: queued, exit 0
    plain = cli("invoices", "pay", invoice["id"], env=outage)
    assert plain.exit_code == 2 and "no answer from" in plain.stderr and outbox(engine) == []
    queued = cli("invoices", "pay", invoice["id"], "--queue", "--format", "json", env=outage)
    assert queued.exit_code == 0, queued.output
    item = json.loads(queued.stdout)
    assert item["new"] is True and item["idempotency_key"].startswith(f"pmfin:invoices:pay:{invoice['id']}:queued:default:")
    again = cli("invoices", "pay", invoice["id"], "--queue", "--format", "json", env=outage)
    assert json.loads(again.stdout)["queued"] == item["queued"]  # the same request, queued once
    listed = json.loads(cli("outbox", "list", "--format", "json").stdout)
    assert [r["status"] for r in listed["requests"]] == ["queued"]

    # Stripe is back: the flush sends it once, and the banner comes down
    flushed = cli("outbox", "flush", "--format", "json", env=stripe_env)
    assert flushed.exit_code == 0, flushed.output
    assert json.loads(flushed.stdout) == [{"id": item["queued"], "kind": "invoices.pay", "result": "sent", "error": None}]
    assert stripe_fake.billing.invoice(invoice["id"])["status"] == "paid"
    assert banner(engine)[0]["resolved_at"] is not None
    assert cli("outbox", "flush", "--format", "json", env=stripe_env).stdout.strip() == "[]"
    posts = stripe_fake.requests_to("POST", f"/v1/invoices/{invoice['id']}/pay")
    assert [p.idempotency_key for p in posts] == [item["idempotency_key"]]
    assert sum(c["status"] == "succeeded" for c in stripe_fake.billing.charges(invoice["id"])) == 1
    # the next run finds the invoice paid: no case is ever opened for it
    later = cli("dunning", "run", "--as-of", "2026-11-03T12:00:00Z", "--format", "json", env=stripe_env)
    assert later.exit_code == 0 and json.loads(later.stdout)["summary"]["ignored"] == 1


def test_two_flushes_at_once_send_each_request_once(engine, stripe_fake, stripe_env):
    from pmfin.stripe_ops import outbox as service
    from stripe_fake.env import make_settings
    from pmfin.stripe_ops.client import build_client

    invoices = []
    for i in range(4):
        customer = stripe_fake.billing.add_customer(cards=(VISA,))
        inv = stripe_fake.billing.add_invoice(customer["id"], 1000 + i)
        add_tenant(engine, f"T{i}", customer=customer["id"])
        service.queue(engine, "invoices.pay", {"invoice_id": inv["id"], "payment_method": None},
                      service.queued_pay_key(inv["id"], None, dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)))
        invoices.append(inv["id"])
    stripe_fake.inject("delay", seconds=0.3, method="POST", path=r"/v1/invoices/.*/pay", times=4)
    settings = make_settings(stripe_fake)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(service.flush(engine, build_client(settings), settings)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i.id for r in reports for i in r.done) == [1, 2, 3, 4]
    assert len(stripe_fake.requests_to("POST", r"/v1/invoices/.*/pay")) == 4
    assert all(stripe_fake.billing.invoice(i)["status"] == "paid" for i in invoices)


def test_a_queued_request_stripe_refuses_is_marked_failed(cli, engine, stripe_fake, stripe_env):
    customer = stripe_fake.billing.add_customer(cards=(INSUFFICIENT,))
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900)
    add_tenant(engine, customer=customer["id"])
    cli("invoices", "pay", invoice["id"], "--queue", env=down(stripe_env))
    flushed = cli("outbox", "flush", env=stripe_env)
    assert flushed.exit_code == 1 and "Stripe refused 1 queued request(s)" in flushed.stderr
    (row,) = outbox(engine)
    assert row["status"] == "failed" and "card_declined/insufficient_funds" in row["last_error"]


def test_connect_create_can_be_queued(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, "Globex", customer=None)
    queued = cli("connect", "create", "--tenant", tenant, "--queue", "--format", "json", env=down(stripe_env))
    assert queued.exit_code == 0 and json.loads(queued.stdout)["idempotency_key"] == f"pmfin:connect:create:{tenant}"
    assert cli("outbox", "flush", env=stripe_env).exit_code == 0
    assert len(stripe_fake.accounts.all()) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT stripe_account_id FROM tenant_config WHERE tenant_id = :t"),
                            {"t": tenant}).scalar_one() == stripe_fake.accounts.all()[0]["id"]


# -- doctor --------------------------------------------------------------------------------------------


def verdicts(result) -> dict[str, str]:
    return {c["name"]: c["verdict"] for c in json.loads(result.stdout)}


def test_doctor_all_green(cli, engine, stripe_fake, stripe_env, smtp):
    env = {**stripe_env, **smtp.env(), "STRIPE_WEBHOOK_SECRET": "whsec_" + "1" * 32}
    assert cli("dunning", "run", env=env).exit_code == 0
    stripe_fake.events.emit("product.created", {"id": "prod_1X", "object": "product"})
    assert cli("events", "sync", env=env).exit_code == 0
    result = cli("doctor", "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    assert verdicts(result) == {"database": "ok", "migrations": "ok", "contract tables": "ok", "stripe key": "ok",
                                "stripe": "ok", "clock": "ok", "webhook secret": "ok", "smtp": "ok",
                                "last dunning run": "ok", "events sync": "ok", "events": "ok", "outbox": "ok"}


def test_doctor_names_what_fails(cli, engine, stripe_env):
    smtp_down = {"PMFIN_SMTP_HOST": "127.0.0.1", "PMFIN_SMTP_PORT": str(free_port()), "PMFIN_SMTP_FROM": "b@x.example"}
    result = cli("doctor", "--format", "json", env={**down(stripe_env), **smtp_down})
    assert result.exit_code == 1 and result.stderr.strip().startswith("error: 2 check(s) failed: stripe, smtp")
    v = verdicts(result)
    assert (v["stripe"], v["smtp"], v["webhook secret"], v["last dunning run"], v["events sync"]) == (
        "fail", "fail", "warn", "warn", "warn")
    assert banner(engine)[0]["resolved_at"] is None  # doctor raised the banner
    back = cli("doctor", "--format", "json", env=stripe_env)
    assert verdicts(back)["stripe"] == "ok" and banner(engine)[0]["resolved_at"] is not None  # and cleared it


def test_doctor_on_a_bare_database_and_a_rejected_key(bare_database_url, pmfin_home, stripe_fake, stripe_env):
    from conftest import make_cli

    stripe_fake.accepted_keys = {"sk_test_the_right_one_0000"}
    run = make_cli({"DATABASE_URL": bare_database_url, "PMFIN_HOME": str(pmfin_home)})
    result = run("doctor", "--format", "json", env=stripe_env)
    assert result.exit_code == 1
    v = {c["name"]: c for c in json.loads(result.stdout)}
    assert v["migrations"]["verdict"] == "fail" and "run `pmfin db init`" in v["migrations"]["detail"]
    assert v["contract tables"]["verdict"] == "fail"
    assert v["stripe"]["verdict"] == "fail"
    assert v["stripe"]["detail"] == "Stripe rejected the key: Invalid API Key provided: sk_test_************abcd"


def test_doctor_clock_skew(engine, stripe_fake):
    from pmfin import doctor
    from pmfin.stripe_ops.client import build_client
    from stripe_fake.env import make_settings

    settings = make_settings(stripe_fake)
    ahead = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)
    checks = {c.name: c for c in doctor.run(settings, engine_factory=lambda: engine,
                                            client_factory=lambda: build_client(settings), now=ahead)}
    # 10 minutes ahead; the Date header has whole seconds
    assert checks["clock"].verdict == "fail" and checks["clock"].detail.split(" s ")[0] in ("599", "600", "601")
    assert checks["clock"].detail.endswith("ahead of Stripe's clock (webhook signatures allow 300 s: fix NTP)")
