"""The plan catalog (``plans``, ``addons``), a tenant's current subscription, and what a plan change
would mean for it — ``pmfin plans list|compare``; ``pmfin subscription change`` refuses what
``compare`` calls a blocker.

- **The catalog as a feature matrix**: each plan's tier, billing cycle, price per cycle and per
  month, emails per month, IPs, seats, and premium support. The data contract has no per-plan
  premium-support flag: premium support is the ``premium_support`` add-on, shown with its price
  where one exists in the plan's currency.
- **Current subscription** of a tenant at ``t``: its ``subscriptions`` row with ``started_at <= t``
  and ``ended_at`` null or after ``t`` (the one that started last, if several).
- **Comparison**: the current row (its own price, discounts included) beside the new plan at list
  price for the same quantity; the monthly equivalent of each (price × quantity ÷ months of the
  cycle, rounded once, half to even); **losses** = every limit that goes down and every usage of
  this month above a new limit; **blockers** = seats or IPs in use now above the new plan's limits
  (a downgrade below current usage) — ``subscription change`` refuses those unless ``--force``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from fractions import Fraction

from sqlalchemy import text
from sqlalchemy.engine import Connection

from pmfin.db.migrate import require_contract
from pmfin.errors import UsageError
from pmfin.metrics.usage import TenantUsage, one_tenant
from pmfin.money import format_money
from pmfin.months import Month

TIERS = ("freemium", "professional", "enterprise")
PREMIUM_SUPPORT = "premium_support"
_PLAN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def cycle_months(cycle: str | None) -> int:
    return 12 if (cycle or "month") == "year" else 1


def per_month(amount: int, cycle: str | None) -> int:
    """The monthly equivalent of an amount per billing cycle, rounded once, half to even."""
    return round(Fraction(amount, cycle_months(cycle)))  # Fraction rounds half to even


def parse_plan_id(value: str | None, flag: str = "--to") -> str:
    v = (value or "").strip()
    if not v or len(v) > 100 or not set(v) <= _PLAN_ID_CHARS:
        raise UsageError(f"{flag} must be a plan id such as professional_annual (see `pmfin plans list`), got {value!r}")
    return v


@dataclass(frozen=True)
class Plan:
    id: str
    name: str | None
    tier: str | None
    billing_cycle: str
    price: int  # per billing cycle, minor units
    currency: str
    monthly_price: int  # the monthly equivalent
    email_limit: int | None
    ip_limit: int | None
    seat_limit: int | None
    premium_support: str | None  # 'add-on' when the premium_support add-on exists in this currency
    premium_support_price: int | None
    premium_support_cycle: str | None
    stripe_price_id: str | None
    active: bool


@dataclass(frozen=True)
class Addon:
    id: str
    name: str | None
    billing_cycle: str
    price: int
    currency: str
    monthly_price: int
    stripe_price_id: str | None


@dataclass(frozen=True)
class Catalog:
    plans: list[Plan]
    addons: list[Addon]


_PLANS = """
SELECT p.id, p.name, p.tier, p.billing_cycle, p.price_cents, lower(p.currency::text) AS currency, p.email_limit,
       p.ip_limit, p.seat_limit, p.stripe_price_id, p.active,
       a.price_cents AS support_price, a.billing_cycle AS support_cycle
FROM plans p
LEFT JOIN addons a ON a.id = :support AND lower(a.currency::text) = lower(p.currency::text)
{where}
ORDER BY CASE p.tier WHEN 'freemium' THEN 0 WHEN 'professional' THEN 1 WHEN 'enterprise' THEN 2 ELSE 3 END,
         CASE p.billing_cycle WHEN 'month' THEN 0 ELSE 1 END, p.price_cents, p.id
