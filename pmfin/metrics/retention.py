"""Net and gross revenue retention, and the cohort retention matrix (DESIGN.md §3).

Both build on the per-tenant MRR ``points`` of :mod:`pmfin.metrics.mrr` (same liveness,
proration, rounding and FX rules), in one query each, grouped by ``tenant_id`` first.

- **NRR / GRR over a window of k months ending at M**: the cohort is the tenants with MRR > 0 at
  the end of M−k. NRR = Σ their MRR at the end of M ÷ Σ their MRR at the end of M−k;
  GRR = Σ min(MRR at the end of M, MRR at the end of M−k) ÷ the same denominator. Tenants that
  start paying during the window are not in the cohort (as in ChartMogul and Stripe's analytics).
- **Cohorts**: a tenant's cohort is the first month at whose end it had MRR > 0 (over all
  history); retention at age n = the share of the cohort (by logos, or by starting MRR: the MRR
  of each member at the end of its cohort month) with MRR > 0 at the end of cohort month + n.
  A tenant that churns and comes back counts again once it is back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from pmfin.db.own import readable
from pmfin.errors import UsageError
from pmfin.metrics.mrr import (
    base_params,
    check_currency,
    connection,
    left_out_warnings,
    points_cte,
    ratio,
    require_tables,
)
from pmfin.months import Month, month_range


@dataclass(frozen=True)
class Retention:
    month: Month  # the window ends at the end of this month
    window: int  # months
    start_month: Month  # M − window: the cohort is the customers at the end of this month
    currency: str
    cohort_size: int
    start_mrr: int  # Σ cohort MRR at the end of start_month
    end_mrr: int  # Σ cohort MRR at the end of month
    retained_mrr: int  # Σ min(end, start) per tenant
    nrr: Decimal | None  # end_mrr ÷ start_mrr; None when the cohort is empty
    grr: Decimal | None  # retained_mrr ÷ start_mrr
    warnings: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self.__dataclass_fields__}
        row["month"], row["start_month"] = str(self.month), str(self.start_month)
        return row


_NRR_SQL = """
WITH {cte},
held AS (
    SELECT tenant_id, month, cur, lead(month) OVER (PARTITION BY tenant_id ORDER BY month) AS next_month
    FROM points
),
vals AS (
    SELECT tenant_id,
           max(cur) FILTER (WHERE month <= CAST(:start AS date)
                            AND (next_month IS NULL OR next_month > CAST(:start AS date))) AS v0,
           coalesce(max(cur) FILTER (WHERE month <= CAST(:last AS date)
                                     AND (next_month IS NULL OR next_month > CAST(:last AS date))), 0) AS v1
    FROM held
    GROUP BY tenant_id
)
SELECT count(*) AS size,
       coalesce(sum(v0), 0) AS start_mrr,
       coalesce(sum(v1), 0) AS end_mrr,
       coalesce(sum(least(v0, v1)), 0) AS retained
