"""Usage against plan limits, per tenant and month — one set-based query (``pmfin billing show``;
``pmfin usage report`` reuses ``tenant_usage``).

Definitions, for month M and the instant ``t`` = the end of M (the first instant of M+1), or now
while M is the current month:

- **Plan**: the plan of the tenant's subscription row in force at ``t``: ``started_at < t`` and
  (``ended_at`` null or ``ended_at >= t``) — a trial included (a trial gives the plan's limits;
  unlike MRR, DESIGN.md §3, which leaves trials out). If several rows are in force, the one that
  started last. No row: no plan and no limits.
- **Emails sent** = the tenant's ``emails`` with ``sent_at`` in M ([first instant of M, first of
  M+1), as DESIGN.md §2 defines the monthly volume; status does not matter), against
  ``plans.email_limit`` (emails per month).
- **Seats** = ``tenant_users`` rows that are seats at ``t``: ``created < t`` and (``deleted`` null
  or ``deleted >= t``), against ``plans.seat_limit``.
- **IPs** = ``ip_allocations`` allocated at ``t``: ``allocated_at < t`` and (``released_at`` null
  or ``released_at >= t``), against ``plans.ip_limit``; **average reputation** = the mean
  ``reputation_score`` of those IPs (rows without a score left out), exact, rounded once to two
  decimals, half to even; null without a scored IP.
- **Share used** = used ÷ limit, a ``Decimal`` (1 = the whole limit, above 1 over it); null when
  the limit is null or 0 (a freemium plan's 0 IPs: any IP is over it, ``over_limits`` says so).
- **Tenants**: every tenant not deleted before ``t`` (``deleted`` null or ``>= t``), or the ones
  asked for.

Each count is one aggregate grouped by ``tenant_id`` (no per-tenant query), joined to the tenants:
the same SQL runs on a sharded Postgres (Citus, NileDB), and its work is proportional to the rows
of the month, not to tenants × anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.migrate import require_contract
from pmfin.metrics.mrr import connection
from pmfin.months import Month

USAGE_TABLES = ("tenants", "plans", "subscriptions", "emails", "tenant_users", "ip_allocations")
TWO_PLACES = Decimal("0.01")


@dataclass(frozen=True)
class TenantUsage:
    tenant_id: str
    tenant_name: str | None
    month: Month
    as_of: dt.datetime  # the instant seats, IPs and the plan are counted at
    plan_id: str | None
    plan_name: str | None
    emails_sent: int
    email_limit: int | None
    email_share: Decimal | None
    seats: int
    seat_limit: int | None
    seat_share: Decimal | None
    ips: int
    ip_limit: int | None
    ip_share: Decimal | None
    avg_reputation: Decimal | None

    @property
    def over_limits(self) -> list[str]:
        """The limits the tenant is above (``emails``, ``seats``, ``ips``), a limit of 0 included."""
        pairs = (("emails", self.emails_sent, self.email_limit), ("seats", self.seats, self.seat_limit),
                 ("ips", self.ips, self.ip_limit))
        return [name for name, used, limit in pairs if limit is not None and used > limit]


def usage_instant(month: Month, now: dt.datetime | None = None) -> dt.datetime:
    """The instant seats, IPs and the plan are counted at: the end of ``month``, or ``now`` while
    it runs."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return min(month.end, now)


def share(used: int, limit: int | None) -> Decimal | None:
    """used ÷ limit; None when there is no limit to speak of (null or 0)."""
    if not limit:
        return None
    return Decimal(used) / Decimal(limit)


def mean_score(total: Decimal | None, count: int) -> Decimal | None:
    """An exact mean, rounded once to two decimals, half to even."""
    if not count or total is None:
        return None
    return (Decimal(total) / count).quantize(TWO_PLACES, rounding=ROUND_HALF_EVEN)