"""


def _plan(r) -> Plan:
    return Plan(
        id=r.id, name=r.name, tier=r.tier, billing_cycle=r.billing_cycle, price=int(r.price_cents),
        currency=r.currency, monthly_price=per_month(int(r.price_cents), r.billing_cycle), email_limit=r.email_limit,
        ip_limit=r.ip_limit, seat_limit=r.seat_limit,
        premium_support="add-on" if r.support_price is not None else None,
        premium_support_price=int(r.support_price) if r.support_price is not None else None,
        premium_support_cycle=r.support_cycle, stripe_price_id=r.stripe_price_id, active=bool(r.active),
    )


def catalog(conn: Connection, *, include_inactive: bool = False) -> Catalog:
    """The plans (by tier, then monthly before annual, then price) and every add-on."""
    require_contract(conn, ("plans", "addons"))
    where = "" if include_inactive else "WHERE p.active"
    plans = [_plan(r) for r in conn.execute(text(_PLANS.format(where=where)), {"support": PREMIUM_SUPPORT})]
    addons = [
        Addon(r.id, r.name, r.billing_cycle, int(r.price_cents), r.currency, per_month(int(r.price_cents), r.billing_cycle),
              r.stripe_price_id)
        for r in conn.execute(text(
            "SELECT id, name, billing_cycle, price_cents, lower(currency::text) AS currency, stripe_price_id "
            "FROM addons ORDER BY billing_cycle, price_cents, id"))
    ]
    return Catalog(plans, addons)


def get_plan(conn: Connection, plan_id: str) -> Plan:
    """One plan, active or not; UsageError naming the plans there are."""
    require_contract(conn, ("plans", "addons"))
    row = conn.execute(text(_PLANS.format(where="WHERE p.id = :id")), {"support": PREMIUM_SUPPORT, "id": plan_id}).one_or_none()
    if row is None:
        known = [r[0] for r in conn.execute(text("SELECT id FROM plans WHERE active ORDER BY id"))]
        raise UsageError(f"no plan {plan_id!r}; the plans are: {', '.join(known) or 'none'} (see `pmfin plans list`)")
    return _plan(row)


@dataclass(frozen=True)
class CurrentSubscription:
    tenant_id: str
    tenant_name: str | None
    id: str  # the subscriptions row
    plan: Plan
    status: str | None
    quantity: int
    unit_price: int  # per cycle per unit, after discounts (the row's)
    price: int  # what the tenant pays per billing cycle for this row: unit price × quantity
    currency: str
    started_at: dt.datetime
    trial_ends_at: dt.datetime | None
    current_period_start: dt.datetime | None
    current_period_end: dt.datetime | None
    cancel_at_period_end: bool
    canceled_at: dt.datetime | None
    stripe_subscription_id: str | None


def tenant_name(conn: Connection, tenant_id: uuid.UUID | str) -> str | None:
    """The tenant's name; UsageError when no such tenant exists (or it was deleted)."""
    row = conn.execute(text("SELECT name, deleted FROM tenants WHERE id = :t"), {"t": str(tenant_id)}).one_or_none()
    if row is None:
        raise UsageError(f"no tenant with id {tenant_id}")
    if row.deleted is not None:
        raise UsageError(f"tenant {tenant_id} ({row.name}) was deleted on {row.deleted:%Y-%m-%d}")
    return row.name


_CURRENT = """
SELECT s.id, s.plan_id, s.status, s.quantity, s.unit_price_cents, lower(s.currency::text) AS currency, s.started_at,
       s.trial_ends_at, s.current_period_start, s.current_period_end, s.cancel_at_period_end, s.canceled_at,
       s.stripe_subscription_id
FROM subscriptions s
WHERE s.tenant_id = :t AND s.started_at <= :at AND (s.ended_at IS NULL OR s.ended_at > :at)
ORDER BY s.started_at DESC, s.id
LIMIT 1
"""


def current_subscription(conn: Connection, tenant_id: uuid.UUID | str, at: dt.datetime) -> CurrentSubscription | None:
    """The tenant's subscription row in force at ``at`` (None: none). UsageError for an unknown tenant."""
    require_contract(conn, ("tenants", "plans", "addons", "subscriptions"))
    name = tenant_name(conn, tenant_id)
    r = conn.execute(text(_CURRENT), {"t": str(tenant_id), "at": at}).one_or_none()
    if r is None:
        return None
    return CurrentSubscription(
        str(tenant_id), name, str(r.id), get_plan(conn, r.plan_id), r.status, int(r.quantity), int(r.unit_price_cents),
        int(r.unit_price_cents) * int(r.quantity), r.currency, r.started_at, r.trial_ends_at, r.current_period_start, r.current_period_end,
        bool(r.cancel_at_period_end), r.canceled_at, r.stripe_subscription_id,
    )


# -- comparison --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRow:
    attribute: str
    current: str
    new: str
    change: str


@dataclass(frozen=True)
class Comparison:
    tenant_id: str
    tenant_name: str | None
    current: CurrentSubscription
    to: Plan
    direction: str  # upgrade / downgrade / same price
    currency: str
    current_mrr: int  # the monthly equivalent of what the tenant pays now
    new_mrr: int  # of the new plan at list price, same quantity
    usage: TenantUsage | None
    rows: list[CompareRow] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


def _delta(old: int | None, new: int | None) -> str:
    if old is None or new is None:
        return "—" if old == new else ("no limit" if new is None else "limited")
    if new == old:
        return "same"
    return f"{new - old:+,}"


def _losses_and_blockers(cur: Plan, new: Plan, usage: TenantUsage | None) -> tuple[list[str], list[str]]:
    losses: list[str] = []
    blockers: list[str] = []
    for what, old_limit, new_limit, unit in (
        ("email limit", cur.email_limit, new.email_limit, " emails a month"),
        ("IP limit", cur.ip_limit, new.ip_limit, " IPs"),
        ("seat limit", cur.seat_limit, new.seat_limit, " seats"),
    ):
        if new_limit is not None and (old_limit is None or new_limit < old_limit):
            losses.append(f"{what} {_limit(old_limit)} → {new_limit:,}{unit}")
    if usage is not None:
        if new.email_limit is not None and usage.emails_sent > new.email_limit:
            losses.append(f"{usage.emails_sent:,} emails sent this month, the new plan allows {new.email_limit:,} a month")
        if new.seat_limit is not None and usage.seats > new.seat_limit:
            blockers.append(f"{usage.seats:,} seats in use, {new.id} allows {new.seat_limit:,}: "
                            f"remove {usage.seats - new.seat_limit:,} first")
        if new.ip_limit is not None and usage.ips > new.ip_limit:
            blockers.append(f"{usage.ips:,} IPs allocated, {new.id} allows {new.ip_limit:,}: "
                            f"release {usage.ips - new.ip_limit:,} first")
    return losses + blockers, blockers


