"""Reconciliation at scale (run by hand, not in tests): ``pmfin reconcile fees`` and
``pmfin reconcile payments`` over a month of N Connect charges of 500 connected accounts.

    .venv/bin/python benchmarks/bench_reconcile.py [--charges 10000 100000] [--rate 100] [--database-url URL]

For each size: the test suite's Stripe fake runs in its own process with N destination charges
(application fee and transfer to one of 500 accounts, 1 in 1,000 with a planted fee difference)
spread over October 2026; the platform's ``payments`` has a row for each (COPY). Then the real
``pmfin`` command reconciles the month, fees then payments, with ``PMFIN_STRIPE_RATE`` = ``--rate``
(the ceiling; Stripe allows 100/s in live mode). Reported per run: wall time, charges per second,
Stripe requests (pages of up to 100 charges, the month read as 33 day slices, four at a time) and
requests per second during the read (from the run's start to its ``read_at``) against the
ceiling, and the process's peak RSS — which should not grow with N, since pages are stored
as they are read and the comparison streams from Postgres.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

from common import ROOT, measure_child, pmfin_command, workspace

ACCOUNTS = 500
FAKE = r"""
import json, sys, random, datetime as dt
sys.path.insert(0, sys.argv[1])
from stripe_fake import StripeFake
n, out = int(sys.argv[2]), sys.argv[3]
fake = StripeFake(check_spec=False)
fake.events.recording = False  # 100k charges with their events would take gigabytes
accounts = [fake.accounts.add()["id"] for _ in range(%(accounts)d)]
rng = random.Random(7)
start = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc).timestamp())
span = 31 * 86400
rows = []
for i in range(n):
    amount = rng.choice((990, 2900, 4900, 9900, 19900, 49900)) + rng.randrange(0, 100)
    acct = accounts[i %% len(accounts)]
    share = (amount * 23 + 50) // 100
    planted = i %% 1000 == 0
    c = fake.payments.add_charge(amount, created=start + (i * span) // n, destination=acct,
                                 application_fee_amount=share, fee=(amount * 29 + 500) // 1000 + 30 + (7 if planted else 0))
    rows.append([c["id"], acct, amount, c["balance_transaction"]["fee"], share, c["created"]])
json.dump({"accounts": accounts, "charges": rows}, open(out, "w"))
fake.start()
print(fake.url, flush=True)
sys.stdin.read()
"""


def seed_payments(url: str, accounts: list[str], charges: list[list]) -> None:
    """One tenant per account, one payments row per charge (COPY)."""
    import psycopg

    from pmfin.db.url import normalize

    dsn = normalize(url).render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    tenants = {a: str(uuid.uuid5(uuid.NAMESPACE_URL, a)) for a in accounts}
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY tenants (id, name) FROM STDIN") as cp:
                for a, t in tenants.items():
                    cp.write_row((t, f"Tenant {a[-6:]}"))
            with cur.copy("COPY tenant_config (tenant_id, stripe_account_id) FROM STDIN") as cp:
                for a, t in tenants.items():
                    cp.write_row((t, a))
            with cur.copy("COPY payments (tenant_id, id, stripe_charge_id, stripe_account_id, revenue_stream, amount_cents, "
                          "currency, status, fee_cents, application_fee_cents, created_at) FROM STDIN") as cp:
                for cid, acct, amount, fee, share, created in charges:
                    cp.write_row((tenants[acct], str(uuid.uuid4()), cid, acct, "connect", amount, "usd", "succeeded", fee,
                                  share, dt.datetime.fromtimestamp(created, dt.timezone.utc)))
        conn.commit()


def last_run_read(url: str) -> tuple[int, float]:
    """(requests, seconds) of the last run's read of Stripe: its pages, from its start to read_at."""
    import psycopg

    from pmfin.db.url import normalize

    dsn = normalize(url).render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        pages, seconds = conn.execute("SELECT pages, extract(epoch FROM read_at - started_at) FROM pmfin_reconcile_runs "
                                      "ORDER BY id DESC LIMIT 1").fetchone()
    return pages, float(seconds)


def one_size(n: int, rate: int, url: str | None) -> list[dict]:
    results = []
    with workspace(url, f"bench_reconcile_{n}") as (scoped, home, env):
        data = home / "charges.json"
        t0 = time.perf_counter()
        fake = subprocess.Popen([sys.executable, "-c", FAKE % {"accounts": ACCOUNTS}, str(ROOT / "tests"), str(n), str(data)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            fake_url = fake.stdout.readline().strip()
            made = json.loads(data.read_text())
            seed_payments(scoped, made["accounts"], made["charges"])
            setup = time.perf_counter() - t0
            env.update(STRIPE_API_BASE=fake_url, STRIPE_API_KEY="sk_test_pmfinBENCH000000000000000abcd",
                       PMFIN_STRIPE_RATE=str(rate), PMFIN_STRIPE_MAX_RETRIES="2")
            for kind in ("fees", "payments"):
                cmd = [*pmfin_command(), "reconcile", kind, "--month", "2026-10", "--format", "json"]
                wall, rss = measure_child(cmd, env, ok=(0, 1))
                requests, read_s = last_run_read(scoped)  # one request per page read, as the run counted them
                results.append({
                    "kind": kind, "charges": n, "setup_s": round(setup, 1), "wall_s": round(wall, 2),
                    "charges_per_s": round(n / wall), "requests": requests, "read_s": round(read_s, 2),
                    "requests_per_s": round(requests / read_s, 1), "ceiling": rate,
                    "of_ceiling": f"{100 * requests / read_s / rate:.0f}%", "peak_rss_mib": rss,
                })
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        finally:
            fake.stdin.close()
            fake.wait(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charges", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rate", type=int, default=100, help="PMFIN_STRIPE_RATE, the ceiling (default 100: Stripe's live limit)")
    parser.add_argument("--database-url", default=os.environ.get("PMFIN_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    rows = [r for n in args.charges for r in one_size(n, args.rate, args.database_url)]
    print(f"# bench_reconcile, {dt.date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| run | charges | wall (s) | charges/s | requests | read (s) | requests/s during the read (of the ceiling) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| reconcile {r['kind']} | {r['charges']:,} | {r['wall_s']} | {r['charges_per_s']:,} | {r['requests']:,} | "
              f"{r['read_s']} | {r['requests_per_s']} ({r['of_ceiling']} of {r['ceiling']}/s) | {r['peak_rss_mib']} |")


if __name__ == "__main__":
    main()
