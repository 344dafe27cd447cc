"""``pmfin events``: Stripe's events through one pipeline — synced from the fake's ``GET /v1/events``
(the fake records an event for every state change) — handled once each, on the objects' current
state, through the real CLI and SDK."""

from __future__ import annotations

import datetime as dt
import json
import time

from sqlalchemy import text

from billing_fixtures import add_tenant, billing_status, case_row, fail_payment

UTC = dt.timezone.utc
INSUFFICIENT, VISA = "4000000000009995", "4242424242424242"


def sync(cli, env, *args, code=0):
    result = cli("events", "sync", "--format", "json", *args, env=env)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def stored(engine, **where) -> list[dict]:
    sql = "SELECT * FROM pmfin_events" + (" WHERE " + " AND ".join(f"{k} = :{k}" for k in where) if where else "")
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql + " ORDER BY created, id"), where).mappings()]


def tenant_with_failing_invoice(engine, stripe_fake, cards=(INSUFFICIENT,)):
    customer = stripe_fake.billing.add_customer(email="billing@acme.example", cards=cards)
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900)
    tenant = add_tenant(engine, "Acme", customer=customer["id"])
    stripe_fake.billing.automatic_attempt(invoice["id"])  # Stripe's own attempt fails: invoice.payment_failed
    return tenant, customer, invoice


def test_sync_opens_and_closes_dunning_cases_from_invoice_events(cli, engine, stripe_fake, stripe_env):
    tenant, customer, invoice = tenant_with_failing_invoice(engine, stripe_fake)
    (failed,) = stripe_fake.events.all("invoice.payment_failed")
    first = sync(cli, stripe_env)
    assert first["new"] == first["fetched"] >= 1 and first["failed"] == 0
    by_type = {e["type"]: e for e in first["events"]}
    assert by_type["invoice.payment_failed"]["result"] == f"dunning case opened for invoice {invoice['id']}"
    case = case_row(engine, invoice["id"])
    assert case["source"] == "event" and case["day0"] == dt.datetime.fromtimestamp(failed["created"], UTC)
    assert first["cursor"] == stripe_fake.events.all()[0]["id"]  # the newest event stored

    again = sync(cli, stripe_env)  # nothing newer: nothing fetched, nothing handled twice
    assert (again["fetched"], again["new"], again["handled"]) == (0, 0, 0)

    stripe_fake.billing.pay_elsewhere(invoice["id"])
    third = sync(cli, stripe_env)
    assert third["new"] >= 1 and third["cursor"] == stripe_fake.events.all()[0]["id"]
    # invoice.paid and invoice.payment_succeeded both say so (in either order): one closes the case
    settles = [e["result"] for e in third["events"] if e["type"] in ("invoice.paid", "invoice.payment_succeeded")]
    assert sorted(settles) == sorted([f"invoice {invoice['id']} is paid: dunning case closed",
                                      f"invoice {invoice['id']} is paid: no open case"])
    assert case_row(engine, invoice["id"])["status"] == "recovered" and billing_status(engine, tenant) == "active"
    # the ending_before walk: the third sync asked for events newer than the cursor it had
    last = stripe_fake.requests_to("GET", "/v1/events")[-2:]
    assert last[0].params["ending_before"] == again["cursor"]


def test_a_late_payment_failed_event_does_not_move_a_paid_invoice_backwards(cli, engine, stripe_fake, stripe_env):
    tenant, customer, invoice = tenant_with_failing_invoice(engine, stripe_fake)
    stripe_fake.billing.pay_elsewhere(invoice["id"])  # paid before pmfin ever saw the failure
    out = sync(cli, stripe_env)
    (failed,) = [e for e in out["events"] if e["type"] == "invoice.payment_failed"]
    assert failed["result"] == f"invoice {invoice['id']} is paid now: no case"
    assert case_row(engine, invoice["id"]) is None and billing_status(engine, tenant) == "active"


