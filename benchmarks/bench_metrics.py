"""Benchmark of the core revenue reports on a large generated history (run by hand, not in tests).

    .venv/bin/python benchmarks/bench_metrics.py                      # 25k and 100k tenants, 36 months
    .venv/bin/python benchmarks/bench_metrics.py --sizes 100000 --database-url postgresql://…

For each size it generates the history into the contract tables of a scratch schema
(``bench_<n>``, set-based SQL with generate_series: monthly/annual plans, trials, plan changes
at the same instant, add-ons, churn), then measures:

- ``report mrr``, ``report movements`` (36 months) and ``report cohorts`` (36 cohorts): the
  time of the service call (the SQL), and the whole ``pmfin`` process run as a subprocess
  (wall time incl. Python start-up, and its peak RSS from ``wait4``);
- a plain scan: one sequential pass over subscriptions and subscription_addons (joined to
  plans/addons for the billing cycle) reading every column the reports use, folded into
  count/sum/max aggregates with no grouping (what Postgres needs just to read the rows once);
- a straightforward pandas implementation: load the rows into a DataFrame, then per month a
  live mask, MRR per tenant, rounded, summed (run in a subprocess for its peak RSS).

Without ``--database-url`` it starts pmfin's embedded PostgreSQL under a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine, ROOT, database, measure_child, pmfin_command, scratch_schema
from sqlalchemy import create_engine, text

from pmfin.db.url import normalize

FIRST, LAST = "2023-01", "2025-12"

GENERATE = """
SELECT setseed(0.42);
INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency) VALUES
  ('starter', 'Starter', 'professional', 'month', 4900, 'usd'),
  ('pro', 'Pro', 'professional', 'month', 14900, 'usd'),
  ('pro_annual', 'Pro annual', 'professional', 'year', 149000, 'usd'),
  ('enterprise', 'Enterprise', 'enterprise', 'month', 99900, 'usd')
ON CONFLICT DO NOTHING;
INSERT INTO addons (id, name, billing_cycle, price_cents, currency) VALUES
  ('dedicated_ip', 'Dedicated IP', 'month', 2900, 'usd') ON CONFLICT DO NOTHING;
CREATE TEMP TABLE gen AS
SELECT gen_random_uuid() AS tenant_id,
       timestamptz '2023-01-01 00:00+00' + (random() * 1090) * interval '1 day' AS start,
       random() AS r_plan, random() AS r_change, random() AS r_churn, random() AS r_trial,
       random() AS r_addon, random() AS r_len, random() AS r_len2, 1 + (random() * 4)::int AS qty
FROM generate_series(1, :n);
INSERT INTO tenants (id, name, created) SELECT tenant_id, 'bench ' || tenant_id, start FROM gen;
CREATE TEMP TABLE gen2 AS
SELECT *,
       CASE WHEN r_change < 0.35 THEN start + (20 + r_len * 400) * interval '1 day' END AS change_at,
       CASE WHEN r_churn < 0.35 THEN start + (30 + r_len2 * 700) * interval '1 day' END AS churn_at,
       CASE WHEN r_plan < 0.45 THEN 'starter' WHEN r_plan < 0.8 THEN 'pro'
            WHEN r_plan < 0.95 THEN 'pro_annual' ELSE 'enterprise' END AS plan
FROM gen;
UPDATE gen2 SET change_at = NULL WHERE change_at >= churn_at;
INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency, started_at,
                           trial_ends_at, ended_at, end_reason)
SELECT g.tenant_id, gen_random_uuid(), g.plan, CASE WHEN coalesce(g.change_at, g.churn_at) IS NULL THEN 'active' ELSE 'canceled' END,
       CASE WHEN g.plan = 'starter' THEN 1 ELSE g.qty END, p.price_cents * (0.8 + 0.2 * g.r_len)::numeric, 'usd', g.start,
       CASE WHEN g.r_trial < 0.3 THEN g.start + interval '14 days' END,
       coalesce(g.change_at, g.churn_at),
       CASE WHEN g.change_at IS NOT NULL THEN 'plan_change' WHEN g.churn_at IS NOT NULL THEN 'canceled' END
