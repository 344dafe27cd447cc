"""A small PenguinMails catalog in the database and at the Stripe fake, and tenants subscribed to it,
for the tenant-billing tests (``billing show``, ``plans``, ``subscription change``, ``payment-methods``).

    cat = Catalog(engine, stripe_fake)           # plans + add-ons in the DB, a Stripe price per paid plan
    t = cat.tenant("Acme", "professional", start="2026-01-01", cards=(VISA,), seats=2)
    t.id, t.customer, t.subscription, t.row     # tenant uuid, Stripe customer, Stripe subscription, subscriptions row id

Prices are the Stripe fake's own test amounts ($49 / $99 a month, $490 / $990 a year), so the
prorations worked by hand in tests/test_stripe_fake_subscriptions.py hold here too.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

UTC = dt.timezone.utc
VISA = "4242424242424242"
DECLINES = "4000000000000341"  # attaches, then every charge is declined

# id: (name, tier, cycle, price, email, ip, seat limits)
PLANS = {
    "freemium": ("Freemium", "freemium", "month", 0, 1_000, 0, 1),
    "professional": ("Professional", "professional", "month", 4_900, 50_000, 1, 5),
    "professional_annual": ("Professional (annual)", "professional", "year", 49_000, 50_000, 1, 5),
    "enterprise": ("Enterprise", "enterprise", "month", 9_900, 500_000, 5, 25),
    "enterprise_annual": ("Enterprise (annual)", "enterprise", "year", 99_000, 500_000, 5, 25),
}
ADDONS = {"dedicated_ip": ("Dedicated IP", "month", 4_900), "premium_support": ("Premium support", "year", 199_000)}


def instant(text_: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text_)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def unix(text_: str) -> int:
    return calendar.timegm(instant(text_).utctimetuple())


@dataclass
class Tenant:
    id: str
    name: str
    customer: dict | None
    subscription: dict | None
    row: str | None  # the subscriptions row in force

    @property
    def cards(self) -> list[str]:
        return self.customer["payment_methods"] if self.customer else []


class Catalog:
    def __init__(self, engine, stripe_fake=None):
        self.engine = engine
        self.fake = stripe_fake
        self.prices: dict[str, dict] = {}
        with engine.begin() as conn:
            for pid, (name, tier, cycle, price, emails, ips, seats) in PLANS.items():
                stripe_price = None
                if stripe_fake is not None and price:
                    product = name.split(" (")[0]
                    self.prices[pid] = stripe_fake.subscriptions.add_price(price, interval=cycle, nickname=name,
                                                                           product_name=product)
                    stripe_price = self.prices[pid]["id"]
                conn.execute(
                    text("INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency, email_limit, ip_limit, "
                         "seat_limit, stripe_price_id) VALUES (:id, :name, :tier, :cycle, :price, 'usd', :e, :i, :s, :sp)"),
                    {"id": pid, "name": name, "tier": tier, "cycle": cycle, "price": price, "e": emails, "i": ips,
                     "s": seats, "sp": stripe_price},
                )
            for aid, (name, cycle, price) in ADDONS.items():
                conn.execute(text("INSERT INTO addons (id, name, billing_cycle, price_cents, currency) "
                                  "VALUES (:id, :name, :cycle, :price, 'usd')"),
                             {"id": aid, "name": name, "cycle": cycle, "price": price})

    def tenant(self, name: str, plan: str | None = "professional", *, start: str = "2026-01-01", quantity: int = 1,
               cards: tuple = (VISA,), stripe: bool = True, subscribed: bool = True, seats: int = 1, ips: int = 0,
               email: str | None = None, unit_price: int | None = None, since: str = "2025-10-01") -> Tenant:
        """A tenant with ``seats`` seats and ``ips`` IPs; with ``stripe`` a Stripe customer (``cards``, the
        first the default) and, for a paid plan, a Stripe subscription whose current period starts at
        ``start``; a ``subscriptions`` row of ``plan`` from ``since`` (the Stripe subscription's id and
        period on it), so the tenant already paid at the end of the month before the period."""
        tid = str(uuid.uuid4())
        email = email or f"billing@{name.lower().replace(' ', '')}.example"
        customer = sub = None
        if stripe and self.fake is not None:
            customer = self.fake.billing.add_customer(email=email, name=name, cards=cards)
            if plan and subscribed and PLANS[plan][3]:
                sub = self.fake.subscriptions.add(customer["id"], self.prices[plan]["id"], quantity=quantity,
                                                  current_period_start=unix(start))
        row = None
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO tenants (id, name, created) VALUES (:id, :name, :created)"),
                         {"id": tid, "name": name, "created": instant(since)})
            conn.execute(text("INSERT INTO tenant_config (tenant_id, billing_email, country, stripe_customer_id) "
                              "VALUES (:id, :email, 'US', :customer)"),
                         {"id": tid, "email": email, "customer": customer["id"] if customer else None})
            if plan:
                row = str(uuid.uuid4())
                item = sub["items"]["data"][0] if sub else None
                conn.execute(
                    text("INSERT INTO subscriptions (tenant_id, id, plan_id, status, quantity, unit_price_cents, currency, "
                         "started_at, current_period_start, current_period_end, stripe_subscription_id) "
                         "VALUES (:t, :id, :plan, 'active', :q, :price, 'usd', :start, :ps, :pe, :sub)"),
                    {"t": tid, "id": row, "plan": plan, "q": quantity,
                     "price": PLANS[plan][3] if unit_price is None else unit_price, "start": instant(since),
                     "ps": dt.datetime.fromtimestamp(item["current_period_start"], UTC) if item else None,
                     "pe": dt.datetime.fromtimestamp(item["current_period_end"], UTC) if item else None,
                     "sub": sub["id"] if sub else None},
                )
            for _ in range(seats):
                conn.execute(text("INSERT INTO tenant_users (tenant_id, user_id, email, created) VALUES (:t, :u, :e, :c)"),
                             {"t": tid, "u": uuid.uuid4(), "e": f"{uuid.uuid4().hex[:6]}@{name.lower()}.example",
                              "c": instant(since)})
            for n in range(ips):
                conn.execute(text("INSERT INTO ip_allocations (tenant_id, ip, reputation_score, allocated_at) "
                                  "VALUES (:t, :ip, 90, :at)"),
                             {"t": tid, "ip": f"198.18.{len(name)}.{n + 1}", "at": instant(since)})
        return Tenant(tid, name, customer, sub, row)


def js(result, code: int = 0):
    """The JSON a command printed, after checking its exit code."""
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def one_error(result, code: int = 2) -> str:
    """The one ``error:`` line of a failed command (no traceback, nothing else on stderr)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def documented(command: str) -> str:
    """The README's paragraph on the JSON of ``command`` (in the tenant-billing section)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Tenant billing:", 1)[1].split("### JSON", 1)[1]
    return section.split(f"- `{command}`", 1)[1].split("\n- `", 1)[0]


def history(engine, tenant_id: str) -> list[dict]:
    """The tenant's subscriptions rows, oldest first."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            text("SELECT id, plan_id, status, quantity, unit_price_cents, started_at, ended_at, end_reason, "
                 "current_period_start, current_period_end, stripe_subscription_id FROM subscriptions "
                 "WHERE tenant_id = :t ORDER BY started_at, ended_at NULLS LAST"), {"t": tenant_id}).mappings()]


def plan_changes(engine, tenant_id: str | None = None) -> list[dict]:
    sql = "SELECT * FROM pmfin_plan_changes" + (" WHERE tenant_id = :t" if tenant_id else "") + " ORDER BY id"
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(text(sql), {"t": tenant_id}).mappings()]
    for r in rows:
        if isinstance(r["request"], str):
            r["request"] = json.loads(r["request"])
    return rows


def snapshot(engine) -> dict:
    """Every row a billing command could change: for 'nothing was changed'."""
    with engine.connect() as conn:
        out = {}
        for table in ("subscriptions", "tenant_config", "pmfin_plan_changes", "pmfin_payment_method_changes",
                      "pmfin_notifications", "pmfin_alerts"):
            out[table] = sorted(json.dumps(dict(r), default=str, sort_keys=True)
                                for r in conn.execute(text(f"SELECT * FROM {table}")).mappings())
    return out
