"""Simulate a deterministic PenguinMails history in Python (everything except the email rows).

One ``random.Random(seed)`` drives every decision, tenants are simulated in a fixed order, and
every id is a ``uuid5`` of the seed and a counter, so the same (seed, tenants, months, end) give
the same rows. The wall clock is never read here.

The model, per tenant, month by month (one decision instant per month):

* sign-up month weighted towards the end of the history (the business grows ~4.5 % a month);
* 30 % start on freemium, 70 % on a 14-day trial of a paid plan, of which ~68 % convert; a
  trial that does not convert ends at ``trial_ends_at`` (some move to freemium, some come back
  later as new paying customers);
* paying tenants upgrade (tier, quantity, monthly → annual) or downgrade as ``plan_change``
  history rows, buy and drop add-ons, cancel at period end (some fall back to freemium), and
  sometimes fail a renewal: recovered on a retry (day 1, 3 or 5), or ended ``payment_failed``
  14 days later, or still ``past_due`` at the end of the history;
* churned tenants come back (reactivation) with a new subscription; some are deleted;
* Connect tenants take card payments on their connected account every month.

Monthly costs are sized from the simulated MRR so that the gross margin lands around 80 % and
the business burns cash at a falling rate (a runway story).
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pmfin.demo.catalog import ADDONS, FAILURES, FIXED_COSTS, PLANS, VARIABLE_COSTS, Addon, Plan
from pmfin.money import round_minor
from pmfin.months import Month

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)
TRIAL = dt.timedelta(days=14)
GRACE = dt.timedelta(days=14)  # a failed renewal ends the subscription this long after the failure
RETRY_DAYS = (1, 3, 5)  # dunning retries (DESIGN.md §4)
REFERENCE_TENANTS = 3000  # cost bases are sized for this many tenants and scaled linearly

_ADJ = ("Blue", "Northern", "Bright", "Swift", "Iron", "Silver", "Polar", "Quiet", "Bold", "Clear",
        "Summit", "Harbor", "Maple", "Cedar", "Granite", "Golden", "Crimson", "Urban", "Prime", "Lucky")
_NOUN = ("Penguin", "Falcon", "Otter", "Fjord", "Anchor", "Beacon", "Compass", "Lantern", "Orbit",
         "Pioneer", "Ridge", "Harvest", "Atlas", "Vertex", "Signal", "Tide", "Meadow", "Forge")
_KIND = ("Outreach", "Growth", "Labs", "Media", "Partners", "Digital", "Sales", "Ventures", "Agency", "Consulting")
_USD_COUNTRIES = ("US", "US", "US", "US", "CA", "GB", "AU")
_EUR_COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "IE")


@dataclass(frozen=True)
class Options:
    tenants: int
    months: int
    seed: int
    end: Month
    stripe_fee_percent: Decimal
    stripe_fee_fixed: Mapping[str, int]  # currency → fixed fee per charge (minor units)
    connect_platform_share: Decimal
    fee_rounding: str = "half_up"  # PMFIN_FEE_ROUNDING: the demo records fees as pmfin.fees computes them
    emails_per_campaign: int = 20  # average for a professional tenant; see EMAIL_WEIGHT


@dataclass
class SubRow:
    id: uuid.UUID
    plan: Plan
    quantity: int
    unit_price: int
    currency: str
    started: dt.datetime
    trial_end: dt.datetime | None
    stripe_id: str
    ended: dt.datetime | None = None
    end_reason: str | None = None
    canceled_at: dt.datetime | None = None
    cancel_at_period_end: bool = False
    failures: dict[dt.datetime, str] = field(default_factory=dict)  # billing date → recovered/fatal/open

    @property
    def anchor(self) -> dt.datetime:
        return self.trial_end or self.started


@dataclass
class AddonRow:
    id: uuid.UUID
    addon: Addon
    quantity: int
    unit_price: int
    currency: str
    started: dt.datetime
    item_id: str
    ended: dt.datetime | None = None


@dataclass
class Dataset:
    """Rows ready for COPY, in the column order of ``loader.COLUMNS``."""

    tenants: list[tuple] = field(default_factory=list)
    tenant_users: list[tuple] = field(default_factory=list)
    tenant_config: list[tuple] = field(default_factory=list)
    subscriptions: list[tuple] = field(default_factory=list)
    subscription_addons: list[tuple] = field(default_factory=list)
    payments: list[tuple] = field(default_factory=list)
    campaigns: list[tuple] = field(default_factory=list)
    ip_allocations: list[tuple] = field(default_factory=list)
    # (tenant_id, campaign_id, created_at, span_seconds, emails): the loader expands these in SQL
    campaign_emails: list[tuple] = field(default_factory=list)
    costs: list[tuple] = field(default_factory=list)  # (month date, category, kind, amount_cents, currency)
    fx_rates: list[tuple] = field(default_factory=list)  # (month date, base, quote, rate)
    platform_account: str = ""


def namespace(seed: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, f"demo.pmfin.penguinmails.invalid/{seed}")


def platform_account(seed: int) -> str:
    """The platform's own Stripe account id the demo writes to system_config (reset recognises it)."""
    return f"acct_{uuid.uuid5(namespace(seed), 'platform').hex[:16]}"


