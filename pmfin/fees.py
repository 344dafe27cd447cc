"""The fee model of a Connect charge (DESIGN.md §4), and the one place a computed fee is rounded.

Connect charges are destination charges on the platform account: ``transfer_data.destination``
is the tenant's account and ``application_fee_amount`` the platform's share. Of $100.00:

    application fee   = round(10000 × 0.23)          = 2300   the platform's share
    tenant's net      = 10000 − 2300                 = 7700   (Stripe transfers 10000, takes 2300 back)
    Stripe's fee      = round(10000 × 2.9 % ) + 30   = 320    paid by the platform out of its share
    platform keeps    = 2300 − 320                   = 1980

Every computed amount is rounded once, to the currency's minor unit (amounts are already in
minor units, so whole yen for JPY), by ``FeeModel.round`` with the mode of
``PMFIN_FEE_ROUNDING``: ``half_up`` (the default: Stripe rounds its own fee half up — a $5.00
charge costs 14.5¢ + 30¢ → 45¢) or ``half_even``. The tenant's share is the amount less the
rounded application fee, so the two always add up to the charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from pmfin.settings import Settings

ROUNDING_MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}


@dataclass(frozen=True)
class FeeModel:
    percent: Decimal  # Stripe's percentage, e.g. Decimal("2.9")
    fixed: Mapping[str, int] = field(default_factory=dict)  # currency → fixed fee per charge, minor units
    platform_share: Decimal = Decimal("0.23")
    rounding: str = "half_up"

    @classmethod
    def from_settings(cls, settings: Settings) -> FeeModel:
        return cls(settings.stripe_fee_percent, dict(settings.stripe_fee_fixed), settings.connect_platform_share,
                   settings.fee_rounding)

    def round(self, value: Decimal) -> int:
        """The one rounding of a computed amount to a whole minor unit."""
        return int(value.to_integral_value(rounding=ROUNDING_MODES[self.rounding]))

    def fixed_fee(self, currency: str) -> int | None:
        return self.fixed.get(currency.strip().lower())

    def stripe_fee(self, amount: int, currency: str) -> int:
        """Stripe's processing fee of a card charge: percentage (rounded) + the currency's fixed
        fee (0 when none is configured for the currency)."""
        return self.round(Decimal(amount) * self.percent / 100) + (self.fixed_fee(currency) or 0)

    def application_fee(self, amount: int) -> int:
        """The platform's share of a Connect charge."""
        return self.round(Decimal(amount) * self.platform_share)

    def tenant_share(self, amount: int) -> int:
        """What the tenant nets: the amount less the application fee (they add up exactly)."""
        return amount - self.application_fee(amount)
