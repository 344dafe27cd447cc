"""A naive oracle for the revenue metrics, written straight from DESIGN.md §3.

It shares no code with ``pmfin.metrics``: it loops over every row and every month end in
Python with exact fractions. Slow on purpose; only for comparing with the SQL on small
generated histories.

A row is a dict: tenant, price (unit_price_cents per billing cycle), quantity, cycle
('month'/'year'), currency, start, end (or None), trial (or None) — aware UTC datetimes.
``rates``: {(YYYY, MM, base, quote): Fraction} — 1 base = rate quote, major units.
"""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

UTC = dt.timezone.utc
ONE_MICROSECOND = dt.timedelta(microseconds=1)
DIGITS = {"jpy": 0, "krw": 0, "kwd": 3}  # minor-unit digits when not 2 (only what the tests use)


def month_end(ym: tuple[int, int]) -> dt.datetime:
    """The exclusive end of month ``ym`` (first instant of the next month)."""
    y, m = ym
    return dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)


def shift(ym: tuple[int, int], n: int) -> tuple[int, int]:
    i = ym[0] * 12 + ym[1] - 1 + n
    return (i // 12, i % 12 + 1)


def months_between(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    out, cur = [], a
    while cur <= b:
        out.append(cur)
        cur = shift(cur, 1)
    return out


def half_even(x: Fraction) -> int:
    floor = x.numerator // x.denominator
    rest = x - floor
    if rest > Fraction(1, 2):
        return floor + 1
    if rest < Fraction(1, 2):
        return floor
    return floor if floor % 2 == 0 else floor + 1


def live(row: dict, t: dt.datetime) -> bool:
    """DESIGN §3: started_at <= t < coalesce(ended_at, +inf), not in trial (trial_ends_at null or <= t)."""
    if not row["start"] <= t:
        return False
    if row["end"] is not None and not t < row["end"]:
        return False
    return row["trial"] is None or row["trial"] <= t


def rate(rates: dict, ym: tuple[int, int], cur: str, rep: str) -> Fraction | None:
    if cur == rep:
        return Fraction(1)
    direct = rates.get((ym[0], ym[1], cur, rep))
    if direct is not None:
        return direct
    inverse = rates.get((ym[0], ym[1], rep, cur))
    return None if inverse is None else 1 / inverse


def tenant_mrr(rows: list[dict], ym: tuple[int, int], rep: str, rates: dict) -> dict:
    """{tenant: MRR in minor units of ``rep``} at the last instant of month ``ym`` (tenants with a live row)."""
    t = month_end(ym) - ONE_MICROSECOND
    exact: dict = {}
    for row in rows:
        if not live(row, t):
            continue
        r = rate(rates, ym, row["currency"], rep)
        if r is None:
            continue
        monthly = Fraction(row["price"] * row["quantity"], 12 if row["cycle"] == "year" else 1)
        digits = Fraction(10) ** (DIGITS.get(rep, 2) - DIGITS.get(row["currency"], 2))
        exact[row["tenant"]] = exact.get(row["tenant"], Fraction(0)) + monthly * r * digits
    return {k: max(half_even(v), 0) for k, v in exact.items()}


def first_month(rows: list[dict]) -> tuple[int, int]:
    s = min(r["start"] for r in rows)
    return (s.year, s.month)


def metrics(rows: list[dict], first: tuple[int, int], last: tuple[int, int], rep: str, rates: dict) -> list[dict]:
    """Per month: mrr, customers and the five movements, with history from the first row on."""
    if not rows:
        return [dict(month=m, mrr=0, customers=0, new=0, reactivation=0, expansion=0, contraction=0, churn=0)
                for m in months_between(first, last)]
    start = min(shift(first_month(rows), -1), shift(first, -1))
    history = {m: tenant_mrr(rows, m, rep, rates) for m in months_between(start, last)}
    out = []
    for m in months_between(first, last):
        cur_map, prev_map = history[m], history[shift(m, -1)]
        res = dict(month=m, mrr=sum(cur_map.values()), customers=sum(1 for v in cur_map.values() if v > 0),
                   new=0, reactivation=0, expansion=0, contraction=0, churn=0)
        for tenant in set(cur_map) | set(prev_map):
            cur, prev = cur_map.get(tenant, 0), prev_map.get(tenant, 0)
            if prev == 0 and cur > 0:
                earlier = any(history[e].get(tenant, 0) > 0 for e in history if e < m)
                res["reactivation" if earlier else "new"] += cur
            elif cur > prev > 0:
                res["expansion"] += cur - prev
            elif prev > cur > 0:
                res["contraction"] += prev - cur
            elif prev > 0 and cur == 0:
                res["churn"] += prev
        out.append(res)
    return out


def nrr_grr(rows: list[dict], m: tuple[int, int], window: int, rep: str, rates: dict) -> dict:
    start = tenant_mrr(rows, shift(m, -window), rep, rates)
    end = tenant_mrr(rows, m, rep, rates)
    cohort = [t for t, v in start.items() if v > 0]
    den = sum(start[t] for t in cohort)
    num = sum(end.get(t, 0) for t in cohort)
    kept = sum(min(end.get(t, 0), start[t]) for t in cohort)
    return dict(size=len(cohort), start=den, end=num, retained=kept,
                nrr=Fraction(num, den) if den else None, grr=Fraction(kept, den) if den else None)


def cohorts(rows: list[dict], first: tuple[int, int], last: tuple[int, int], by: str, rep: str, rates: dict) -> list[dict]:
    if not rows:
        return [dict(cohort=c, size=0, starting=0, retention=[None] * len(months_between(c, last)))
                for c in months_between(first, last)]
    history = {m: tenant_mrr(rows, m, rep, rates) for m in months_between(min(first_month(rows), first), last)}
    cohort_of: dict = {}
    for m in sorted(history):
        for t, v in history[m].items():
            if v > 0 and t not in cohort_of:
                cohort_of[t] = m
    out = []
    for c in months_between(first, last):
        members = [t for t, cm in cohort_of.items() if cm == c]
        starting = {t: history[c][t] for t in members}
        retention = []
        for age_month in months_between(c, last):
            alive = [t for t in members if history[age_month].get(t, 0) > 0]
            if by == "logos":
                retention.append(Fraction(len(alive), len(members)) if members else None)
            else:
                total = sum(starting.values())
                retention.append(Fraction(sum(starting[t] for t in alive), total) if total else None)
        out.append(dict(cohort=c, size=len(members), starting=sum(starting.values()), retention=retention))
    return out