def add_months(instant: dt.datetime, n: int) -> dt.datetime:
    """``instant`` moved by ``n`` calendar months, the day clamped to the target month's length."""
    index = instant.year * 12 + instant.month - 1 + n
    year, month = divmod(index, 12)
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


def billing_dates(anchor: dt.datetime, cycle_months: int, until: dt.datetime) -> Iterator[dt.datetime]:
    """anchor, anchor + 1 cycle, … strictly before ``until`` (each computed from the anchor: no drift)."""
    k = 0
    while True:
        b = add_months(anchor, k * cycle_months)
        if b >= until:
            return
        yield b
        k += 1


def next_billing(row: SubRow, after: dt.datetime) -> dt.datetime:
    k = 0
    while True:
        b = add_months(row.anchor, k * row.plan.cycle_months)
        if b > after:
            return b
        k += 1


class Generator:
    def __init__(self, opts: Options):
        self.o = opts
        self.rng = random.Random(opts.seed)
        self.ns = namespace(opts.seed)
        self.months = [opts.end.add(i - opts.months + 1) for i in range(opts.months)]
        self.hist_start = self.months[0].start
        self.hist_end = opts.end.end  # exclusive
        self.data = Dataset()
        self._counter = 0
        self._ip = 0
        # per month index: simulated MRR in USD cents, one-off revenue (for sizing costs)
        self.fx = self._fx_path()
        self._fees = self.fees  # built once: fee() runs for every charge

    # -- ids ------------------------------------------------------------------------------------
    def uid(self, kind: str) -> uuid.UUID:
        self._counter += 1
        return uuid.uuid5(self.ns, f"{kind}/{self._counter}")

    @staticmethod
    def stripe_id(prefix: str, u: uuid.UUID) -> str:
        return f"{prefix}_{u.hex[:16] if prefix in ('acct', 'cus') else u.hex[:24]}"

    def next_ip(self) -> str:
        n = self._ip
        self._ip += 1
        return f"198.{18 + (n >> 16) % 2}.{(n >> 8) & 255}.{n & 255}"  # 198.18.0.0/15, benchmarking range

    # -- random helpers -------------------------------------------------------------------------
    def instant_in(self, month: Month, *, not_before: dt.datetime | None = None, max_day: int | None = None) -> dt.datetime:
        days = calendar.monthrange(month.year, month.month)[1]
        t = month.start + dt.timedelta(
            days=self.rng.randrange(min(days, max_day or days)), seconds=self.rng.randrange(86_400)
        )
        if not_before is not None and t <= not_before:
            # later in the same month, after not_before (or not at all when the month is over)
            span = (month.end - not_before).total_seconds()
            if span <= 1:
                return month.end
            t = not_before + dt.timedelta(seconds=1 + self.rng.randrange(int(span) - 1 or 1))
        return t

    @property
    def fees(self):
        """The fee model (pmfin.fees): Stripe's fee and the platform's share, rounded in its one place."""
        from pmfin.fees import FeeModel

        return FeeModel(self.o.stripe_fee_percent, self.o.stripe_fee_fixed, self.o.connect_platform_share,
                        self.o.fee_rounding)

    def fee(self, amount: int, currency: str) -> int:
        """Stripe's processing fee as the app records it (the fee model's)."""
        return self._fees.stripe_fee(amount, currency)

    def _fx_path(self) -> list[Decimal]:
        rng = random.Random(self.o.seed * 7919 + 17)  # own stream: FX must not shift tenant decisions
        rate = Decimal("1.0850")
        path = []
        for _ in self.months:
            rate = (rate + Decimal(rng.randint(-150, 150)) / 10_000).quantize(Decimal("0.0001"))
            rate = min(max(rate, Decimal("1.0200")), Decimal("1.1600"))
            path.append(rate)
        return path

    # -- the whole history ---------------------------------------------------------------------
    def run(self) -> Dataset:
        weights = [1.045**i for i in range(len(self.months))]
        self.mrr_usd = [Decimal(0)] * len(self.months)
        self.oneoff_usd = [0] * len(self.months)
        self.data.platform_account = platform_account(self.o.seed)
        signups = self.rng.choices(range(len(self.months)), weights=weights, k=self.o.tenants)
        for i in range(self.o.tenants):
            Tenant(self, i, signups[i]).simulate()
        self._costs()
        for month, rate in zip(self.months, self.fx):
            self.data.fx_rates.append((month.first_day, "eur", "usd", rate))
        return self.data

    def _costs(self) -> None:
        rng = random.Random(self.o.seed * 104_729 + 3)
        scale = Decimal(self.o.tenants) / REFERENCE_TENANTS
        # (base dollars at the reference size, share of MRR) per category
        model = {
            "infrastructure": (9_000, Decimal("0.12")),
            "software": (4_500, Decimal("0.02")),
            "personnel": (48_000, Decimal("0.70")),
            "legal": (3_500, Decimal(0)),
            "insurance": (1_800, Decimal(0)),
            "operations": (5_000, Decimal("0.03")),
            "marketing": (9_000, Decimal("0.22")),
            "sales": (4_000, Decimal("0.14")),
            "customer_success": (2_500, Decimal("0.05")),
        }
        for idx, month in enumerate(self.months):
            revenue = self.mrr_usd[idx] + self.oneoff_usd[idx]
            for category in FIXED_COSTS + VARIABLE_COSTS:
                base, share = model[category]
                noise = Decimal(1000 + rng.randint(-30, 30)) / 1000
                cents = (Decimal(base * 100) * scale + revenue * share) * noise
                dollars = round_minor(cents / 100)  # whole dollars, as a ledger export would have them
                kind = "fixed" if category in FIXED_COSTS else "variable"
                self.data.costs.append((month.first_day, category, kind, dollars * 100, "usd"))