FROM vals
WHERE v0 > 0
"""


MAX_WINDOW = 120  # ten years: as far as any other horizon of pmfin


def check_window(window: int, flag: str = "--window") -> int:
    if not 1 <= window <= MAX_WINDOW:
        raise UsageError(f"{flag} must be a whole number of months from 1 to {MAX_WINDOW}, got {window}")
    return window


def nrr_grr(conn: Connection | Engine, month: Month, window: int, currency: str) -> Retention:
    """NRR and GRR of the customers at the end of ``month − window``, measured at the end of ``month``."""
    window = check_window(window)
    currency = check_currency(currency)
    start = month.add(-window)
    params = {**base_params(currency, month), "start": start.first_day}
    with connection(conn) as c:
        require_tables(c)
        r = c.execute(readable(c, _NRR_SQL.format(cte=points_cte())), params).mappings().one()
        warnings = [w for m, w in left_out_warnings(c, start, month, currency) if m in (start, month)]
    start_mrr = int(r["start_mrr"])
    return Retention(
        month=month,
        window=window,
        start_month=start,
        currency=currency,
        cohort_size=int(r["size"]),
        start_mrr=start_mrr,
        end_mrr=int(r["end_mrr"]),
        retained_mrr=int(r["retained"]),
        nrr=ratio(int(r["end_mrr"]), start_mrr),
        grr=ratio(int(r["retained"]), start_mrr),
        warnings=warnings,
    )


@dataclass(frozen=True)
class Cohort:
    cohort: Month
    size: int  # tenants whose first month with MRR > 0 is this one
    starting_mrr: int  # their MRR at the end of the cohort month
    active: list[int]  # members with MRR > 0 at the end of cohort + n, n = 0 … last − cohort
    active_mrr: list[int]  # the starting MRR of those members
    retention: list[Decimal | None]  # active ÷ size (logos) or active_mrr ÷ starting_mrr (revenue)

    def as_row(self) -> dict[str, Any]:
        return {"cohort": str(self.cohort), "size": self.size, "starting_mrr": self.starting_mrr,
                "retention": list(self.retention)}


@dataclass(frozen=True)
class CohortMatrix:
    first: Month
    last: Month
    by: str  # 'logos' or 'revenue'
    currency: str
    cohorts: list[Cohort]
    warnings: list[str] = field(default_factory=list)


_COHORT_SQL = """
WITH {cte},
firsts AS (
    SELECT DISTINCT ON (tenant_id) tenant_id, month AS cohort, cur AS starting
    FROM points
    WHERE cur > 0
    ORDER BY tenant_id, month
),
members AS (
    SELECT * FROM firsts WHERE cohort >= CAST(:first AS date)
)
SELECT m.cohort, p.month,
       sum(CASE WHEN p.cur > 0 THEN 1 ELSE -1 END) AS d_logos,
       sum(CASE WHEN p.cur > 0 THEN m.starting ELSE -m.starting END) AS d_mrr
FROM points p
JOIN members m ON m.tenant_id = p.tenant_id
WHERE p.month >= m.cohort AND (p.cur > 0) <> (p.prev > 0)
GROUP BY m.cohort, p.month
ORDER BY m.cohort, p.month
"""

COHORT_BY = ("logos", "revenue")


def cohort_matrix(conn: Connection | Engine, first: Month, last: Month, by: str, currency: str) -> CohortMatrix:
    """The retention of each monthly cohort from ``first`` to ``last``, observed up to the end of ``last``."""
    months = month_range(first, last)
    if by not in COHORT_BY:
        raise UsageError(f"--by must be one of {', '.join(COHORT_BY)}, got {by!r}")
    currency = check_currency(currency)
    params = {**base_params(currency, last), "first": first.first_day}
    with connection(conn) as c:
        require_tables(c)
        rows = c.execute(readable(c, _COHORT_SQL.format(cte=points_cte())), params).all()
        warnings = [w for _, w in left_out_warnings(c, first, last, currency)]
    steps: dict[Month, dict[Month, tuple[int, int]]] = defaultdict(dict)
    for cohort_day, month_day, d_logos, d_mrr in rows:
        steps[Month.of(cohort_day)][Month.of(month_day)] = (int(d_logos), int(d_mrr))
    cohorts = []
    for c_month in months:
        own = steps.get(c_month, {})
        size, starting = own.get(c_month, (0, 0))
        active, active_mrr, retention = [], [], []
        logos = mrr = 0
        for age in range(last - c_month + 1):
            d_logos, d_mrr = own.get(c_month.add(age), (0, 0))
            logos, mrr = logos + d_logos, mrr + d_mrr
            active.append(logos)
            active_mrr.append(mrr)
            retention.append(ratio(logos, size) if by == "logos" else ratio(mrr, starting))
        cohorts.append(Cohort(c_month, size, starting, active, active_mrr, retention))
    return CohortMatrix(first, last, by, currency, cohorts, list(dict.fromkeys(warnings)))
