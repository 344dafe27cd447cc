"""MRR and its movements (DESIGN.md §3), computed by Postgres in one set-based query.

Definitions (the contract of ``pmfin report mrr|movements|churn``):

- A subscription or add-on row is *live at the end of month M* ⟺ ``started_at < M.end`` and
  (``ended_at`` null or ``ended_at >= M.end``) and (``trial_ends_at`` null or ``trial_ends_at < M.end``),
  where ``M.end`` is the first instant of M+1: that is "live at the last instant of M" with
  DESIGN §3's ``started_at <= t < ended_at`` and "in trial while t < trial_ends_at".
  Status does not matter (past_due counts until the row ends).
- A row adds ``unit_price_cents × quantity ÷ months of its billing cycle`` (plans.billing_cycle /
  addons.billing_cycle: 'year' → ÷12, anything else → ÷1). The sum per tenant is exact and is
  rounded once, half-even, to the minor unit. (A tenant whose rows sum to less than zero counts 0.)
- Movements per tenant compare the end of M−1 (prev) with the end of M (cur): new, reactivation
  (prev = 0 and the tenant had MRR > 0 at an earlier month end, over all history), expansion,
  contraction, churn — so MRR(M) − MRR(M−1) = new + reactivation + expansion − contraction − churn.

How the query works (and why it is fast): the months at whose end a row is live form one run
``[m_from, m_stop)`` with ``m_from`` = month of ``greatest(started_at, trial_ends_at)`` and
``m_stop`` = month of ``ended_at``. A row therefore contributes a step up at ``m_from`` and a step
down at ``m_stop``; a tenant's exact MRR is the running sum of its steps (a window partitioned by
``tenant_id``), and it only changes at months where one of its rows starts or stops. Everything
is kept in *twelfths of a minor unit* (monthly rows × 12, annual rows × 1), i.e. integers, so the
sum is exact and the half-even rounding is integer arithmetic. Totals per month are cumulative
sums of the per-tenant changes. The work is proportional to the number of rows, not to
tenants × months, and every step is grouped or partitioned by ``tenant_id`` first, so it runs
unchanged on a sharded Postgres (Citus, NileDB).

One month (``month_metrics``, ``month_series`` with first = last) takes a shorter path: each
tenant's exact MRR at the end of M−1 and of M is a filtered aggregate over only the rows live at
one of those instants, and only the tenants that start paying in M go through the history
engine above (to tell new from reactivation).

Currencies: rows in another currency than the reporting one are converted month by month with
``pmfin_fx_rates`` (the rate of month M converts the amount live at the end of M; a direct
``currency→reporting`` rate wins over the inverse of ``reporting→currency``). Such rows become one
step up and one step down per live month at that month's rate, so FX moves show up as expansion
or contraction of those tenants. Without a rate for a month, the row's amount is left out of that
month and a warning says how much was left out, per currency.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.db.migrate import require_contract
from pmfin.db.own import readable
from pmfin.errors import UsageError
from pmfin.money import THREE_DECIMAL, ZERO_DECIMAL, format_money, is_currency_code, round_minor
from pmfin.months import Month, month_range

MRR_TABLES = ("plans", "addons", "subscriptions", "subscription_addons")

# ---------------------------------------------------------------------------------------------
# SQL building blocks


def half_even_twelfths(x: str) -> str:
    """SQL: ``x`` twelfths of a minor unit → whole minor units, rounded half to even, exactly.

    Postgres' ``round(numeric)`` rounds half away from zero; this uses integer division instead:
    q = ⌊|x| ÷ 12⌋, r = |x| − 12q; r > 6 rounds up, r < 6 down, r = 6 (a tie) to the even q.
    """
    a = f"abs({x})"
    q = f"div({a}, 12)"
    r = f"({a} - 12 * {q})"
    return (
        f"(sign({x}) * ({q} + CASE WHEN {r} > 6 THEN 1 WHEN {r} < 6 THEN 0 ELSE mod({q}, 2) END))::bigint"
    )


def _exponent_sql(col: str) -> str:
    return f"CASE WHEN {col} = ANY(:zero_dec) THEN 0 WHEN {col} = ANY(:three_dec) THEN 3 ELSE 2 END"


_POW10 = "CASE {d} WHEN 0 THEN 1 WHEN 1 THEN 10 WHEN 2 THEN 100 WHEN 3 THEN 1000 " \
         "WHEN -1 THEN 0.1 WHEN -2 THEN 0.01 WHEN -3 THEN 0.001 END"


def _level_sql(i: str, f: str) -> str:
    """SQL: a tenant's MRR in minor units (≥ 0) from its exact amount in twelfths: ``i`` (bigint, the
    rows in the reporting currency) plus ``f`` (numeric, converted rows; null when there are none).

    Half-even rounding of ``x ÷ 12`` for x > 0, in integer arithmetic on the common all-bigint path
    (numeric only when converted amounts are present); a tenant at or below zero counts 0.
    """
    i, f = f"({i})", f"({f})"
    x = f"(coalesce({i}, 0) + {f})"
    q = f"div({x}, 12)"
    r = f"({x} - 12 * {q})"
    return (
        f"CASE WHEN {f} IS NULL THEN "
        f"CASE WHEN coalesce({i}, 0) <= 0 THEN 0 ELSE {i} / 12 + CASE WHEN {i} % 12 > 6 THEN 1 "
        f"WHEN {i} % 12 < 6 THEN 0 ELSE ({i} / 12) % 2 END END "
        f"ELSE CASE WHEN {x} <= 0 THEN 0 ELSE ({q} + CASE WHEN {r} > 6 THEN 1 WHEN {r} < 6 THEN 0 "
        f"ELSE mod({q}, 2) END)::bigint END END"
    )


def rates_cte() -> str:
    """The ``rates`` CTE: per (month, currency) the conversion into ``:rep`` as amount × mul ÷ div."""
    rep_exp = _exponent_sql(":rep")
    cur_exp = _exponent_sql("currency")
    factor = _POW10.format(d=f"(({rep_exp}) - ({cur_exp}))")
    return f"""
    rates AS (
        -- amount × mul ÷ div; an inverse rate divides (1 ÷ rate would not be exact)
        SELECT DISTINCT ON (month, currency) month, currency, mul * ({factor}) AS mul, div
        FROM (
            SELECT month, lower(base_currency::text) AS currency, rate AS mul, 1::numeric AS div, 1 AS pref
            FROM pmfin_fx_rates WHERE lower(quote_currency::text) = :rep
            UNION ALL
            SELECT month, lower(quote_currency::text), 1::numeric, rate, 2
            FROM pmfin_fx_rates WHERE lower(base_currency::text) = :rep
        ) r
        ORDER BY month, currency, pref
    )"""


def points_cte(*, last: str = ":last", tenants: str | None = None, rates: bool = True) -> str:
    """The CTE chain ending in ``points``: one row per tenant and month at which its MRR may change.

    Parameters: ``:rep`` (reporting currency, lower case), ``:last`` (date, first day of the last
    month of interest; later changes are ignored), ``:zero_dec``/``:three_dec`` (currency lists).

    ``points(tenant_id, month, cur, prev, had_mrr)``: ``cur`` is the tenant's MRR (minor units of
    ``:rep``) at the end of ``month`` and of every month up to the tenant's next point (up to
    ``:last`` when there is none), ``prev`` its MRR at the end of the month before, ``had_mrr``
    whether it had MRR > 0 at the end of any earlier month. Months between points change nothing.
    Also defined: ``spans`` (one row per contract row that is live at some month end ≤ :last),
    ``rates`` and ``foreign_months`` (for the left-out warnings).

    Amounts in the reporting currency stay ``bigint`` twelfths of a minor unit all the way (the
    steps ``ii``, running sum ``si``); converted amounts are ``numeric`` in separate columns
    (``fi``, ``sf``) that are null for a tenant without any, so the common case never touches
    numeric arithmetic. One sort by (tenant_id, month) feeds two window passes: the running sum
    (``prev`` is the running sum before this month's steps, so it needs no ``lag``) and a running
    count of months with MRR > 0 (for ``had_mrr``).

    ``last`` names the parameter used as ``:last``; ``tenants``, a CTE of ``tenant_id`` defined
    before this chain, restricts it to those tenants; ``rates=False`` leaves out the ``rates`` CTE
    (when the caller defines it earlier).
    """
    where_s = f"WHERE s.tenant_id IN (SELECT tenant_id FROM {tenants})" if tenants else ""
    where_a = f"WHERE a.tenant_id IN (SELECT tenant_id FROM {tenants})" if tenants else ""
    rates_sql = rates_cte() + "," if rates else ""
    return f"""{rates_sql}
    rows_ AS (
        SELECT s.tenant_id,
               lower(s.currency::text) AS currency,
               s.unit_price_cents::bigint * s.quantity
                   * CASE WHEN p.billing_cycle = 'year' THEN 1 ELSE 12 END AS twelfths,
               date_trunc('month', greatest(s.started_at, s.trial_ends_at) AT TIME ZONE 'UTC')::date AS m_from,
               date_trunc('month', s.ended_at AT TIME ZONE 'UTC')::date AS m_stop
        FROM subscriptions s JOIN plans p ON p.id = s.plan_id {where_s}
        UNION ALL
        SELECT a.tenant_id,
               lower(a.currency::text),
               a.unit_price_cents::bigint * a.quantity
                   * CASE WHEN ad.billing_cycle = 'year' THEN 1 ELSE 12 END,
               date_trunc('month', a.started_at AT TIME ZONE 'UTC')::date,
               date_trunc('month', a.ended_at AT TIME ZONE 'UTC')::date
        FROM subscription_addons a JOIN addons ad ON ad.id = a.addon_id {where_a}
    ),
    spans AS (
        SELECT * FROM rows_
        WHERE m_from <= CAST({last} AS date) AND (m_stop IS NULL OR m_stop > m_from) AND twelfths <> 0
    ),
    foreign_months AS (
        SELECT sp.tenant_id, sp.currency, sp.twelfths, gs.month::date AS month,
               sp.twelfths::numeric * fx.mul / fx.div AS value  -- null: no rate
        FROM spans sp
        CROSS JOIN LATERAL generate_series(
            sp.m_from,
            least(coalesce((sp.m_stop - interval '1 month')::date, CAST({last} AS date)), CAST({last} AS date)),
            interval '1 month') AS gs(month)
        LEFT JOIN rates fx ON fx.currency = sp.currency AND fx.month = gs.month::date
        WHERE sp.currency <> :rep
    ),
    steps AS (
        SELECT sp.tenant_id, v.month, v.delta AS di, NULL::numeric AS df
        FROM spans sp CROSS JOIN LATERAL (VALUES (sp.m_from, sp.twelfths), (sp.m_stop, -sp.twelfths)) AS v(month, delta)
        WHERE sp.currency = :rep AND v.month <= CAST({last} AS date)
        UNION ALL
        SELECT tenant_id, month, NULL::bigint, coalesce(value, 0) FROM foreign_months
        UNION ALL
        SELECT tenant_id, (month + interval '1 month')::date, NULL::bigint, -coalesce(value, 0)
        FROM foreign_months WHERE month < CAST({last} AS date)
    ),
    tenant_steps AS (
        SELECT tenant_id, month, sum(di)::bigint AS di, sum(df) AS df FROM steps GROUP BY tenant_id, month
    ),
    levels AS (
        SELECT tenant_id, month, {_level_sql("si", "sf")} AS cur, {_level_sql("si - coalesce(di, 0)", "sf - coalesce(df, 0)")} AS prev
        FROM (
            SELECT tenant_id, month, di, df,
                   (sum(di) OVER w)::bigint AS si, sum(df) OVER w AS sf
            FROM tenant_steps
            WINDOW w AS (PARTITION BY tenant_id ORDER BY month ROWS UNBOUNDED PRECEDING)
        ) e
    ),
    points AS (
        SELECT tenant_id, month, cur, prev,
               count(*) FILTER (WHERE cur > 0) OVER (PARTITION BY tenant_id ORDER BY month ROWS UNBOUNDED PRECEDING)
                   > (cur > 0)::int AS had_mrr
        FROM levels
    )"""


def base_params(currency: str, last: Month) -> dict[str, Any]:
    return {
        "rep": currency.lower(),
        "last": last.first_day,
        "zero_dec": sorted(ZERO_DECIMAL),
        "three_dec": sorted(THREE_DECIMAL),
    }


@contextlib.contextmanager
def connection(conn: Connection | Engine) -> Iterator[Connection]:
    """Use a Connection as is; open (and close) one on an Engine."""
    if isinstance(conn, Engine):
        with conn.connect() as c:
            yield c
    else:
        yield conn


def check_currency(currency: str, flag: str = "--currency") -> str:
    c = (currency or "").strip().lower()
    if not is_currency_code(c):
        raise UsageError(f"{flag} must be a 3-letter ISO currency code, got {currency!r}")
    return c


def require_tables(conn: Connection) -> None:
    require_contract(conn, MRR_TABLES)


# ---------------------------------------------------------------------------------------------
# Month metrics


@dataclass(frozen=True)
class MonthMetrics:
    """MRR and its movements for one month, in minor units of ``currency`` (DESIGN.md §3)."""

    month: Month
    currency: str
    mrr: int
    arr: int
    customers: int
    arpu: int  # MRR ÷ customers, rounded half-even; 0 when there are no customers
    new: int
    expansion: int
    contraction: int
    churn: int
    reactivation: int
    net_new: int  # new + reactivation + expansion − contraction − churn = MRR − previous MRR
    mom_growth: Decimal | None  # (MRR − previous MRR) ÷ previous MRR; None when previous MRR is 0
    prev_mrr: int = 0
    prev_customers: int = 0
    new_customers: int = 0
    reactivated_customers: int = 0
    expansion_customers: int = 0
    contraction_customers: int = 0
    churned_customers: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        """A plain dict (``month`` as ``YYYY-MM``) for rendering."""
        row = {k: getattr(self, k) for k in self.__dataclass_fields__}
        row["month"] = str(self.month)
        return row


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator ÷ denominator as a Decimal (28 significant digits); None when the denominator is 0."""
    if not denominator:
        return None
    return Decimal(numerator) / Decimal(denominator)


def movement_rules(had: str) -> dict[str, tuple[str, str]]:
    """DESIGN §3's movement rules, defined once: name → (amount, condition), in SQL over a
    tenant's rounded ``prev`` and ``cur`` MRR. ``had`` is an SQL predicate: the tenant had
    MRR > 0 at an earlier month end (reactivation, not new)."""
    return {
        "new": ("cur", f"prev = 0 AND cur > 0 AND NOT ({had})"),
        "reactivation": ("cur", f"prev = 0 AND cur > 0 AND ({had})"),
        "expansion": ("cur - prev", "cur > prev AND prev > 0"),
        "contraction": ("prev - cur", "prev > cur AND cur > 0"),
        "churn": ("prev", "prev > 0 AND cur = 0"),
    }


def movement_aggregates(had: str) -> str:
    """The amount and the count of each movement, as aggregate columns."""
    return ",\n".join(
        f"           coalesce(sum({amount}) FILTER (WHERE {cond}), 0) AS {name},\n"
        f"           count(*) FILTER (WHERE {cond}) AS {name}_n"
        for name, (amount, cond) in movement_rules(had).items()
    )


def movement_case(had: str) -> str:
    """A tenant's movement and its amount, as two columns ``movement`` and ``amount``."""
    rules = movement_rules(had).items()
    kind = " ".join(f"WHEN {cond} THEN '{name}'" for name, (_, cond) in rules)
    amount = " ".join(f"WHEN {cond} THEN {amt}" for _, (amt, cond) in rules)
    return f"CASE {kind} END AS movement, CASE {amount} END AS amount"


_SERIES_SQL = """
WITH {cte},
by_month AS (
    SELECT month,
           sum(cur - prev) AS net,
           sum((cur > 0)::int - (prev > 0)::int) AS d_customers,
{movements}
    FROM points
    GROUP BY month
),
before_first AS (  -- MRR and customers at the end of :first − 1: the sum of every change before
    SELECT coalesce(sum(net), 0) AS mrr, coalesce(sum(d_customers), 0) AS customers
    FROM by_month WHERE month < CAST(:first AS date)
)
SELECT s.month::date AS month,
       f.mrr + sum(coalesce(r.net, 0)) OVER w AS mrr,
       f.customers + sum(coalesce(r.d_customers, 0)) OVER w AS customers,
       coalesce(r.net, 0) AS net, coalesce(r.d_customers, 0) AS d_customers,
       coalesce(r.new, 0) AS new, coalesce(r.new_n, 0) AS new_n,
       coalesce(r.reactivation, 0) AS reactivation, coalesce(r.reactivation_n, 0) AS reactivation_n,
       coalesce(r.expansion, 0) AS expansion, coalesce(r.expansion_n, 0) AS expansion_n,
       coalesce(r.contraction, 0) AS contraction, coalesce(r.contraction_n, 0) AS contraction_n,
       coalesce(r.churn, 0) AS churn, coalesce(r.churn_n, 0) AS churn_n
FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 month') AS s(month)
CROSS JOIN before_first f
LEFT JOIN by_month r ON r.month = s.month::date
WINDOW w AS (ORDER BY s.month ROWS UNBOUNDED PRECEDING)
ORDER BY 1
"""

# One month M: no history windows. Each tenant's exact MRR at the end of M−1 (prev) and of M (cur)
# is a filtered aggregate over just the rows live at one of those two instants (plain timestamp
# comparisons, no month arithmetic per row), grouped by tenant_id. Whether a tenant with prev = 0
# and cur > 0 had MRR > 0 at an earlier month end (reactivation, not new) is decided exactly by the
# full-history engine (``points_cte``) run over those few tenants only, up to the end of M−2.
_MONTH_SQL = """
WITH {rates},
live AS (
    SELECT s.tenant_id, lower(s.currency::text) AS currency,
           s.unit_price_cents::bigint * s.quantity * CASE WHEN p.billing_cycle = 'year' THEN 1 ELSE 12 END AS twelfths,
           greatest(s.started_at, s.trial_ends_at) AS live_from, s.ended_at
    FROM subscriptions s JOIN plans p ON p.id = s.plan_id
    WHERE greatest(s.started_at, s.trial_ends_at) < :b1 AND (s.ended_at IS NULL OR s.ended_at >= :b0)
    UNION ALL
    SELECT a.tenant_id, lower(a.currency::text),
           a.unit_price_cents::bigint * a.quantity * CASE WHEN ad.billing_cycle = 'year' THEN 1 ELSE 12 END,
           a.started_at, a.ended_at
    FROM subscription_addons a JOIN addons ad ON ad.id = a.addon_id
    WHERE a.started_at < :b1 AND (a.ended_at IS NULL OR a.ended_at >= :b0)
),
tenant_mrr AS (
    SELECT tenant_id, {prev} AS prev, {cur} AS cur
    FROM (
        SELECT l.tenant_id,
               (sum(l.twelfths) FILTER (WHERE l.currency = :rep AND l.live_from < :b0))::bigint AS pi,
               sum(l.twelfths::numeric * f0.mul / f0.div)
                   FILTER (WHERE l.currency <> :rep AND l.live_from < :b0) AS pf,
               (sum(l.twelfths) FILTER (WHERE l.currency = :rep AND (l.ended_at IS NULL OR l.ended_at >= :b1)))::bigint AS ci,
               sum(l.twelfths::numeric * f1.mul / f1.div)
                   FILTER (WHERE l.currency <> :rep AND (l.ended_at IS NULL OR l.ended_at >= :b1)) AS cf
        FROM live l
        LEFT JOIN rates f0 ON f0.currency = l.currency AND f0.month = CAST(:m0 AS date)
        LEFT JOIN rates f1 ON f1.currency = l.currency AND f1.month = CAST(:m1 AS date)
        GROUP BY l.tenant_id
    ) t
),
starters AS (
    SELECT tenant_id FROM tenant_mrr WHERE prev = 0 AND cur > 0
),
{points},
had AS (
    SELECT DISTINCT tenant_id FROM points WHERE cur > 0
),
agg AS (
    SELECT coalesce(sum(cur), 0) AS mrr,
           count(*) FILTER (WHERE cur > 0) AS customers,
           coalesce(sum(cur - prev), 0) AS net,
           count(*) FILTER (WHERE cur > 0) - count(*) FILTER (WHERE prev > 0) AS d_customers,
{movements}
    FROM tenant_mrr m LEFT JOIN had h USING (tenant_id)
)
SELECT CAST(:m1 AS date) AS month, agg.* FROM agg
"""


def _month_sql() -> str:
    return _MONTH_SQL.format(
        rates=rates_cte(),
        prev=_level_sql("pi", "pf"),
        cur=_level_sql("ci", "cf"),
        points=points_cte(last=":m_2", tenants="starters", rates=False),
        movements=movement_aggregates("h.tenant_id IS NOT NULL"),
    )


_ANY_FOREIGN_SQL = """
SELECT EXISTS (SELECT 1 FROM subscriptions WHERE lower(currency::text) <> :rep)
    OR EXISTS (SELECT 1 FROM subscription_addons WHERE lower(currency::text) <> :rep)
"""

_LEFT_OUT_SQL = """
WITH {cte}
SELECT month, currency, {rounded} AS amount
FROM (
    SELECT month, currency, sum(twelfths) AS twelfths
    FROM foreign_months
    WHERE value IS NULL AND month >= CAST(:warn_from AS date)
    GROUP BY month, currency
) t
ORDER BY currency, month
"""


def month_series(conn: Connection | Engine, first: Month, last: Month, currency: str) -> list[MonthMetrics]:
    """MRR, customers and movements for every month from ``first`` to ``last`` (one query).

    Warnings (amounts left out for want of an FX rate, at the end of ``first``−1 … ``last``) are
    attached to the metrics of the first month and also to each month they concern.
    """
    months = month_range(first, last)
    currency = check_currency(currency)
    params = {**base_params(currency, last), "first": first.first_day}
    with connection(conn) as c:
        require_tables(c)
        if first == last:
            m = first
            params.update(b0=m.start, b1=m.end, m0=m.prev().first_day, m1=m.first_day, m_2=m.add(-2).first_day)
            rows = c.execute(readable(c, _month_sql()), params).mappings().all()
        else:
            rows = c.execute(readable(c, _SERIES_SQL.format(cte=points_cte(), movements=movement_aggregates("had_mrr"))), params).mappings().all()
        left_out = left_out_warnings(c, first.prev(), last, currency)
    assert len(rows) == len(months)
    warned: dict[Month, list[tuple[int, str]]] = {}  # month → (position in left_out, warning)
    for i, (wm, w) in enumerate(left_out):
        warned.setdefault(wm, []).append((i, w))
    out: list[MonthMetrics] = []
    previous = first.prev()
    for m, r in zip(months, rows):
        mrr, customers = int(r["mrr"]), int(r["customers"])
        net = int(r["net"])
        prev_mrr, prev_customers = mrr - net, customers - int(r["d_customers"])
        own = [w for _, w in sorted(warned.get(previous, []) + warned.get(m, []))]
        previous = m
        out.append(
            MonthMetrics(
                month=m,
                currency=currency,
                mrr=mrr,
                arr=12 * mrr,
                customers=customers,
                arpu=round_minor(Decimal(mrr) / customers) if customers else 0,
                new=int(r["new"]),
                expansion=int(r["expansion"]),
                contraction=int(r["contraction"]),
                churn=int(r["churn"]),
                reactivation=int(r["reactivation"]),
                net_new=net,
                mom_growth=ratio(net, prev_mrr) if prev_mrr > 0 else None,
                prev_mrr=prev_mrr,
                prev_customers=prev_customers,
                new_customers=int(r["new_n"]),
                reactivated_customers=int(r["reactivation_n"]),
                expansion_customers=int(r["expansion_n"]),
                contraction_customers=int(r["contraction_n"]),
                churned_customers=int(r["churn_n"]),
                warnings=list(dict.fromkeys(own)),
            )
        )
    return out


def month_metrics(conn: Connection | Engine, month: Month, currency: str) -> MonthMetrics:
    """MRR, ARR, customers, ARPU, the movements and MoM growth of one month (DESIGN.md §3)."""
    return month_series(conn, month, month, currency)[0]


def left_out_warnings(conn: Connection, first: Month, last: Month, currency: str) -> list[tuple[Month, str]]:
    """(month, warning) for each month end in ``first``…``last`` where some MRR had no FX rate."""
    params = {**base_params(currency, last), "warn_from": first.first_day}
    if not conn.execute(text(_ANY_FOREIGN_SQL), params).scalar_one():
        return []  # the common case, answered by a scan that stops early
    sql = _LEFT_OUT_SQL.format(cte=points_cte(), rounded=half_even_twelfths("twelfths"))
    rows = conn.execute(readable(conn, sql), params).all()
    out = []
    for month_day, cur, amount in rows:
        m = Month.of(month_day)
        out.append(
            (
                m,
                f"no FX rate {cur.upper()}→{currency.upper()} for {m}: left out "
                f"{format_money(int(amount), cur)} of MRR at the end of {m} "
                "(import rates with `pmfin fx import`)",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# MRR of some tenants


_TENANTS_MRR_SQL = """
WITH wanted AS (SELECT DISTINCT unnest(CAST(:tenants AS uuid[])) AS tenant_id),
{cte}
SELECT DISTINCT ON (tenant_id) tenant_id, cur
FROM points
WHERE month <= CAST(:last AS date)
ORDER BY tenant_id, month DESC
"""


def tenants_mrr(conn: Connection | Engine, tenant_ids: list[str] | list[UUID], month: Month, currency: str) -> dict[str, int]:
    """Each tenant's MRR at the end of ``month`` (DESIGN.md §3), for the given tenants only — the
    same engine as ``report mrr`` (``points``), restricted to them. Tenants without MRR are absent."""
    currency = check_currency(currency)
    if not tenant_ids:
        return {}
    with connection(conn) as c:
        require_tables(c)
        sql = _TENANTS_MRR_SQL.format(cte=points_cte(tenants="wanted"))
        rows = c.execute(readable(c, sql), {**base_params(currency, month), "tenants": [str(t) for t in tenant_ids]}).all()
    return {str(t): int(cur) for t, cur in rows if cur}


# Per-tenant movements and churn


@dataclass(frozen=True)
class TenantMovement:
    tenant_id: UUID
    name: str | None
    prev: int  # MRR at the end of the month before
    cur: int  # MRR at the end of the month
    movement: str  # new, reactivation, expansion, contraction, churn
    amount: int  # the movement's amount (positive), as in MonthMetrics
    currency: str


MOVEMENT_ORDER = ("new", "reactivation", "expansion", "contraction", "churn")

_TENANTS_SQL = """
WITH {cte}
SELECT p.tenant_id, t.name, p.prev, p.cur,
       {movement}
FROM points p
LEFT JOIN tenants t ON t.id = p.tenant_id
WHERE p.month = CAST(:last AS date) AND p.cur <> p.prev
ORDER BY movement, abs(p.cur - p.prev) DESC, t.name, p.tenant_id
"""


def tenant_movements(conn: Connection | Engine, month: Month, currency: str) -> list[TenantMovement]:
    """Every tenant whose MRR changed from the end of M−1 to the end of M, with its movement type."""
    currency = check_currency(currency)
    with connection(conn) as c:
        require_tables(c)
        require_contract(c, ("tenants",))
        sql = _TENANTS_SQL.format(cte=points_cte(), movement=movement_case("p.had_mrr"))
        rows = c.execute(readable(c, sql), base_params(currency, month)).all()
    out = [
        TenantMovement(tid, name, int(prev), int(cur), movement, int(amount), currency)
        for tid, name, prev, cur, movement, amount in rows
    ]
    out.sort(key=lambda t: (MOVEMENT_ORDER.index(t.movement), -t.amount, t.name or "", str(t.tenant_id)))
    return out


@dataclass(frozen=True)
class ChurnMetrics:
    """Churn for one month (DESIGN.md §3); rates are None when their denominator is 0."""

    month: Month
    currency: str
    customers_start: int  # customers at the end of M−1
    mrr_start: int  # MRR at the end of M−1
    churned_customers: int
    churned_mrr: int
    contraction: int
    contraction_customers: int
    expansion: int
    logo_churn_rate: Decimal | None  # churned customers ÷ customers at the end of M−1
    gross_mrr_churn_rate: Decimal | None  # (churn + contraction) ÷ MRR(M−1)
    net_mrr_churn_rate: Decimal | None  # (churn + contraction − expansion) ÷ MRR(M−1)
    warnings: list[str] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        row = {k: getattr(self, k) for k in self.__dataclass_fields__}
        row["month"] = str(self.month)
        return row


def churn_from(m: MonthMetrics) -> ChurnMetrics:
    """The churn figures of a month, from its MonthMetrics (a pure function)."""
    return ChurnMetrics(
        month=m.month,
        currency=m.currency,
        customers_start=m.prev_customers,
        mrr_start=m.prev_mrr,
        churned_customers=m.churned_customers,
        churned_mrr=m.churn,
        contraction=m.contraction,
        contraction_customers=m.contraction_customers,
        expansion=m.expansion,
        logo_churn_rate=ratio(m.churned_customers, m.prev_customers),
        gross_mrr_churn_rate=ratio(m.churn + m.contraction, m.prev_mrr),
        net_mrr_churn_rate=ratio(m.churn + m.contraction - m.expansion, m.prev_mrr),
        warnings=list(m.warnings),
    )


def churn_metrics(conn: Connection | Engine, month: Month, currency: str) -> ChurnMetrics:
    """Logo churn, gross and net MRR churn of ``month``."""
    return churn_from(month_metrics(conn, month, currency))


def churn_series(conn: Connection | Engine, first: Month, last: Month, currency: str) -> list[ChurnMetrics]:
    """Churn for every month from ``first`` to ``last`` (one query), e.g. for a trailing average."""
    return [churn_from(m) for m in month_series(conn, first, last, currency)]


def default_month(today: dt.date | None = None) -> Month:
    """The last complete month (UTC)."""
    return Month.last_complete(today)


__all__ = [
    "ChurnMetrics",
    "MonthMetrics",
    "TenantMovement",
    "churn_from",
    "churn_metrics",
    "churn_series",
    "default_month",
    "month_metrics",
    "month_series",
    "ratio",
    "tenant_movements",
]
