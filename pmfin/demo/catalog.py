"""The demo's price list: plans on every tier (monthly and annual) and the add-ons.

Prices are list prices per billing cycle in minor units. EUR tenants pay the same nominal
numbers in euros (€99 for professional), as many SaaS price lists do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    tier: str  # freemium / professional / enterprise
    cycle: str  # month / year
    price_cents: int
    email_limit: int
    ip_limit: int
    seat_limit: int

    @property
    def cycle_months(self) -> int:
        return 12 if self.cycle == "year" else 1


@dataclass(frozen=True)
class Addon:
    id: str
    name: str
    cycle: str
    price_cents: int

    @property
    def cycle_months(self) -> int:
        return 12 if self.cycle == "year" else 1


PLANS: dict[str, Plan] = {
    p.id: p
    for p in (
        Plan("freemium", "Freemium", "freemium", "month", 0, 1_000, 0, 1),
        Plan("professional", "Professional", "professional", "month", 9_900, 50_000, 1, 5),
        Plan("professional_annual", "Professional (annual)", "professional", "year", 99_000, 50_000, 1, 5),
        Plan("enterprise", "Enterprise", "enterprise", "month", 49_900, 500_000, 5, 25),
        Plan("enterprise_annual", "Enterprise (annual)", "enterprise", "year", 499_000, 500_000, 5, 25),
    )
}

ADDONS: dict[str, Addon] = {
    a.id: a
    for a in (
        Addon("dedicated_ip", "Dedicated IP", "month", 4_900),
        Addon("extra_domain", "Extra sending domain", "month", 1_500),
        Addon("premium_support", "Premium support (annual)", "year", 199_000),
    )
}

# The nine cost categories the demo writes for every month (pmfin_costs.kind in brackets).
FIXED_COSTS = ("infrastructure", "software", "personnel", "legal", "insurance", "operations")
VARIABLE_COSTS = ("marketing", "sales", "customer_success")

FAILURES = (
    ("card_declined", "Your card was declined."),
    ("insufficient_funds", "Your card has insufficient funds."),
    ("expired_card", "Your card has expired."),
)
