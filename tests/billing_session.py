"""The README's tenant-billing session, reproducible: ``python tests/billing_session.py``.

Starts an embedded PostgreSQL in a scratch directory and the test suite's Stripe fake, puts a
small PenguinMails catalog and three tenants in both (``tenant_billing_fixtures``), then runs the
real ``pmfin`` commands of the README's "Tenant billing" section in subprocesses and prints each
command with its output. Not a test (pytest collects only ``test_*.py``); ids and the instants
Stripe stamps differ from run to run.

The tenants, as of the session (it is meant to run on 2026-12-01 UTC):
- Acme Outreach: Professional; its default card (Mastercard 4444) expired at the end of November,
  so the renewal of 2026-12-01 00:00 failed (``expired_card``); a Visa is saved too.
- Globex Mail: Professional, period 2026-11-15 – 2026-12-15; upgrades to Enterprise.
- Initech: Enterprise (annual); its default card expires at the end of December.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sqlalchemy import create_engine, text  # noqa: E402

from pmfin.db import embedded, migrate  # noqa: E402
from pmfin.db.url import normalize  # noqa: E402
from stripe_fake.env import fake_env  # noqa: E402
from stripe_fake.server import StripeFake  # noqa: E402
from tenant_billing_fixtures import Catalog  # noqa: E402

VISA, MASTERCARD = "4242424242424242", "5555555555554444"


def seed(engine, fake) -> dict[str, str]:
    cat = Catalog(engine, fake)
    acme = cat.tenant("Acme Outreach", "professional", start="2026-11-01", cards=(VISA,), seats=4, ips=1,
                      email="billing@acme.example", since="2026-01-05")
    expired = fake.billing.add_card(acme.customer["id"], MASTERCARD, exp_month=11, exp_year=2026, make_default=True)
    globex = cat.tenant("Globex Mail", "professional", start="2026-11-15", cards=(VISA,), seats=3, ips=1,
                        email="ap@globex.example", since="2026-03-15")
    initech = cat.tenant("Initech", "enterprise_annual", start="2026-03-01", cards=(VISA,), seats=12, ips=4,
                         email="finance@initech.example", since="2025-03-01")
    fake.billing.add_card(initech.customer["id"], MASTERCARD, exp_month=12, exp_year=2026, make_default=True)
    renewal = fake.subscriptions.renew(acme.subscription["id"])  # charged to the expired card: declined
    at = dt.datetime.fromtimestamp(renewal["created"], dt.timezone.utc)
    with engine.begin() as conn:
        conn.execute(text("UPDATE subscriptions SET status = 'past_due', current_period_start = :s, "
                          "current_period_end = :e WHERE tenant_id = :t"),
                     {"s": at, "e": dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc), "t": acme.id})
        for tenant, n in ((acme.id, 18_400), (globex.id, 41_250), (initech.id, 212_900)):
            conn.execute(text("INSERT INTO emails (tenant_id, id, status, sent_at) SELECT :t, gen_random_uuid(), 'sent', "
                              "timestamptz '2026-12-01 00:01+00' FROM generate_series(1, :n)"), {"t": tenant, "n": n})
        for tenant, when, amount, status, code, message, invoice in (
            (acme.id, "2026-11-01 00:00+00", 4900, "succeeded", None, None, None),
            (acme.id, at, 4900, "failed", "expired_card", "Your card has expired.", renewal["id"]),
            (globex.id, "2026-11-15 00:05+00", 4900, "succeeded", None, None, None),
        ):
            conn.execute(text("INSERT INTO payments (tenant_id, id, stripe_invoice_id, revenue_stream, amount_cents, "
                              "currency, status, failure_code, failure_message, created_at) VALUES (:t, :id, :inv, "
                              "'subscription', :a, 'usd', :s, :c, :m, :w)"),
                         {"t": tenant, "id": uuid.uuid4(), "inv": invoice, "a": amount, "s": status, "c": code,
                          "m": message, "w": when})
    return {"ACME": acme.id, "GLOBEX": globex.id, "INITECH": initech.id, "VISA": acme.cards[0],
            "EXPIRED": expired["id"], "INVOICE": renewal["id"]}


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="pmfin-session-"))
    url = embedded.start(home)
    fake = StripeFake().start()
    try:
        engine = create_engine(normalize(url))
        migrate.init(engine, app_schema=True)
        ids = seed(engine, fake)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_"))}
        env.update({k: v for k, v in fake_env(fake).items() if v is not None})
        env.update(DATABASE_URL=url, PMFIN_HOME=str(home), COLUMNS="200")

        def run(command: str) -> None:
            for name, value in ids.items():
                command = command.replace(name, value)
            print(f"$ pmfin {command}", flush=True)
            done = subprocess.run([sys.executable, "-m", "pmfin", *shlex.split(command)], env=env, capture_output=True,
                                  text=True)
            sys.stdout.write(done.stdout + done.stderr + ("" if done.returncode == 0 else f"(exit {done.returncode})\n"))
            print(flush=True)

        run("dunning run")  # opens Acme's case (day 0 = 00:00)
        for command in (
            "plans list",
            "plans compare --tenant GLOBEX --to enterprise",
            "subscription change --tenant GLOBEX --to enterprise --proration-date 2026-12-01T00:00:00Z --preview",
            "subscription change --tenant GLOBEX --to enterprise --proration-date 2026-12-01T00:00:00Z --yes",
            "billing show --tenant GLOBEX",
            "billing show --tenant ACME",
            "payment-methods list --tenant ACME",
            "payment-methods set-default --tenant ACME VISA",
            "invoices pay INVOICE --payment-method VISA",
            "payment-methods set-default --tenant ACME VISA",
            "payment-methods expiring --within 30 --notify",
            "report mrr --month 2026-12 --format json",
        ):
            run(command)
    finally:
        fake.stop()
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
