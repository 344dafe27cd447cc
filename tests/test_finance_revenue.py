"""``pmfin report revenue``: revenue by stream, against a hand-worked month and a naive oracle."""

from __future__ import annotations

import json
import random
from decimal import Decimal

from pmfin.metrics.revenue import revenue_by_stream
from pmfin.months import Month
from pmfin.settings import Settings
from finance_fixtures import fx_rate, payment

SETTINGS = Settings.load({}, environ={}, env_file=None)


def hand_worked_month(engine) -> None:
    # March 2025, USD:
    # subscription: 10000 + 5000 (2000 refunded) + 3000 (status refunded → all 3000 refunded)
    #               + 1000 (last minute of March) → gross 19000, refunded 5000, net 14000, 4 payments
    payment(engine, amount=10000, day="2025-03-02", fee=320)
    payment(engine, amount=5000, day="2025-03-03", status="partially_refunded", refunded=2000)
    payment(engine, amount=3000, day="2025-03-04", status="refunded")
    payment(engine, amount=1000, day="2025-03-31 23:59")
    # disputed subscription payment: 4000 lost, not in net revenue
    payment(engine, amount=4000, day="2025-03-05", status="disputed")
    # excluded: failed, pending, February, April
    payment(engine, amount=9999, day="2025-03-06", status="failed")
    payment(engine, amount=7000, day="2025-03-06", stream="services", status="pending")
    payment(engine, amount=8000, day="2025-02-28 23:59")
    payment(engine, amount=6000, day="2025-04-01")
    # add-on 2000, services 50000, marketplace 1500
    payment(engine, amount=2000, day="2025-03-07", stream="addon")
    payment(engine, amount=50000, day="2025-03-08", stream="services")
    payment(engine, amount=1500, day="2025-03-09", stream="marketplace")
    # Connect: 10000 charge with a 2300 platform fee; 20000 charge without a recorded fee
    # → 23% = 4600, 5000 of 20000 refunded → fee reversed 4600 × 5000/20000 = 1150
    # gross 2300 + 4600 = 6900, refunded 1150, net 5750; volume 10000 + (20000 − 5000) = 25000
    payment(engine, amount=10000, day="2025-03-10", stream="connect", app_fee=2300, fee=320)
    payment(engine, amount=20000, day="2025-03-11", stream="connect", status="partially_refunded", refunded=5000)
    # no stream: other 500
    payment(engine, amount=500, day="2025-03-12", stream=None)
    # net total = 14000 + 2000 + 50000 + 1500 + 5750 + 500 = 73750


def test_revenue_by_stream_hand_worked(engine):
    hand_worked_month(engine)
    with engine.connect() as conn:
        r = revenue_by_stream(conn, Month(2025, 3), "usd", SETTINGS)
    got = {s.stream: (s.payments, s.gross, s.refunded, s.net, s.disputed) for s in r.streams}
    assert got == {
        "subscription": (4, 19000, 5000, 14000, 4000),
        "addon": (1, 2000, 0, 2000, 0),
        "services": (1, 50000, 0, 50000, 0),
        "marketplace": (1, 1500, 0, 1500, 0),
        "connect": (2, 6900, 1150, 5750, 0),
        "other": (1, 500, 0, 500, 0),
    }
    assert (r.gross, r.refunded, r.net, r.disputed, r.connect_volume) == (79900, 6150, 73750, 4000, 25000)
    assert r.stream("services").share == Decimal(50000) / Decimal(73750)
    assert sum(s.share for s in r.streams) == 1
    assert r.warnings == []


def test_revenue_cli_json_and_csv(cli, engine):
    hand_worked_month(engine)
    res = cli("report", "revenue", "--month", "2025-03", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["net"] == 73750 and doc["currency"] == "usd" and doc["month"] == "2025-03"
    sub = next(s for s in doc["streams"] if s["stream"] == "subscription")
    assert sub["net"] == 14000 and sub["share"] == float(Decimal(14000) / Decimal(73750))
    res = cli("report", "revenue", "--month", "2025-03", "--format", "csv")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0] == "stream,currency,payments,gross,refunded,net,share,disputed"
    assert lines[1].startswith("subscription,usd,4,19000,5000,14000,")
    res = cli("report", "revenue", "--month", "2025-03")
    assert res.exit_code == 0
    assert "Connect fees" in res.stdout and "$737.50" in res.stdout and "$57.50" in res.stdout


