"""MRR and movements against hand-worked fixtures (DESIGN.md §3)."""

from __future__ import annotations

from decimal import Decimal

from metrics_fixtures import Ledger

from pmfin.metrics.mrr import month_metrics, month_series
from pmfin.months import Month

M = Month.parse


def test_simple(engine):
    with Ledger(engine) as led:
        a = led.tenant("a")
        led.sub(a, "2025-01-10", price=10_000)
    m = month_metrics(engine, M("2025-01"), "usd")
    assert (m.mrr, m.customers, m.new) == (10_000, 1, 10_000)
    s = month_series(engine, M("2024-12"), M("2025-03"), "usd")
    assert [x.mrr for x in s] == [0, 10_000, 10_000, 10_000]