_USAGE_SQL = """
WITH subject AS (
    SELECT t.id AS tenant_id, t.name
    FROM tenants t
    WHERE (t.deleted IS NULL OR t.deleted >= :t) {only_tenants}
),
plan_row AS (
    SELECT DISTINCT ON (s.tenant_id) s.tenant_id, s.plan_id
    FROM subscriptions s
    WHERE s.started_at < :t AND (s.ended_at IS NULL OR s.ended_at >= :t) {only_s}
    ORDER BY s.tenant_id, s.started_at DESC, s.id
),
sent AS (
    SELECT e.tenant_id, count(*) AS n
    FROM emails e
    WHERE e.sent_at >= :start AND e.sent_at < :end {only_e}
    GROUP BY e.tenant_id
),
seats AS (
    SELECT u.tenant_id, count(*) AS n
    FROM tenant_users u
    WHERE u.created < :t AND (u.deleted IS NULL OR u.deleted >= :t) {only_u}
    GROUP BY u.tenant_id
),
ips AS (
    SELECT a.tenant_id, count(*) AS n, count(a.reputation_score) AS scored, sum(a.reputation_score) AS score_sum
    FROM ip_allocations a
    WHERE a.allocated_at < :t AND (a.released_at IS NULL OR a.released_at >= :t) {only_a}
    GROUP BY a.tenant_id
)
SELECT s.tenant_id, s.name, p.id AS plan_id, p.name AS plan_name, p.email_limit, p.seat_limit, p.ip_limit,
       coalesce(sent.n, 0) AS emails_sent, coalesce(seats.n, 0) AS seats, coalesce(ips.n, 0) AS ips,
       coalesce(ips.scored, 0) AS scored, ips.score_sum
FROM subject s
LEFT JOIN plan_row pr ON pr.tenant_id = s.tenant_id
LEFT JOIN plans p ON p.id = pr.plan_id
LEFT JOIN sent ON sent.tenant_id = s.tenant_id
LEFT JOIN seats ON seats.tenant_id = s.tenant_id
LEFT JOIN ips ON ips.tenant_id = s.tenant_id
ORDER BY s.tenant_id
"""


def _sql(filtered: bool) -> str:
    def only(alias: str, column: str = "tenant_id") -> str:
        return f"AND {alias}.{column} = ANY(CAST(:tenants AS uuid[]))" if filtered else ""

    return _USAGE_SQL.format(only_tenants=only("t", "id"), only_s=only("s"), only_e=only("e"), only_u=only("u"),
                             only_a=only("a"))


def tenant_usage(
    conn: Connection | Engine,
    month: Month,
    *,
    tenant_ids: Sequence[str | UUID] | None = None,
    now: dt.datetime | None = None,
) -> list[TenantUsage]:
    """Every tenant's usage of ``month`` against its plan's limits (the module's definitions),
    ordered by tenant id; only ``tenant_ids`` when given (unknown ids are simply absent)."""
    at = usage_instant(month, now)
    params = {"t": at, "start": month.start, "end": month.end,
              "tenants": [str(t) for t in tenant_ids] if tenant_ids is not None else None}
    with connection(conn) as c:
        require_contract(c, USAGE_TABLES)
        result = c.execute(text(_sql(tenant_ids is not None)), params).all()
    return [
        TenantUsage(
            tenant_id=str(r.tenant_id), tenant_name=r.name, month=month, as_of=at, plan_id=r.plan_id,
            plan_name=r.plan_name, emails_sent=int(r.emails_sent), email_limit=r.email_limit,
            email_share=share(int(r.emails_sent), r.email_limit), seats=int(r.seats), seat_limit=r.seat_limit,
            seat_share=share(int(r.seats), r.seat_limit), ips=int(r.ips), ip_limit=r.ip_limit,
            ip_share=share(int(r.ips), r.ip_limit), avg_reputation=mean_score(r.score_sum, int(r.scored)),
        )
        for r in result
    ]


def one_tenant(conn: Connection | Engine, tenant_id: str | UUID, month: Month, *,
               now: dt.datetime | None = None) -> TenantUsage | None:
    """``tenant_usage`` for one tenant (None for a tenant that does not exist or was deleted before)."""
    found = tenant_usage(conn, month, tenant_ids=[tenant_id], now=now)
    return found[0] if found else None