class Tenant:
    """One tenant's life, month by month."""

    def __init__(self, g: Generator, index: int, signup_idx: int):
        self.g = g
        self.rng = g.rng
        self.index = index
        self.signup_idx = signup_idx
        self.id = uuid.uuid5(g.ns, f"tenant/{index}")
        self.currency = "eur" if self.rng.random() < 0.15 else "usd"
        self.country = self.rng.choice(_EUR_COUNTRIES if self.currency == "eur" else _USD_COUNTRIES)
        self.rows: list[SubRow] = []
        self.addons: list[AddonRow] = []
        self.cur: SubRow | None = None
        self.busy_until: dt.datetime | None = None  # a decided change takes effect then
        self.gone_since: dt.datetime | None = None
        self.had_paid = False
        self.connect = False
        self.connect_from: dt.datetime | None = None
        self.account_id: str | None = None
        self.seats: list[list] = []  # [user_id, email, created, deleted]
        self.ips: list[list] = []  # [ip, score, allocated, released, addon_row or None]
        self.deleted: dt.datetime | None = None
        self.billing_status = "active"
        self.discount = Decimal(self.rng.choice((10, 15, 20, 25))) / 100 if self.rng.random() < 0.18 else Decimal(0)

    # -- subscription rows ------------------------------------------------------------------------
    def price(self, plan: Plan) -> int:
        return round_minor(Decimal(plan.price_cents) * (1 - self.discount)) if plan.price_cents else 0

    def quantity(self, plan: Plan) -> int:
        r = self.rng.random()
        if plan.tier == "enterprise":
            return 1 if r < 0.6 else self.rng.randint(2, 5)
        if plan.tier == "professional":
            return 1 if r < 0.8 else self.rng.randint(2, 3)
        return 1

    def start_row(self, plan: Plan, at: dt.datetime, *, trial: bool = False, stripe_id: str | None = None,
                  quantity: int | None = None) -> SubRow:
        rid = self.g.uid("subscription")
        row = SubRow(
            id=rid, plan=plan, quantity=quantity or self.quantity(plan), unit_price=self.price(plan),
            currency=self.currency, started=at, trial_end=at + TRIAL if trial else None,
            stripe_id=stripe_id or self.g.stripe_id("sub", rid),
        )
        self.rows.append(row)
        self.cur = row
        return row

    def change_plan(self, plan: Plan, at: dt.datetime, quantity: int | None = None) -> None:
        old = self.cur
        old.ended, old.end_reason = at, "plan_change"
        self.start_row(plan, at, stripe_id=old.stripe_id, quantity=quantity)
        if plan.price_cents and not self.had_paid:
            self.became_paying(at)

    def end_all(self, at: dt.datetime, reason: str) -> None:
        """The subscription ends for good: its add-ons and IPs go with it."""
        self.cur.ended, self.cur.end_reason = at, reason
        for a in self.addons:
            if a.ended is None or a.ended > at:
                a.ended = at
        for ip in self.ips:
            if ip[3] is None:
                ip[3] = at
        self.cur = None
        self.gone_since = at
        if self.rng.random() < 0.2 and at + 60 * DAY < self.g.hist_end:
            self.deleted = at + dt.timedelta(days=30 + self.rng.randrange(30))
            for s in self.seats:
                if s[3] is None:
                    s[3] = self.deleted

    def became_paying(self, at: dt.datetime) -> None:
        self.had_paid = True
        plan = self.cur.plan
        extra_seats = self.rng.randint(0, max(0, min(plan.seat_limit, 8) - 1))
        for _ in range(extra_seats):
            self.add_seat(at + dt.timedelta(days=self.rng.randrange(20)))
        for _ in range(plan.ip_limit if plan.tier == "enterprise" else 1):
            self.allocate_ip(at)
        if not self.connect and self.rng.random() < 0.12:
            self.connect = True
            self.connect_from = at + dt.timedelta(days=self.rng.randrange(60))
            self.account_id = self.g.stripe_id("acct", uuid.uuid5(self.g.ns, f"account/{self.index}"))

    def add_seat(self, at: dt.datetime) -> None:
        n = len(self.seats)
        uid = uuid.uuid5(self.g.ns, f"user/{self.index}/{n}")
        self.seats.append([uid, f"user{n + 1}@tenant{self.index + 1}.example.com", at, None])

    def allocate_ip(self, at: dt.datetime, addon: AddonRow | None = None) -> None:
        r = self.rng.random()
        score = Decimal(self.rng.randint(2_000, 5_000) if r < 0.06 else self.rng.randint(7_000, 9_990)) / 100
        self.ips.append([self.g.next_ip(), score, at, None, addon])

    # -- the life ------------------------------------------------------------------------------
    def simulate(self) -> None:
        g = self.g
        signup = g.instant_in(g.months[self.signup_idx], max_day=28)
        self.signup = signup
        self.add_seat(signup)
        if self.rng.random() < 0.30:
            self.start_row(PLANS["freemium"], signup)
        else:
            self.start_trial(signup)
        for idx in range(self.signup_idx, len(g.months)):
            month = g.months[idx]
            x = g.instant_in(month, not_before=signup if idx == self.signup_idx else None)
            if idx > self.signup_idx and x < g.hist_end:
                self.tick(x)
            self.monthly_activity(idx, month)
        self.final_dunning()
        self.write()

    def final_dunning(self) -> None:
        """A snapshot of dunning at the end: some renewals of the last 14 days are still unpaid (past_due)."""
        row, end = self.cur, self.g.hist_end
        if row is None or row.ended or not row.unit_price or row.cancel_at_period_end or self.busy_until:
            return
        if row.trial_end and row.trial_end >= end:
            return
        last = None
        for last in billing_dates(row.anchor, row.plan.cycle_months, end):
            pass
        if last is None or end - last > GRACE or last in row.failures or self.rng.random() >= 0.1:
            return
        row.failures[last] = "open"
        self.billing_status = "restricted" if end - last > 7 * DAY else "active"

    def pick_paid_plan(self) -> Plan:
        enterprise = self.rng.random() < 0.17
        annual = self.rng.random() < 0.25
        return PLANS[("enterprise" if enterprise else "professional") + ("_annual" if annual else "")]

    def start_trial(self, at: dt.datetime) -> None:
        row = self.start_row(self.pick_paid_plan(), at, trial=True)
        if row.trial_end >= self.g.hist_end:
            return  # still trialing when the history ends
        if self.rng.random() < 0.68:
            self.became_paying(row.trial_end)
            return
        row.canceled_at = at + dt.timedelta(days=self.rng.randint(1, 12), seconds=self.rng.randrange(86_400))
        row.cancel_at_period_end = True
        row.ended, row.end_reason = row.trial_end, "canceled"
        self.cur = None
        if self.rng.random() < 0.4:
            self.start_row(PLANS["freemium"], row.trial_end)
        else:
            self.gone_since = row.trial_end

    def tick(self, x: dt.datetime) -> None:
        """One decision instant ``x`` in a month after the sign-up month."""
        rng = self.rng
        if self.deleted is not None:
            return
        if self.busy_until is not None:
            if x < self.busy_until:
                return
            self.busy_until = None
        cur = self.cur
        if cur is None:  # churned, or a trial that never converted
            wait = (x - self.gone_since).days
            if self.had_paid and wait > 45 and rng.random() < 0.10:  # reactivation
                self.start_row(self.pick_paid_plan(), x)
                self.billing_status = "active"
                self.allocate_ip(x)
            elif not self.had_paid and wait > 30 and rng.random() < 0.03:  # comes back and pays (new)
                self.start_row(self.pick_paid_plan(), x)
                self.became_paying(x)
            return
        if cur.trial_end and x < cur.trial_end:
            return
        if cur.plan.tier == "freemium":
            r = rng.random()
            if r < 0.05:
                self.change_plan(PLANS["professional" if rng.random() < 0.9 else "enterprise"], x)
            elif r < 0.06:
                cur.canceled_at = x
                self.end_all(x, "canceled")
            return
        self.paid_tick(x, cur)

    def paid_tick(self, x: dt.datetime, cur: SubRow) -> None:
        g, rng = self.g, self.rng
        r = rng.random()
        nb = next_billing(cur, x)
        annual = cur.plan.cycle == "year"
        churn = (annual and nb - x <= 31 * DAY and r < 0.15) or (not annual and r < 0.022)
        if churn:
            cur.canceled_at, cur.cancel_at_period_end = x, True
            if nb >= g.hist_end:
                return  # ends after the history: still running, cancel_at_period_end set
            self.busy_until = nb
            if not annual and rng.random() < 0.25:  # falls back to freemium at period end: a scheduled downgrade
                cur.canceled_at, cur.cancel_at_period_end = None, False
                self.change_plan(PLANS["freemium"], nb)
                for a in self.addons:
                    if a.ended is None:
                        a.ended = nb
                for ip in self.ips:
                    if ip[3] is None:
                        ip[3] = nb
            else:
                self.end_all(nb, "canceled")
            return
        if r < 0.052:  # a renewal fails
            kind = rng.random()
            if nb >= g.hist_end:
                return
            if kind < 0.55:
                cur.failures[nb] = "recovered"
            elif nb + GRACE < g.hist_end:
                cur.failures[nb] = "fatal"
                self.busy_until = nb + GRACE
                self.billing_status = "suspended"
                self.end_all(nb + GRACE, "payment_failed")
            else:
                cur.failures[nb] = "open"
                self.billing_status = "restricted" if g.hist_end - nb > 7 * DAY else "active"
                self.busy_until = g.hist_end
            return
        if r < 0.082:  # upgrade: more units, a higher tier, or annual billing
            tier, cycle = cur.plan.tier, cur.plan.cycle
            choice = rng.random()
            if tier == "professional" and choice < 0.45:
                self.change_plan(PLANS["enterprise" + ("_annual" if cycle == "year" else "")], x)
            elif cycle == "month" and choice < 0.7:
                self.change_plan(PLANS[cur.plan.id + "_annual"], x, quantity=cur.quantity)
            else:
                self.change_plan(cur.plan, x, quantity=cur.quantity + rng.randint(1, 2))
            return
        if r < 0.097:  # downgrade: fewer units or a lower tier
            if cur.quantity > 1:
                self.change_plan(cur.plan, x, quantity=cur.quantity - 1)
            elif cur.plan.tier == "enterprise":
                self.change_plan(PLANS["professional" + ("_annual" if cur.plan.cycle == "year" else "")], x)
            return
        if r < 0.133:  # buys an add-on
            addon = ADDONS[rng.choice(("dedicated_ip", "dedicated_ip", "extra_domain", "extra_domain", "premium_support"))]
            if any(a.addon is addon and a.ended is None for a in self.addons):
                return
            qty = rng.randint(1, 3) if addon.id != "premium_support" else 1
            aid = g.uid("addon")
            unit = addon.price_cents if rng.random() < 0.85 else round_minor(Decimal(addon.price_cents) * Decimal("0.8"))
            row = AddonRow(aid, addon, qty, unit, self.currency, x, g.stripe_id("si", aid))
            self.addons.append(row)
            if addon.id == "dedicated_ip":
                for _ in range(qty):
                    self.allocate_ip(x, row)
            return
        if r < 0.168:  # drops a monthly add-on
            live = [a for a in self.addons if a.ended is None and a.addon.cycle == "month"]
            if live:
                a = rng.choice(live)
                a.ended = x
                for ip in self.ips:
                    if ip[4] is a and ip[3] is None:
                        ip[3] = x
            return
        if r < 0.218 and len([s for s in self.seats if s[3] is None]) < cur.plan.seat_limit:
            self.add_seat(x)
        elif r < 0.233:
            live = [s for s in self.seats[1:] if s[3] is None]
            if live:
                rng.choice(live)[3] = x

    # -- what happens inside a month regardless of the decision ------------------------------
    def live_row_in(self, month: Month) -> SubRow | None:
        for row in reversed(self.rows):
            if row.started < month.end and (row.ended is None or row.ended > month.start):
                return row
        return None

    def monthly_activity(self, idx: int, month: Month) -> None:
        g, rng = self.g, self.rng
        if self.deleted is not None and self.deleted < month.start:
            return
        row = self.live_row_in(month)
        if row is None:
            return
        lo = max(month.start, row.started)
        hi = min(month.end, g.hist_end, row.ended or month.end)
        if hi <= lo:
            return
        span = int((hi - lo).total_seconds())

        def at() -> dt.datetime:
            return lo + dt.timedelta(seconds=rng.randrange(span))

        tier = row.plan.tier
        n_campaigns = {"freemium": rng.randint(0, 1), "professional": rng.randint(1, 2)}.get(tier, rng.randint(2, 4))
        weight = {"freemium": 0.3, "professional": 1.0}.get(tier, 3.0)
        for _ in range(n_campaigns):
            cid = g.uid("campaign")
            created = at()
            draft = rng.random() < 0.05
            span_s = rng.randint(3, 10) * 86_400
            if draft:
                status, n = "draft", 0
            elif rng.random() < 0.03:
                status, n = "paused", int(g.o.emails_per_campaign * weight * rng.uniform(0.2, 0.6))
            else:
                finished = created + dt.timedelta(seconds=span_s) < g.hist_end
                status = "completed" if finished else "running"
                n = int(g.o.emails_per_campaign * weight * rng.uniform(0.5, 1.5))
            g.data.campaigns.append((self.id, cid, f"Campaign {idx + 1}-{len(g.data.campaigns) + 1}", status, created))
            if n:
                g.data.campaign_emails.append((self.id, cid, created, span_s, n))
        if tier == "freemium":
            return
        if row.trial_end and row.trial_end >= hi:
            return
        paying = not (row.trial_end and row.trial_end > lo)
        if paying and rng.random() < (0.04 if tier == "enterprise" else 0.008):
            amount = rng.choice((50_000, 100_000, 150_000, 250_000))
            self.charge("services", at(), amount, oneoff_idx=idx)
        if paying and rng.random() < 0.05:
            amount = rng.choice((2_900, 4_900, 9_900, 19_900, 29_900))
            self.charge("marketplace", at(), amount, oneoff_idx=idx)
        if self.connect and self.connect_from < hi:
            lo_c = max(lo, self.connect_from)
            span_c = int((hi - lo_c).total_seconds())
            for _ in range(rng.randint(1, 5)):
                when = lo_c + dt.timedelta(seconds=rng.randrange(max(span_c, 1)))
                amount = rng.randint(20, 300) * 100 + rng.choice((0, 0, 50, 99))
                self.connect_charge(when, amount, idx)

    # -- payments -----------------------------------------------------------------------------
    def payment(self, stream: str, when: dt.datetime, amount: int, status: str, *, invoice: str | None = None,
                refunded: int = 0, fee: int | None = None, app_fee: int | None = None,
                failure: tuple[str, str] | None = None, account: str | None = None) -> None:
        pid = self.g.uid("payment")
        h = pid.hex
        self.g.data.payments.append((
            self.id, pid, f"pi_{h[:24]}", f"ch_{h[8:32]}", invoice, account, stream, amount, self.currency,
            status, refunded, fee, app_fee, failure[0] if failure else None, failure[1] if failure else None, when,
        ))

    def succeeded_status(self, amount: int) -> tuple[str, int]:
        r = self.rng.random()
        if r < 0.012:
            return "refunded", amount
        if r < 0.027:
            return "partially_refunded", round_minor(Decimal(amount) * Decimal(self.rng.choice((10, 25, 50))) / 100)
        if r < 0.032:
            return "disputed", 0
        return "succeeded", 0

    def charge(self, stream: str, when: dt.datetime, amount: int, *, invoice: str | None = None,
               oneoff_idx: int | None = None) -> None:
        status, refunded = self.succeeded_status(amount)
        self.payment(stream, when, amount, status, invoice=invoice, refunded=refunded,
                     fee=self.g.fee(amount, self.currency))
        if oneoff_idx is not None:
            self.g.oneoff_usd[oneoff_idx] += self.to_usd(amount, oneoff_idx)

    def connect_charge(self, when: dt.datetime, amount: int, idx: int) -> None:
        g = self.g
        if self.rng.random() < 0.04:
            self.payment("connect", when, amount, "failed", failure=self.rng.choice(FAILURES), account=self.account_id)
            return
        status, refunded = self.succeeded_status(amount)
        app_fee = g._fees.application_fee(amount)
        self.payment("connect", when, amount, status, refunded=refunded, fee=g.fee(amount, self.currency),
                     app_fee=app_fee,
                     account=self.account_id)

    def to_usd(self, amount: int, idx: int) -> int:
        return amount if self.currency == "usd" else round_minor(Decimal(amount) * self.g.fx[idx])

    def invoice_payments(self, stream: str, anchor: dt.datetime, cycle_months: int, until: dt.datetime,
                         amount: int, failures: dict[dt.datetime, str]) -> None:
        g = self.g
        for b in billing_dates(anchor, cycle_months, until):
            invoice = g.stripe_id("in", g.uid("invoice"))
            outcome = failures.get(b)
            if outcome is None:
                self.charge(stream, b, amount, invoice=invoice)
                continue
            self.payment(stream, b, amount, "failed", invoice=invoice, failure=self.rng.choice(FAILURES))
            recover_on = self.rng.choice(RETRY_DAYS) if outcome == "recovered" else None
            for day in RETRY_DAYS:
                when = b + day * DAY + dt.timedelta(hours=self.rng.randint(0, 6))
                if when >= g.hist_end:
                    break
                if day == recover_on:
                    self.charge(stream, when, amount, invoice=invoice)
                    break
                self.payment(stream, when, amount, "failed", invoice=invoice, failure=self.rng.choice(FAILURES))

    # -- rows ----------------------------------------------------------------------------------
    def write(self) -> None:
        g, d = self.g, self.g.data
        created = self.signup
        d.tenants.append((self.id, self.name(), created, self.deleted))
        d.tenant_config.append((
            self.id, f"billing@tenant{self.index + 1}.example.com", self.country, self.currency,
            g.stripe_id("cus", uuid.uuid5(g.ns, f"customer/{self.index}")), self.account_id,
            self.billing_status, created, self.deleted or created,
        ))
        for uid, email, at, deleted in self.seats:
            if at < g.hist_end:
                d.tenant_users.append((self.id, uid, email, at, deleted))
        for ip, score, allocated, released, _ in self.ips:
            if allocated < g.hist_end:
                d.ip_allocations.append((self.id, ip, score, allocated, released))
        for row in self.rows:
            self.write_row(row)
        for a in self.addons:
            until = min(a.ended or g.hist_end, g.hist_end)
            d.subscription_addons.append((
                self.id, a.id, a.addon.id, a.quantity, a.unit_price, a.currency, a.started, a.ended, a.item_id,
            ))
            self.invoice_payments("addon", a.started, a.addon.cycle_months, until, a.unit_price * a.quantity, {})
            self.count_mrr(a.started, a.ended, a.unit_price * a.quantity, a.addon.cycle_months, None)

    def write_row(self, row: SubRow) -> None:
        g = self.g
        end = g.hist_end
        if row.ended is not None:
            status = "canceled"
        elif row.failures and "open" in row.failures.values():
            status = "past_due"
        elif row.trial_end and row.trial_end >= end:
            status = "trialing"
        else:
            status = "active"
        # the billing period containing the row's last instant (or the end of the history)
        last = min(row.ended or end, end) - dt.timedelta(microseconds=1)
        if row.trial_end and last < row.trial_end:
            period = (row.started, row.trial_end)
        else:
            start = row.anchor
            for b in billing_dates(row.anchor, row.plan.cycle_months, last + dt.timedelta(microseconds=1)):
                start = b
            period = (start, add_months(start, row.plan.cycle_months))
        g.data.subscriptions.append((
            self.id, row.id, row.plan.id, status, row.quantity, row.unit_price, row.currency, row.started,
            row.trial_end, period[0], period[1], row.cancel_at_period_end, row.canceled_at, row.ended,
            row.end_reason, row.stripe_id,
        ))
        amount = row.unit_price * row.quantity
        if amount:
            until = min(row.ended or end, end)
            self.invoice_payments("subscription", row.anchor, row.plan.cycle_months, until, amount, row.failures)
            self.count_mrr(row.started, row.ended, amount, row.plan.cycle_months, row.trial_end)

    def count_mrr(self, started, ended, amount, cycle_months, trial_end) -> None:
        """Approximate MRR per month end, only to size the demo's costs (the report uses pmfin.metrics)."""
        g = self.g
        for idx, month in enumerate(g.months):
            t = month.end - dt.timedelta(microseconds=1)
            if started <= t and (ended is None or t < ended) and (trial_end is None or trial_end <= t):
                g.mrr_usd[idx] += Decimal(self.to_usd(amount, idx)) / cycle_months

    def name(self) -> str:
        r = random.Random(self.index * 31 + self.g.o.seed)  # names from their own stream
        return f"{r.choice(_ADJ)} {r.choice(_NOUN)} {r.choice(_KIND)}"


def generate(opts: Options) -> Dataset:
    return Generator(opts).run()