def test_revenue_other_currency_converted_or_left_out(cli, engine):
    payment(engine, amount=10000, day="2025-03-02")
    payment(engine, amount=10000, day="2025-03-02", currency="eur")
    payment(engine, amount=5000, day="2025-03-02", currency="gbp")
    # EUR: 1 EUR = 1.1 USD → 10000 × 1.1 = 11000; USD stored as base of GBP: 1 USD = 0.8 GBP
    # → 5000 GBP cents ÷ 0.8 = 6250 USD cents. Net = 10000 + 11000 + 6250 = 27250.
    fx_rate(engine, "2025-03", "eur", "usd", "1.1")
    fx_rate(engine, "2025-03", "usd", "gbp", "0.8")
    res = cli("report", "revenue", "--month", "2025-03", "--format", "json")
    assert json.loads(res.stdout)["net"] == 27250
    assert res.stderr == ""
    # April has no rates: the EUR payment is left out, with a warning that says how much
    payment(engine, amount=10000, day="2025-04-02")
    payment(engine, amount=12345, day="2025-04-02", currency="eur")
    res = cli("report", "revenue", "--month", "2025-04", "--format", "json")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["net"] == 10000
    assert "left out €123.45 of subscriptions revenue in 2025-04" in " ".join(res.stderr.split())


def test_revenue_empty_month_is_zero_not_a_crash(cli):
    res = cli("report", "revenue", "--month", "2025-03", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["net"] == 0
    assert [s["share"] for s in doc["streams"]] == [None] * 5
    assert [s["stream"] for s in doc["streams"]] == ["subscription", "addon", "services", "marketplace", "connect"]


def test_revenue_bad_month_and_currency(cli):
    res = cli("report", "revenue", "--month", "2025-13")
    assert res.exit_code == 2
    assert "--month must be YYYY-MM, got '2025-13'" in res.stderr
    res = cli("report", "revenue", "--month", "2025-03", "--currency", "dollars")
    assert res.exit_code == 2 and "--currency must be a 3-letter ISO currency code" in res.stderr


def naive_revenue(payments: list[dict], month: str, share: Decimal) -> dict[str, int]:
    """Independent oracle: net revenue per stream, one payment at a time, in plain Python."""
    out: dict[str, Decimal] = {}
    for p in payments:
        if not p["day"].startswith(month) or p["status"] in ("failed", "pending", "disputed"):
            continue
        refunded = p["amount"] if p["status"] == "refunded" else min(p["refunded"], p["amount"])
        if p["stream"] == "connect":
            fee = Decimal(p["app_fee"]) if p["app_fee"] is not None else p["amount"] * share
            value = fee - fee * refunded / p["amount"]
        else:
            value = Decimal(p["amount"] - refunded)
        out[p["stream"]] = out.get(p["stream"], Decimal(0)) + value
    return out


def test_revenue_matches_naive_oracle(engine):
    rng = random.Random(20250301)
    rows = []
    for _ in range(150):
        status = rng.choice(["succeeded", "succeeded", "refunded", "partially_refunded", "failed", "pending", "disputed"])
        amount = rng.randint(100, 50000)
        p = {
            "amount": amount,
            "day": f"2025-{rng.choice(['02', '03', '04'])}-{rng.randint(1, 28):02d}",
            "stream": rng.choice(["subscription", "addon", "services", "marketplace", "connect"]),
            "status": status,
            "refunded": rng.randint(1, amount) if status == "partially_refunded" else 0,
            "app_fee": rng.choice([None, amount * 23 // 100]),
        }
        rows.append(p)
        payment(engine, amount=p["amount"], day=p["day"], stream=p["stream"], status=p["status"], refunded=p["refunded"], app_fee=p["app_fee"])
    for m in ("2025-02", "2025-03", "2025-04"):
        with engine.connect() as conn:
            report = revenue_by_stream(conn, Month.parse(m), "usd", SETTINGS)
        expected = naive_revenue(rows, m, SETTINGS.connect_platform_share)
        for s in report.streams:
            exact = expected.get(s.stream, Decimal(0))
            if s.stream == "connect":
                # platform fee and its reversal are rounded once each (half-even): within 1 cent
                assert abs(s.net - exact) <= 1, (m, s)
            else:
                assert s.net == exact, (m, s)



def test_connect_volume_is_net_of_refunds_as_the_readme_says(cli, engine):
    # $200 Connect charge with $50 refunded → 150.00 of volume; a disputed $30 charge is left out
    # (as everywhere in revenue); the platform's fee is revenue: 23% of 200 = 46, 46 × 50/200 = 11.50
    # reversed → 34.50 net
    payment(engine, amount=20000, day="2025-03-10", stream="connect", status="partially_refunded", refunded=5000)
    payment(engine, amount=3000, day="2025-03-11", stream="connect", status="disputed")
    res = cli("report", "revenue", "--month", "2025-03", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["connect_volume"] == 15000
    assert doc["net"] == 3450
    table = cli("report", "revenue", "--month", "2025-03", env={"COLUMNS": "200"})
    assert "Connect volume (tenants' money, net of refunds)" in table.stdout and "$150.00" in table.stdout
