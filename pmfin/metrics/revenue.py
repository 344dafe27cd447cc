"""Revenue by stream for one month, from ``payments`` (cash basis).

Definitions (README "Finance metrics"):

- The payments **created** in the month count; ``failed`` and ``pending`` ones do not.
- **Streams**: subscription, addon, services, marketplace, connect; a payment with no or an
  unknown ``revenue_stream`` is ``other``.
- **Connect**: only the platform's ``application_fee_cents`` is PenguinMails revenue, not the
  gross charge (which is the tenant's money). Where a Connect payment has no recorded application
  fee, ``connect_platform_share`` × amount is used. The Connect volume is reported beside it: the
  Connect charges' amounts net of their refunds (disputed ones left out, as everywhere here).
- **Refunds** are netted in the month of the payment (payments carry no refund date):
  ``refunded_cents``, or the whole amount when the status is ``refunded``. A refunded Connect
  charge reverses the platform fee in proportion (Stripe's ``refund_application_fee``).
- **Disputed** payments are counted as lost while disputed: their net amount is shown in the
  ``disputed`` column and is not in net revenue or the shares. (Stripe debits the disputed amount
  when the dispute opens; a won dispute puts the status back to succeeded and it counts again.)
- **Share** = a stream's net revenue ÷ the month's net revenue.
- Amounts in other currencies are converted with the month's FX rate or left out with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from pmfin.metrics.amounts import Converter, ratio
from pmfin.money import round_minor
from pmfin.months import Month
from pmfin.settings import Settings

STREAMS = ("subscription", "addon", "services", "marketplace", "connect")
OTHER = "other"
LABELS = {
    "subscription": "subscriptions",
    "addon": "add-ons",
    "services": "services",
    "marketplace": "marketplace",
    "connect": "Connect fees",
    OTHER: "other",
}
RECURRING = ("subscription", "addon")

# One row per (stream, currency, disputed): exact sums in minor units of the payment currency.
_SQL = text(
    """
    WITH p AS (
        SELECT CASE WHEN revenue_stream = ANY(:streams) THEN revenue_stream ELSE 'other' END AS stream,
               currency,
               status = 'disputed' AS disputed,
               revenue_stream = 'connect' AS is_connect,
               amount_cents::numeric AS amount,
               CASE WHEN status = 'refunded' THEN amount_cents
                    ELSE least(greatest(refunded_cents, 0), amount_cents) END::numeric AS refunded,
               coalesce(application_fee_cents::numeric, amount_cents * CAST(:share AS numeric)) AS platform_fee
        FROM payments
        WHERE created_at >= :start AND created_at < :end
          AND status NOT IN ('failed', 'pending')
    )
    SELECT stream, currency, disputed,
           count(*) AS payments,
           sum(CASE WHEN is_connect THEN platform_fee ELSE amount END) AS gross,
           sum(CASE WHEN is_connect THEN platform_fee * refunded / nullif(amount, 0) ELSE refunded END) AS refunded,
           sum(CASE WHEN is_connect THEN amount - refunded ELSE 0 END) AS connect_volume
    FROM p
    GROUP BY stream, currency, disputed
    """
)


@dataclass(frozen=True)
class StreamRevenue:
    stream: str
    label: str
    currency: str
    payments: int
    gross: int
    refunded: int
    net: int
    share: Decimal | None
    disputed: int


@dataclass
class RevenueReport:
    month: str
    currency: str
    streams: list[StreamRevenue]
    gross: int
    refunded: int
    net: int
    disputed: int
    connect_volume: int  # Connect charges net of their refunds, disputed ones left out (the tenants' money, not revenue)
    warnings: list[str] = field(default_factory=list)

    def stream(self, name: str) -> StreamRevenue:
        return next(s for s in self.streams if s.stream == name)

    @property
    def recurring(self) -> int:
        return sum(s.net for s in self.streams if s.stream in RECURRING)


def revenue_by_stream(conn: Connection, month: Month, currency: str, settings: Settings) -> RevenueReport:
    """Net revenue of ``month`` per stream in ``currency``."""
    fx = Converter(conn, month, currency)
    names = [*STREAMS, OTHER]
    exact = {s: {"payments": 0, "gross": Decimal(0), "refunded": Decimal(0), "disputed": Decimal(0)} for s in names}
    volume = Decimal(0)
    params = {
        "streams": list(STREAMS),
        "share": settings.connect_platform_share,
        "start": month.start,
        "end": month.end,
    }
    for stream, cur, disputed, payments, gross, refunded, connect_volume in conn.execute(_SQL, params):
        label = f"{LABELS[stream]} revenue" + (" (disputed)" if disputed else "")
        g = fx.convert(Decimal(gross), cur, what=label)
        r = fx.convert(Decimal(refunded or 0), cur, what=f"{LABELS[stream]} refunds" + (" (disputed)" if disputed else ""))
        if g is None or r is None:
            continue
        acc = exact[stream]
        if disputed:
            acc["disputed"] += g - r
        else:
            acc["payments"] += int(payments)
            acc["gross"] += g
            acc["refunded"] += r
            v = fx.convert(Decimal(connect_volume), cur, what="Connect volume")
            volume += v or 0

    rounded = []
    for s in names:
        acc = exact[s]
        gross, refunded = round_minor(acc["gross"]), round_minor(acc["refunded"])
        rounded.append((s, acc["payments"], gross, refunded, round_minor(acc["disputed"])))
    total_net = sum(g - r for _, _, g, r, _ in rounded)
    streams = [
        StreamRevenue(s, LABELS[s], currency, n, g, r, g - r, ratio(g - r, total_net), d)
        for s, n, g, r, d in rounded
        if s != OTHER or n or g or d
    ]
    return RevenueReport(
        month=str(month),
        currency=currency,
        streams=streams,
        gross=sum(s.gross for s in streams),
        refunded=sum(s.refunded for s in streams),
        net=total_net,
        disputed=sum(s.disputed for s in streams),
        connect_volume=round_minor(volume),
        warnings=fx.warnings,
    )
