"""``pmfin webhooks serve`` as a real process (uvicorn) under a real HTTP client on loopback:
valid, tampered, stale, duplicate, oversized and malformed deliveries; a rotation of secrets;
200 concurrent deliveries of 50 distinct events, each handled exactly once; SIGTERM during
delivery, with no accepted event lost."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import text

from smtp_server import free_port
from stripe_fake.env import fake_env

SECRET = "whsec_" + "a1b2c3d4" * 4
OLD_SECRET = "whsec_" + "0f0f0f0f" * 4


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None, extra: str = "") -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={sig}{extra}"


def event(kind: str = "customer.created", **fields) -> dict:
    return {"id": f"evt_1{uuid.uuid4().hex[:20]}", "object": "event", "type": kind, "created": int(time.time()),
            "livemode": False, "data": {"object": {"id": f"cus_1{uuid.uuid4().hex[:10]}", "object": "customer"}}, **fields}


class Receiver:
    def __init__(self, env: dict, port: int):
        self.port, self.env = port, env
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "pmfin", "webhooks", "serve", "--port", str(port)], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the receiver did not start: {self.proc.communicate()[1][-2000:]}")
            time.sleep(0.1)

    def post(self, body: str | bytes, signature: str | None, **kw) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return requests.post(self.url + "/api/webhooks/stripe", data=body, headers=headers, timeout=10, **kw)

    def deliver(self, ev: dict, secret: str = SECRET) -> requests.Response:
        body = json.dumps(ev)
        return self.post(body, sign(body, secret))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return err


@pytest.fixture
def receiver_env(database_url, pmfin_home, stripe_fake):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_")) and k != "DATABASE_URL"}
    env.update({k: v for k, v in fake_env(stripe_fake).items() if v is not None})
    env.update(DATABASE_URL=database_url, PMFIN_HOME=str(pmfin_home), STRIPE_WEBHOOK_SECRET=f"{SECRET},{OLD_SECRET}")
    return env


@pytest.fixture
def receiver(receiver_env):
    r = Receiver(receiver_env, free_port())
    yield r
    r.stop()


def events_table(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(text("SELECT * FROM pmfin_events")).mappings()}


def wait_processed(engine, ids, timeout=20.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = events_table(engine)
        if all(i in rows and rows[i]["processed_at"] for i in ids) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_valid_delivery_is_stored_answered_and_handled(receiver, engine):
    ev = event()
    answer = receiver.deliver(ev)
    assert answer.status_code == 200 and answer.json() == {"received": True, "duplicate": False}, receiver.stop()[-3000:]
    row = wait_processed(engine, [ev["id"]])[ev["id"]]
    assert (row["source"], row["attempts"], row["result"]) == ("webhook", 1, "stored (no handler for this type)")
    assert row["payload"]["id"] == ev["id"]
    duplicate = receiver.deliver(ev)  # Stripe delivers again: acknowledged, stored once, handled once
    assert duplicate.status_code == 200 and duplicate.json()["duplicate"] is True
    time.sleep(0.5)
    assert events_table(engine)[ev["id"]]["attempts"] == 1


def test_the_signature_is_checked_with_the_sdk(receiver, engine):
    ev = event()
    body = json.dumps(ev)
    tampered = receiver.post(body.replace("customer.created", "invoice.paid"), sign(body))
    stale = receiver.post(body, sign(body, timestamp=int(time.time()) - 301))
    wrong = receiver.post(body, sign(body, secret="whsec_" + "9" * 32))
    missing = receiver.post(body, None)
    garbage = receiver.post(body, "t=abc,v1=")
    for r in (tampered, stale, wrong, missing, garbage):
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert r.json()["error"].startswith("no valid Stripe-Signature") and "Traceback" not in r.text
    assert events_table(engine) == {}
    # during a rotation: the old secret still works, and a header with two v1 signatures passes on any match
    assert receiver.deliver(ev, secret=OLD_SECRET).status_code == 200
    other = event()
    both = json.dumps(other)
    two = sign(both, secret="whsec_" + "7" * 32) + "," + sign(both).split(",")[1]
    assert receiver.post(both, two).status_code == 200
    assert set(events_table(engine)) == {ev["id"], other["id"]}


def test_oversized_malformed_and_unknown_requests(receiver, engine):
    big = '{"pad": "' + "x" * (1 << 20) + '"}'
    assert receiver.post(big, sign(big)).status_code == 413
    not_json = "this is not json"
    r = receiver.post(not_json, sign(not_json))
    assert r.status_code == 400 and r.json() == {"error": "the body is not JSON"}
    not_event = json.dumps({"id": "nope"})
    assert receiver.post(not_event, sign(not_event)).json() == {"error": "not a Stripe event"}
    assert requests.get(receiver.url + "/api/webhooks/stripe", timeout=5).status_code == 405
    assert requests.get(receiver.url + "/nowhere", timeout=5).json() == {"error": "not found"}
    assert requests.get(receiver.url + "/healthz", timeout=5).json() == {"status": "ok"}
    assert events_table(engine) == {}


def test_200_concurrent_deliveries_of_50_events_are_each_handled_once(receiver, engine):
    events = [event() for _ in range(50)]
    deliveries = [events[i % 50] for i in range(200)]
    answers: list[int] = []
    lock = threading.Lock()

    def send(ev):
        status = receiver.deliver(ev).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=send, args=(ev,)) for ev in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 200
    rows = wait_processed(engine, [e["id"] for e in events])
    assert len(rows) == 50 and all(r["attempts"] == 1 and r["processed_at"] for r in rows.values())


def test_sigterm_during_delivery_loses_no_accepted_event(receiver_env, engine):
    receiver = Receiver(receiver_env, free_port())
    events = [event() for _ in range(150)]
    accepted: list[str] = []
    lock = threading.Lock()

    def send(batch):
        for ev in batch:
            try:
                if receiver.deliver(ev).status_code == 200:
                    with lock:
                        accepted.append(ev["id"])
            except requests.RequestException:
                pass  # not accepted: Stripe would deliver it again

    threads = [threading.Thread(target=send, args=(events[i::5],)) for i in range(5)]
    for t in threads:
        t.start()
    while len(accepted) < 30:
        time.sleep(0.01)
    receiver.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join()
    err = receiver.stop()
    # uvicorn shuts down gracefully, then ends the process with the signal it got (as systemd expects)
    assert receiver.proc.returncode in (0, -signal.SIGTERM), err[-2000:]
    assert "Application shutdown complete" in err
    assert "Traceback" not in err
    stored = events_table(engine)
    assert 30 <= len(accepted) and set(accepted) <= set(stored)  # every 200 was stored
    # what the worker had not handled yet is handled at the next start
    again = Receiver(receiver_env, free_port())
    try:
        rows = wait_processed(engine, list(stored))
    finally:
        again.stop()
    assert all(r["processed_at"] and r["attempts"] == 1 for r in rows.values())


def test_an_invoice_event_by_webhook_opens_the_dunning_case(receiver, engine, stripe_fake):
    from billing_fixtures import add_tenant, case_row

    customer = stripe_fake.billing.add_customer(cards=("4000000000009995",))
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900)
    add_tenant(engine, customer=customer["id"])
    stripe_fake.billing.automatic_attempt(invoice["id"])
    (failed,) = stripe_fake.events.all("invoice.payment_failed")
    body, headers = stripe_fake.events.signed_delivery(failed, SECRET)  # the fake's own signing
    answer = requests.post(receiver.url + "/api/webhooks/stripe", data=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    row = wait_processed(engine, [failed["id"]])[failed["id"]]
    assert row["result"] == f"dunning case opened for invoice {invoice['id']}"
    assert case_row(engine, invoice["id"])["source"] == "event"