def test_an_event_arriving_by_webhook_and_by_sync_is_handled_once(cli, engine, stripe_fake, stripe_env):
    from pmfin.stripe_ops.events import ingest

    tenant, customer, invoice = tenant_with_failing_invoice(engine, stripe_fake)
    (event,) = stripe_fake.events.all("invoice.payment_failed")
    with engine.begin() as conn:  # as the receiver stores it
        assert ingest(conn, event, source="webhook") is True
        assert ingest(conn, event, source="webhook") is False  # a duplicate delivery
    sync(cli, stripe_env)
    (row,) = stored(engine, id=event["id"])
    assert (row["source"], row["attempts"]) == ("webhook", 1) and row["processed_at"] is not None


def test_a_new_card_gets_one_retry_at_the_next_dunning_run(cli, engine, stripe_fake, stripe_env):
    tenant, customer, invoice = tenant_with_failing_invoice(engine, stripe_fake)
    sync(cli, stripe_env)  # the case opens
    # the tenant saves a new card, a minute after the payment failed
    visa = stripe_fake.billing.add_card(customer["id"], VISA, created=int(time.time()) + 60)
    out = sync(cli, stripe_env)
    (attached,) = [e for e in out["events"] if e["type"] == "payment_method.attached"]
    assert attached["result"] == f"card {visa['id']}: a retry on it at the next dunning run ({invoice['id']})"
    # the next run (no retry slot is due yet) tries the new card at once, once
    run = cli("dunning", "run", "--format", "json", env=stripe_env)
    assert run.exit_code == 0, run.output
    (plan,) = json.loads(run.stdout)["cases"]
    assert [s["payment_method_id"] for s in plan["new_cards"]] == [visa["id"]] and plan["close"] == "paid_by_retry"
    (post,) = stripe_fake.requests_to("POST", f"/v1/invoices/{invoice['id']}/pay")
    assert post.idempotency_key == f"pmfin:dunning:{invoice['id']}:card:{visa['id']}"
    assert case_row(engine, invoice["id"])["status"] == "recovered"
    sync(cli, stripe_env)  # the card's later events ask for nothing more
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pmfin_dunning_card_retries")).scalar_one() == 1


def test_dispute_events_store_and_tell_the_dispute(cli, engine, stripe_fake, stripe_env):
    customer = stripe_fake.billing.add_customer(email="billing@acme.example")
    tenant = add_tenant(engine, "Acme", customer=customer["id"])
    charge = stripe_fake.payments.add_charge(14_900, customer=customer["id"])
    dispute = stripe_fake.payments.add_dispute(charge["id"])
    out = sync(cli, stripe_env)
    (created,) = [e for e in out["events"] if e["type"] == "charge.dispute.created"]
    assert created["result"] == f"dispute {dispute['id']} stored and told: needs_response"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT tenant_id::text FROM pmfin_disputes")).scalar_one() == tenant
        assert conn.execute(text("SELECT count(*) FROM pmfin_notifications WHERE kind = 'dispute'")).scalar_one() == 1
    stripe_fake.payments.close_dispute(dispute["id"], "won")
    out = sync(cli, stripe_env)
    assert any(e["type"] == "charge.dispute.closed" and e["result"].endswith(": won") for e in out["events"])


def test_connect_events_refresh_the_stored_account(cli, engine, stripe_fake, stripe_env):
    from pmfin.stripe_ops.events import ingest

    account = stripe_fake.accounts.add()
    tenant = add_tenant(engine, "Globex")
    with engine.begin() as conn:
        conn.execute(text("UPDATE tenant_config SET stripe_account_id = :a WHERE tenant_id = :t"), {"a": account["id"], "t": tenant})
    onboarded = stripe_fake.accounts.onboard(account["id"])
    event = stripe_fake.events.emit("account.updated", onboarded, account=account["id"])
    with engine.begin() as conn:  # a Connect webhook delivered it
        ingest(conn, event, source="webhook")
    out = cli("events", "replay", event["id"], "--format", "json", env=stripe_env)
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["result"] == f"account {account['id']}: complete (read now)"
    status = json.loads(cli("connect", "status", "--all", "--format", "json").stdout)
    assert [s["status"] for s in status if s["tenant_id"] == tenant] == ["complete"]