def compare(conn: Connection, tenant_id: uuid.UUID | str, to_plan_id: str, *, now: dt.datetime | None = None) -> Comparison:
    """The tenant's current subscription beside plan ``to_plan_id``: limits, prices, usage, losses, blockers.

    UsageError: unknown tenant or plan, no current subscription, the same plan."""
    now = now or dt.datetime.now(dt.timezone.utc)
    cur = current_subscription(conn, tenant_id, now)
    if cur is None:
        raise UsageError(f"tenant {tenant_id} ({tenant_name(conn, tenant_id)}) has no current subscription to change")
    new = get_plan(conn, to_plan_id)
    if new.id == cur.plan.id:
        raise UsageError(f"tenant {tenant_id} ({cur.tenant_name}) is already on plan {new.id}")
    usage = one_tenant(conn, tenant_id, Month.of(now), now=now)
    q = cur.quantity
    current_mrr = per_month(cur.price, cur.plan.billing_cycle)
    new_mrr = per_month(new.price * q, new.billing_cycle)
    direction = "upgrade" if new_mrr > current_mrr else "downgrade" if new_mrr < current_mrr else "same price"

    money = format_money

    def price_text(unit: int, currency: str, cycle: str) -> str:
        return f"{money(unit * q, currency)} / {cycle}" + (f" ({q} × {money(unit, currency)})" if q > 1 else "")

    if cur.currency != new.currency:
        price_note = f"the new plan is priced in {new.currency.upper()}"
    elif cur.unit_price == cur.plan.price:
        price_note = "both at list price"
    else:
        price_note = f"the current row's price is not list ({money(cur.plan.price, cur.currency)} a unit)"
    rows = [
        CompareRow("plan", f"{cur.plan.name or cur.plan.id} ({cur.plan.id})", f"{new.name or new.id} ({new.id})", direction),
        CompareRow("tier", cur.plan.tier or "—", new.tier or "—", _tier_change(cur.plan.tier, new.tier)),
        CompareRow("billing cycle", cur.plan.billing_cycle, new.billing_cycle,
                   "same" if cur.plan.billing_cycle == new.billing_cycle else "the cycle restarts at the change"),
        CompareRow("price", price_text(cur.unit_price, cur.currency, cur.plan.billing_cycle),
                   price_text(new.price, new.currency, new.billing_cycle), price_note),
        CompareRow("per month", money(current_mrr, cur.currency), money(new_mrr, new.currency),
                   f"{'+' if new_mrr >= current_mrr else ''}{money(new_mrr - current_mrr, new.currency)}"
                   if cur.currency == new.currency else "other currency"),
        CompareRow("emails a month", _limit(cur.plan.email_limit), _limit(new.email_limit), _delta(cur.plan.email_limit, new.email_limit)),
        CompareRow("IPs", _limit(cur.plan.ip_limit), _limit(new.ip_limit), _delta(cur.plan.ip_limit, new.ip_limit)),
        CompareRow("seats", _limit(cur.plan.seat_limit), _limit(new.seat_limit), _delta(cur.plan.seat_limit, new.seat_limit)),
        CompareRow("premium support", support_text(cur.plan), support_text(new), "same" if support_text(cur.plan) == support_text(new) else "changes"),
    ]
    if usage is not None:
        for what, used, old_limit, new_limit in (
            ("emails sent this month", usage.emails_sent, cur.plan.email_limit, new.email_limit),
            ("seats in use", usage.seats, cur.plan.seat_limit, new.seat_limit),
            ("IPs allocated", usage.ips, cur.plan.ip_limit, new.ip_limit),
        ):
            rows.append(CompareRow(what, _of(used, old_limit), _of(used, new_limit), _fits(used, new_limit)))
    losses, blockers = _losses_and_blockers(cur.plan, new, usage)
    return Comparison(str(tenant_id), cur.tenant_name, cur, new, direction, cur.currency, current_mrr, new_mrr, usage,
                      rows, losses, blockers)


def _tier_change(old: str | None, new: str | None) -> str:
    if old == new:
        return "same"
    rank = {t: i for i, t in enumerate(TIERS)}
    if old in rank and new in rank:
        return "higher" if rank[new] > rank[old] else "lower"
    return "changes"


def support_text(plan: Plan) -> str:
    """Premium support of a plan, in words: the add-on and its price, or '—'."""
    if plan.premium_support_price is None:
        return "—"
    return f"add-on, {format_money(plan.premium_support_price, plan.currency)} / {plan.premium_support_cycle}"


def _of(used: int, limit: int | None) -> str:
    return f"{used:,}" if limit is None else f"{used:,} of {limit:,}"


def _fits(used: int, limit: int | None) -> str:
    if limit is None:
        return "no limit"
    if used > limit:
        return f"over the new limit by {used - limit:,}"
    return "within the new limit"