FROM gen2 g JOIN plans p ON p.id = g.plan;
INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency, started_at, ended_at, end_reason)
SELECT g.tenant_id, gen_random_uuid(), 'pro', CASE WHEN g.churn_at IS NULL THEN 'active' ELSE 'canceled' END,
       g.qty, 14900, 'usd', g.change_at, g.churn_at, CASE WHEN g.churn_at IS NOT NULL THEN 'canceled' END
FROM gen2 g WHERE g.change_at IS NOT NULL;
INSERT INTO subscription_addons (tenant_id, id, addon_id, quantity, unit_price_cents, currency, started_at, ended_at)
SELECT g.tenant_id, gen_random_uuid(), 'dedicated_ip', 1 + (g.r_len * 2)::int, 2900, 'usd',
       g.start + interval '25 days', g.churn_at
FROM gen2 g WHERE g.r_addon < 0.15;
DROP TABLE gen; DROP TABLE gen2;
ANALYZE;
"""

# One sequential pass over both tables, reading every column the reports use (tenant_id, the
# price, quantity and billing cycle, currency, started_at, trial_ends_at, ended_at) and folding
# each into an aggregate, with no grouping: what Postgres needs just to read the rows once.
SCAN_SQL = """
SELECT count(*), count(tenant_id), sum(twelfths), max(started_at), max(trial_ends_at), max(ended_at),
       count(*) FILTER (WHERE currency <> 'usd')
FROM (
    SELECT s.tenant_id, s.currency, s.started_at, s.trial_ends_at, s.ended_at,
           s.unit_price_cents::bigint * s.quantity * CASE WHEN p.billing_cycle = 'year' THEN 1 ELSE 12 END AS twelfths
    FROM subscriptions s JOIN plans p ON p.id = s.plan_id
    UNION ALL
    SELECT a.tenant_id, a.currency, a.started_at, NULL, a.ended_at,
           a.unit_price_cents::bigint * a.quantity * CASE WHEN d.billing_cycle = 'year' THEN 1 ELSE 12 END
    FROM subscription_addons a JOIN addons d ON d.id = a.addon_id
) r
"""

PANDAS_SCRIPT = r"""
import sys, time
from decimal import Decimal
import numpy as np
import pandas as pd
from sqlalchemy import create_engine
from pmfin.db.url import normalize
t0 = time.perf_counter()
engine = create_engine(normalize(sys.argv[1]))
q = '''SELECT s.tenant_id, s.unit_price_cents, s.quantity, p.billing_cycle, s.started_at, s.trial_ends_at, s.ended_at
       FROM subscriptions s JOIN plans p ON p.id = s.plan_id
       UNION ALL
       SELECT a.tenant_id, a.unit_price_cents, a.quantity, d.billing_cycle, a.started_at, NULL, a.ended_at
       FROM subscription_addons a JOIN addons d ON d.id = a.addon_id'''
with engine.connect() as c:
    df = pd.read_sql(q, c)
t_load = time.perf_counter() - t0
df["twelfths"] = df.unit_price_cents * df.quantity * np.where(df.billing_cycle == "year", 1, 12)
far = pd.Timestamp("2262-01-01", tz="UTC")
ended = df.ended_at.fillna(far)
live_from = df[["started_at", "trial_ends_at"]].max(axis=1)
out = []
for end in pd.date_range("2023-02-01", "2026-01-01", freq="MS", tz="UTC"):
    live = (live_from < end) & (ended >= end)
    per_tenant = df.loc[live].groupby("tenant_id").twelfths.sum()
    q, r = np.divmod(per_tenant.to_numpy(), 12)
    rounded = q + (r > 6) + ((r == 6) & (q % 2 == 1))
    out.append(int(rounded.sum()))