def test_unknown_types_are_stored_and_acknowledged(cli, engine, stripe_fake, stripe_env):
    stripe_fake.events.emit("product.created", {"id": "prod_1X", "object": "product"})
    out = sync(cli, stripe_env)
    assert [e["result"] for e in out["events"]] == ["stored (no handler for this type)"]
    assert stored(engine, type="product.created")[0]["processed_at"] is not None


def test_failures_are_kept_listed_and_replayed(cli, engine, stripe_fake, stripe_env):
    from pmfin.stripe_ops.events import ingest

    customer = stripe_fake.billing.add_customer()
    add_tenant(engine, customer=customer["id"])
    ghost = {"id": "evt_1Ghost", "object": "event", "type": "invoice.payment_failed", "created": 1_796_000_000,
             "data": {"object": {"id": "in_1Gone", "object": "invoice", "customer": customer["id"]}}}
    with engine.begin() as conn:
        ingest(conn, ghost, source="webhook")
    out = cli("events", "replay", "--failed", env=stripe_env)  # nothing failed yet: nothing to do
    assert out.exit_code == 0
    first = cli("events", "replay", "evt_1Ghost", env=stripe_env)
    assert first.exit_code == 1 and "could not be handled" in first.stderr
    (row,) = stored(engine, id="evt_1Ghost")
    assert row["processed_at"] is None and row["attempts"] == 1 and "No such invoice" in row["error"]
    listed = json.loads(cli("events", "list", "--failed", "--format", "json").stdout)
    assert [e["id"] for e in listed] == ["evt_1Ghost"]
    assert set(listed[0]) == {"id", "type", "created", "received_at", "processed_at", "attempts", "error"}
    assert json.loads(cli("events", "list", "--type", "invoice.*", "-f", "json").stdout)[0]["id"] == "evt_1Ghost"
    again = cli("events", "replay", "--failed", env=stripe_env)
    assert again.exit_code == 1 and stored(engine, id="evt_1Ghost")[0]["attempts"] == 2
    shown = json.loads(cli("events", "show", "evt_1Ghost", "--format", "json").stdout)
    assert shown["payload"]["data"]["object"]["id"] == "in_1Gone"


def test_a_cursor_older_than_stripes_30_days_is_said(cli, engine, stripe_fake, stripe_env):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pmfin_event_cursors (name, event_id, event_created) "
                          "VALUES ('platform', 'evt_1Old', now() - interval '40 days')"))
    stripe_fake.events.emit("product.created", {"id": "prod_1X", "object": "product"})
    result = cli("events", "sync", "--format", "json", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "is older than the 30 days Stripe keeps events: events in between may be gone" in result.stderr
    out = json.loads(result.stdout)
    assert out["new"] == 1 and out["warning"].endswith("synced the 30 days Stripe still has")
    assert out["cursor"] == stripe_fake.events.all()[0]["id"]  # a fresh cursor


def test_a_cursor_stripe_no_longer_knows_is_caught_up(cli, engine, stripe_fake, stripe_env):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pmfin_event_cursors (name, event_id, event_created) "
                          "VALUES ('platform', 'evt_1Vanished', now() - interval '1 day')"))
    stripe_fake.events.emit("product.created", {"id": "prod_1X", "object": "product"})
    out = sync(cli, stripe_env)
    assert out["new"] == 1 and out["warning"].startswith("Stripe no longer knows the last event synced (evt_1Vanished)")


def test_bad_input(cli, stripe_env):
    assert cli("events", "show", "nope", env=stripe_env).stderr.strip() == "error: a Stripe event id looks like evt_1AbC…, got 'nope'"
    assert cli("events", "replay", env=stripe_env).exit_code == 2
    assert cli("events", "sync", "--since", "soon", env=stripe_env).exit_code == 2
    no_secret = cli("webhooks", "serve", env=stripe_env)
    assert no_secret.exit_code == 2 and no_secret.stderr.startswith("error: no webhook signing secret")
