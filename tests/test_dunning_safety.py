"""Cron safety of ``pmfin dunning run`` with real processes: two runs at the same moment, and a run
killed with SIGKILL in the middle of a charge. The measure is the Stripe fake's ledger: exactly
one successful charge per invoice, never two."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from billing_fixtures import add_tenant, at, attempts, case_row, fail_payment
from stripe_fake.env import fake_env

DAY0 = at("2026-11-02T10:00:00")
INSUFFICIENT, VISA = "4000000000009995", "4242424242424242"


@pytest.fixture
def proc_env(database_url, pmfin_home, stripe_fake):
    """The environment of a real ``python -m pmfin`` process pointed at this test's database and fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_")) and k != "DATABASE_URL"}
    env.update({k: v for k, v in fake_env(stripe_fake).items() if v is not None})
    env.update(DATABASE_URL=database_url, PMFIN_HOME=str(pmfin_home))
    return env


def start(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pmfin", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def successful_charges(fake, invoice_id: str) -> int:
    return sum(1 for c in fake.billing.charges(invoice_id) if c["status"] == "succeeded")


def setup_case(engine, stripe_fake, cli, stripe_env, cards=(INSUFFICIENT, VISA)):
    customer = stripe_fake.billing.add_customer(cards=cards)
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900, attempt_count=1)
    tenant = add_tenant(engine, customer=customer["id"])
    fail_payment(engine, tenant, invoice["id"], DAY0)
    opened = cli("dunning", "run", "--as-of", "2026-11-02T12:00:00Z", env=stripe_env)
    assert opened.exit_code == 0, opened.output
    return tenant, invoice, customer


def test_two_runs_at_the_same_moment_charge_once(engine, stripe_fake, cli, stripe_env, proc_env):
    _, invoice, _ = setup_case(engine, stripe_fake, cli, stripe_env)
    # The first run is slowed in its first charge (4 s: far longer than a process takes to start on
    # a loaded machine, shorter than the client's 5 s timeout), so the second and third surely
    # start while it holds the lock.
    stripe_fake.inject("delay", seconds=4, method="POST", path=f"/v1/invoices/{invoice['id']}/pay")
    a = start(proc_env, "dunning", "run", "--as-of", "2026-11-03T10:00:00Z")
    wait_for(lambda: stripe_fake.requests_to("POST", f"/v1/invoices/{invoice['id']}/pay"))
    b = start(proc_env, "dunning", "run", "--as-of", "2026-11-03T10:00:00Z")
    c = start(proc_env, "dunning", "run", "--as-of", "2026-11-03T10:00:00Z", "--wait", "--format", "json")
    out_b, err_b = b.communicate(timeout=60)
    assert a.poll() is None, "the first run ended before the second one asked for the lock"
    out_a, err_a = a.communicate(timeout=60)
    out_c, err_c = c.communicate(timeout=60)
    assert a.returncode == 0, err_a
    assert (b.returncode, err_b.strip()) == (0, "another dunning run is in progress: this one did nothing (use --wait to wait for it)")
    assert c.returncode == 0, err_c  # waited for the first, then found the case closed
    assert json.loads(out_c)["cases"] == []
    assert successful_charges(stripe_fake, invoice["id"]) == 1
    assert len(stripe_fake.requests_to("POST", f"/v1/invoices/{invoice['id']}/pay")) == 2  # one per card, once
    assert case_row(engine, invoice["id"])["close_reason"] == "paid_by_retry"


def test_a_run_killed_mid_charge_is_resumed_with_the_same_key_and_no_second_charge(engine, stripe_fake, cli, stripe_env, proc_env):
    _, invoice, customer = setup_case(engine, stripe_fake, cli, stripe_env, cards=(VISA,))
    pay_path = f"/v1/invoices/{invoice['id']}/pay"
    # Stripe takes 2 s to answer the charge; the run is killed while it waits.
    stripe_fake.inject("delay", seconds=2.0, method="POST", path=pay_path)
    run = start(proc_env, "dunning", "run", "--as-of", "2026-11-03T10:00:00Z")
    wait_for(lambda: stripe_fake.requests_to("POST", pay_path))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    (pending,) = attempts(engine, invoice["id"])
    assert pending["outcome"] is None and pending["finished_at"] is None  # recorded before the call
    wait_for(lambda: successful_charges(stripe_fake, invoice["id"]) == 1)  # Stripe did charge

    rerun = cli("dunning", "run", "--as-of", "2026-11-03T10:05:00Z", "--format", "json", env=stripe_env)
    assert rerun.exit_code == 0, rerun.output
    (case,) = json.loads(rerun.stdout)["cases"]
    assert case["resend"] == [pending["idempotency_key"]] and case["close"] == "paid_by_retry"
    posts = stripe_fake.requests_to("POST", pay_path)
    assert [p.idempotency_key for p in posts] == [pending["idempotency_key"]] * 2 and posts[1].replayed
    assert successful_charges(stripe_fake, invoice["id"]) == 1
    (done,) = attempts(engine, invoice["id"])
    assert done["outcome"] == "succeeded"


def test_an_unfinished_attempt_past_the_key_window_reads_the_invoice_instead(engine, stripe_fake, cli, stripe_env, proc_env):
    from sqlalchemy import text

    _, invoice, customer = setup_case(engine, stripe_fake, cli, stripe_env, cards=(VISA,))
    pay_path = f"/v1/invoices/{invoice['id']}/pay"
    stripe_fake.inject("delay", seconds=1.0, method="POST", path=pay_path)
    run = start(proc_env, "dunning", "run", "--as-of", "2026-11-03T10:00:00Z")
    wait_for(lambda: stripe_fake.requests_to("POST", pay_path))
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    wait_for(lambda: successful_charges(stripe_fake, invoice["id"]) == 1)
    with engine.begin() as conn:  # as if the rerun came 25 hours later: Stripe has forgotten the key
        conn.execute(text("UPDATE pmfin_payment_attempts SET started_at = started_at - interval '25 hours'"))
    rerun = cli("dunning", "run", "--as-of", "2026-11-04T11:00:00Z", "--format", "json", env=stripe_env)
    assert rerun.exit_code == 0, rerun.output
    assert len(stripe_fake.requests_to("POST", pay_path)) == 1  # nothing re-sent
    (attempt,) = attempts(engine, invoice["id"])
    assert attempt["outcome"] == "unknown" and "the invoice was read instead" in attempt["message"]
    assert case_row(engine, invoice["id"])["status"] == "recovered" and successful_charges(stripe_fake, invoice["id"]) == 1