print(f"{time.perf_counter() - t0:.3f} {t_load:.3f} {out[-1]}")
"""


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_size(base_url: str, n: int, repeat: int) -> list[dict]:
    with scratch_schema(base_url, f"bench_{n}", contract=True, keep=True) as url:
        return _bench(url, n, repeat)


def _bench(url: str, n: int, repeat: int) -> list[dict]:
    engine = create_engine(normalize(url))
    t = time.perf_counter()
    with engine.begin() as c:
        for stmt in filter(str.strip, GENERATE.split(";\n")):
            c.execute(text(stmt), {"n": n})
    gen_time = time.perf_counter() - t
    with engine.connect() as c:
        subs = c.execute(text("SELECT count(*) FROM subscriptions")).scalar_one()
        adds = c.execute(text("SELECT count(*) FROM subscription_addons")).scalar_one()
    print(f"# {n:,} tenants: {subs:,} subscription rows, {adds:,} add-on rows, generated in {gen_time:.1f}s", flush=True)

    from pmfin.metrics.mrr import month_metrics, month_series
    from pmfin.metrics.retention import cohort_matrix
    from pmfin.months import Month

    first, last = Month.parse(FIRST), Month.parse(LAST)

    def scan():
        with engine.connect() as c:
            c.execute(text(SCAN_SQL)).one()

    results = []
    scan_t = best_of(scan, repeat)
    results.append(dict(size=n, what="plain scan: one pass over the rows, columns used", service=scan_t))
    env = {**os.environ, "DATABASE_URL": url, "PMFIN_HOME": tempfile.mkdtemp(prefix="pmfin-bench-")}
    pmfin = pmfin_command()
    for name, fn, argv in (
        ("report mrr", lambda: month_metrics(engine, last, "usd"),
         ["report", "mrr", "--month", LAST, "--format", "json"]),
        ("report movements (36 months)", lambda: month_series(engine, first, last, "usd"),
         ["report", "movements", "--from", FIRST, "--to", LAST, "--format", "json"]),
        ("report cohorts (36 cohorts)", lambda: cohort_matrix(engine, first, last, "logos", "usd"),
         ["report", "cohorts", "--from", FIRST, "--to", LAST, "--format", "json"]),
    ):
        service = best_of(fn, repeat)
        wall, rss = measure_child(pmfin + argv, env)
        results.append(dict(size=n, what=name, service=service, wall=wall, rss=rss))
        print(f"  {name}: service {service:.3f}s, process {wall:.2f}s, {rss} MiB", flush=True)
    script = Path(tempfile.mkdtemp()) / "pandas_mrr.py"
    script.write_text(PANDAS_SCRIPT)
    wall, rss = measure_child([sys.executable, str(script), url], {**env, "PYTHONPATH": str(ROOT)})
    pandas_out = subprocess.run([sys.executable, str(script), url], env={**env, "PYTHONPATH": str(ROOT)},
                                capture_output=True, text=True, check=True).stdout.split()
    pandas_total, pandas_mrr = float(pandas_out[0]), int(pandas_out[2])
    sql_mrr = month_metrics(engine, last, "usd").mrr
    results.append(dict(size=n, what="pandas: load rows + MRR for 36 months", service=pandas_total, wall=wall, rss=rss))
    print(f"  pandas: {pandas_total:.2f}s in the script (load {pandas_out[1]}s), process {wall:.2f}s, {rss} MiB; "
          f"MRR {LAST}: pandas {pandas_mrr} / SQL {sql_mrr} {'(equal)' if pandas_mrr == sql_mrr else '(DIFFERENT)'}",
          flush=True)
    engine.dispose()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25000,100000", help="tenant counts, comma-separated")
    ap.add_argument("--database-url", default=os.environ.get("PMFIN_BENCH_DATABASE_URL"))
    ap.add_argument("--repeat", type=int, default=3, help="service timings: best of N")
    args = ap.parse_args()
    with database(args.database_url) as base:
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            rows += bench_size(base, n, args.repeat)
    scans = {r["size"]: r["service"] for r in rows if r["what"].startswith("plain scan")}
    print(f"\n# measured {machine()}")
    print("| tenants | what | query / compute (s) | × plain scan | pmfin process wall (s) | peak RSS (MiB) |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = r["service"] / scans[r["size"]]
        wall = f"{r['wall']:.2f}" if "wall" in r else ""
        rss = str(r["rss"]) if "rss" in r else ""
        print(f"| {r['size']:,} | {r['what']} | {r['service']:.3f} | {ratio:.1f}× | {wall} | {rss} |")


if __name__ == "__main__":
    main()
