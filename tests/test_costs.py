"""``pmfin costs import|list`` and ``pmfin report costs``: hand-worked months and a naive oracle."""

from __future__ import annotations

import json
import random
from decimal import Decimal

from sqlalchemy import text

from finance_fixtures import cost, emails, fx_rate, payment
from pmfin.metrics.costs import month_costs
from pmfin.months import Month
from pmfin.settings import Settings

SETTINGS = Settings.load({}, environ={}, env_file=None)

GOOD_CSV = """month,category,kind,amount,currency
2025-03,infrastructure,fixed,12500.00,usd
2025-03,marketing,variable,"4,000.50",usd
2025-03,legal,fixed,1000,eur

2025-04,infrastructure,fixed,13000,usd
"""


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            (str(m), c, k, a, cur, s)
            for m, c, k, a, cur, s in conn.execute(
                text("SELECT month, category, kind, amount_cents, currency, source FROM pmfin_costs ORDER BY 1, 2")
            )
        ]


def test_import_dry_run_then_import_then_update(cli, engine, tmp_path):
    f = tmp_path / "costs-2025.csv"
    f.write_text(GOOD_CSV)
    res = cli("costs", "import", str(f), "--dry-run", "--format", "json")
    assert res.exit_code == 0, res.stderr
    plan = json.loads(res.stdout)
    assert [(r["month"], r["category"], r["amount"], r["action"]) for r in plan] == [
        ("2025-03", "infrastructure", 1250000, "insert"),
        ("2025-03", "marketing", 400050, "insert"),
        ("2025-03", "legal", 100000, "insert"),
        ("2025-04", "infrastructure", 1300000, "insert"),
    ]
    assert "dry run: nothing written" in res.stderr
    assert stored(engine) == []

    res = cli("costs", "import", str(f))
    assert res.exit_code == 0, res.stderr
    assert "4 new, 0 changed, 0 unchanged" in res.stderr
    assert stored(engine) == [
        ("2025-03-01", "infrastructure", "fixed", 1250000, "usd", "costs-2025.csv"),
        ("2025-03-01", "legal", "fixed", 100000, "eur", "costs-2025.csv"),
        ("2025-03-01", "marketing", "variable", 400050, "usd", "costs-2025.csv"),
        ("2025-04-01", "infrastructure", "fixed", 1300000, "usd", "costs-2025.csv"),
    ]

    g = tmp_path / "fix.csv"
    g.write_text("currency,amount,kind,category,month\nUSD,12600,Fixed,Infrastructure,2025-03\nusd,13000,fixed,infrastructure,2025-04\n")
    res = cli("costs", "import", str(g), "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert [(r["action"], r["previous"]) for r in json.loads(res.stdout)] == [("update", 1250000), ("unchanged", 1300000)]
    assert stored(engine)[0] == ("2025-03-01", "infrastructure", "fixed", 1260000, "usd", "fix.csv")
    assert len(stored(engine)) == 4


BAD_FILES = [
    # (content, message fragment)
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,1,usd\n2025-13,software,fixed,1,usd\n", "line 3: month must be YYYY-MM, got '2025-13'"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,1,usd\n\n2025-03,software,fixd,1,usd\n", "line 4: kind must be fixed or variable, got 'fixd'"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,12.345,usd\n", "line 2: amount has more decimals than USD allows"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,ten,usd\n", "line 2: amount must be an amount like 25000"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,-5,usd\n", "line 2: amount must not be negative"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,5,dollars\n", "line 2: currency must be a 3-letter ISO code"),
    ("month,category,kind,amount,currency\n2025-03,infrastructure,fixed,5\n", "line 2: expected 5 fields, got 4"),
    ("month,category,kind,amount,currency\n2025-03,,fixed,5,usd\n", "line 2: category must be a lowercase word"),
    ("month,category,kind,amount,currency\n2025-03,payment_processing,variable,5,usd\n", "line 2: category 'payment_processing' is computed by pmfin"),
    ("month,category,kind,amount,currency\n2025-03,sales,variable,5,usd\n2025-03,Sales,variable,6,USD\n", "line 3: 2025-03 sales variable USD is already on line 2"),
    ("month,category,kind,amount\n2025-03,sales,variable,5\n", "line 1: missing column(s) currency"),
    ("month,category,type,amount,currency\n", "line 1: missing column(s) kind; unknown column(s) 'type'"),
    ("month,category,kind,amount,currency\n", "no cost rows after the header"),
    ("", "the file is empty"),
]


def test_malformed_file_is_rejected_whole(cli, engine, tmp_path):
    for i, (content, message) in enumerate(BAD_FILES):
        f = tmp_path / f"bad{i}.csv"
        f.write_text(content)
        res = cli("costs", "import", str(f))
        assert res.exit_code == 2, (content, res.stdout)
        assert message in " ".join(res.stderr.split()), (message, res.stderr)
        assert "Traceback" not in res.stderr
        assert stored(engine) == []  # nothing imported, not even the good lines before the bad one


def test_import_missing_file_and_not_utf8(cli, engine, tmp_path):
    res = cli("costs", "import", str(tmp_path / "nope.csv"))
    assert res.exit_code == 2 and res.stderr == f"error: {tmp_path / 'nope.csv'}: no such file\n"
    res = cli("costs", "import", str(tmp_path))
    assert res.exit_code == 2 and res.stderr == f"error: {tmp_path}: is a directory, expected a CSV file\n"
    f = tmp_path / "latin1.csv"
    f.write_bytes("month,category,kind,amount,currency\n2025-03,caf\xe9,fixed,1,usd\n".encode("latin-1"))
    res = cli("costs", "import", str(f))
    assert res.exit_code == 2 and res.stderr == f"error: {f}, line 2: not UTF-8 text\n"
    f = tmp_path / "multi.csv"
    f.write_text('month,category,kind,amount,currency\n2025-03,"infra\nstructure",fixed,1,usd\n2025-04,x,fixed,1,usd\n')
    res = cli("costs", "import", str(f))
    assert res.exit_code == 2 and res.stderr.startswith(f"error: {f}, line 2: category must be a lowercase word")
    assert stored(engine) == []


def test_costs_list_range(cli, engine, tmp_path):
    f = tmp_path / "c.csv"
    f.write_text(GOOD_CSV)
    assert cli("costs", "import", str(f)).exit_code == 0
    res = cli("costs", "list", "--from", "2025-04", "--format", "json")
    assert res.exit_code == 0
    assert [(r["month"], r["amount"]) for r in json.loads(res.stdout)] == [("2025-04", 1300000)]
    res = cli("costs", "list", "--to", "2025-03", "--format", "csv")
    assert res.stdout.splitlines() == [
        "month,category,kind,amount,currency,source",
        "2025-03,infrastructure,fixed,1250000,usd,c.csv",
        "2025-03,legal,fixed,100000,eur,c.csv",
        "2025-03,marketing,variable,400050,usd,c.csv",
    ]
    res = cli("costs", "list", "--from", "2025-04", "--to", "2025-03")
    assert res.exit_code == 2 and "--to (2025-03) is before --from (2025-04)" in res.stderr
    res = cli("costs", "list", "--from", "April")
    assert res.exit_code == 2 and "--from must be YYYY-MM, got 'April'" in res.stderr


def march_2025(engine) -> None:
    # Imported: infrastructure 300000, personnel 1000000, legal 20000 EUR × 1.1 = 22000 (fixed);
    #           marketing 150000, sales 50000, customer_success 40000 (variable).
    for category, amount in (("infrastructure", 300000), ("personnel", 1000000), ("marketing", 150000), ("sales", 50000), ("customer_success", 40000)):
        cost(engine, "2025-03", category, amount)
    cost(engine, "2025-03", "legal", 20000, currency="eur")
    fx_rate(engine, "2025-03", "eur", "usd", "1.1")
    # Payment processing: recorded fees 320 + 320 (Connect); modelled 2.9% + 30 for captured charges
    # without a fee: 20000 → 610; 3333 refunded → 96.657 + 30 = 126.657; 50 → 31.45 twice = 62.9;
    # the failed one costs nothing. 320 + 610 + 126.657 + 62.9 + 320 = 1439.557 → 1440 rounded once
    # (rounding each charge would give 1439).
    payment(engine, amount=10000, day="2025-03-01", fee=320)
    payment(engine, amount=20000, day="2025-03-02")
    payment(engine, amount=3333, day="2025-03-03", status="refunded")
    payment(engine, amount=50, day="2025-03-04")
    payment(engine, amount=50, day="2025-03-05")
    payment(engine, amount=5000, day="2025-03-06", status="failed")
    payment(engine, amount=10000, day="2025-03-07", stream="connect", fee=320, app_fee=2300)
    payment(engine, amount=10000, day="2025-04-01", fee=320)  # April
    # Email delivery: 12345 sent in March × 0.05 = 617.25 → 617; queued (never sent) cost nothing.
    emails(engine, 12345, "2025-03-15")
    emails(engine, 5, None, status="queued")
    # February: infrastructure 300000 + personnel 900000; 10 emails × 0.05 = 0.5 → 0 (half-even)
    emails(engine, 10, "2025-02-28 23:59")
    cost(engine, "2025-02", "infrastructure", 300000)
    cost(engine, "2025-02", "personnel", 900000)


def test_month_costs_hand_worked(engine):
    march_2025(engine)
    with engine.connect() as conn:
        mc = month_costs(conn, Month(2025, 3), "usd", SETTINGS)
    assert {(line.category, line.kind, line.amount) for line in mc.lines} == {
        ("infrastructure", "fixed", 300000),
        ("personnel", "fixed", 1000000),
        ("legal", "fixed", 22000),
        ("marketing", "variable", 150000),
        ("sales", "variable", 50000),
        ("customer_success", "variable", 40000),
        ("payment_processing", "variable", 1440),
        ("email_delivery", "variable", 617),
    }
    assert mc.emails_sent == 12345
    assert (mc.fixed, mc.variable, mc.total) == (1322000, 242057, 1564057)
    # cost of revenue = 1440 + 617 + infrastructure 300000 + customer_success 40000
    assert mc.cost_of_revenue == 342057
    assert mc.sales_marketing == 200000
    # fixed first, in the order of the vocabulary, then variable, the computed lines last
    assert [line.category for line in mc.lines] == [
        "infrastructure", "personnel", "legal", "marketing", "sales", "customer_success", "payment_processing", "email_delivery"
    ]


def test_report_costs_cli_with_trend(cli, engine):
    march_2025(engine)
    res = cli("report", "costs", "--month", "2025-03", "--trend", "2", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert (doc["total"], doc["fixed"], doc["variable"], doc["emails_sent"]) == (1564057, 1322000, 242057, 12345)
    assert [(t["month"], t["total"]) for t in doc["trend"]] == [("2025-02", 1200000), ("2025-03", 1564057)]
    # Feb vs Jan: Jan had no costs → change undefined; Mar vs Feb: 1564057 / 1200000 − 1
    assert doc["trend"][0]["change"] is None
    assert doc["trend"][1]["change"] == float(Decimal(364057) / Decimal(1200000))
    share = {line["category"]: line["share"] for line in doc["lines"]}
    assert share["personnel"] == float(Decimal(1000000) / Decimal(1564057))
    res = cli("report", "costs", "--month", "2025-03")
    assert res.exit_code == 0 and "$15,640.57" in res.stdout and "Trend" in res.stdout
    res = cli("report", "costs", "--month", "2025-03", "--format", "csv")
    assert "payment_processing,variable,1440,usd," in res.stdout


def test_report_costs_empty_and_errors(cli):
    res = cli("report", "costs", "--month", "2025-03", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["total"] == 0 and all(line["share"] is None for line in doc["lines"])
    assert "no costs imported for 2025-03" in res.stderr
    res = cli("report", "costs", "--month", "2025-3")
    assert res.exit_code == 2 and "--month must be YYYY-MM, got '2025-3'" in res.stderr
    res = cli("report", "costs", "--month", "2025-03", "--trend", "0")
    assert res.exit_code == 2


def test_processing_and_email_costs_match_naive_oracle(engine):
    rng = random.Random(7)
    rows = []
    for _ in range(120):
        p = {
            "amount": rng.randint(1, 90000),
            "day": f"2025-{rng.choice(['02', '03'])}-{rng.randint(1, 28):02d}",
            "status": rng.choice(["succeeded", "refunded", "partially_refunded", "disputed", "failed", "pending"]),
            "fee": rng.choice([None, None, rng.randint(0, 3000)]),
        }
        rows.append(p)
        payment(engine, amount=p["amount"], day=p["day"], status=p["status"], fee=p["fee"])
    sent = {"2025-02": rng.randint(0, 5000), "2025-03": rng.randint(0, 5000)}
    for m, n in sent.items():
        emails(engine, n, f"{m}-10")
    for m in sent:
        exact = Decimal(0)
        for p in rows:
            if not p["day"].startswith(m):
                continue
            if p["fee"] is not None:
                exact += p["fee"]
            elif p["status"] in ("succeeded", "refunded", "partially_refunded", "disputed"):
                exact += Decimal(p["amount"]) * Decimal("2.9") / 100 + 30
        with engine.connect() as conn:
            mc = month_costs(conn, Month.parse(m), "usd", SETTINGS)
        assert mc.payment_processing == int(exact.quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))
        assert mc.email_delivery == int((sent[m] * Decimal("0.05")).quantize(Decimal(1), rounding="ROUND_HALF_EVEN"))


def test_fixed_stripe_fee_is_per_currency(engine):
    """DESIGN §4: 2.9 % + 30¢ per card charge, configurable per currency (PMFIN_STRIPE_FEE_FIXED)."""
    # USD $100.00: 290 + 30 = 320. EUR €100.00: 290 + 25 = 315 (reporting in EUR, no FX needed).
    # JPY ¥10,000 (zero-decimal): no fixed fee configured → 2.9 % only = 290, and a warning.
    payment(engine, amount=10000, day="2025-03-02")
    payment(engine, amount=10000, day="2025-03-02", currency="eur")
    payment(engine, amount=10000, day="2025-03-02", currency="jpy")
    settings = Settings.load({}, environ={"PMFIN_STRIPE_FEE_FIXED": "usd=30,eur=25"}, env_file=None)
    from pmfin.metrics.costs import processing_cost

    with engine.connect() as conn:
        costs, warnings = processing_cost(conn, Month(2025, 3), settings)
        eur = month_costs(conn, Month(2025, 3), "eur", settings)
    assert costs == {"usd": Decimal(320), "eur": Decimal(315), "jpy": Decimal(290)}
    assert warnings == [
        "no fixed Stripe fee configured for JPY (PMFIN_STRIPE_FEE_FIXED): 1 charge(s) without a recorded fee "
        "count only 2.9%"
    ]
    # In an EUR report the EUR fee counts, USD and JPY are left out for want of a rate (warned).
    assert eur.payment_processing == 315
    assert any("JPY (PMFIN_STRIPE_FEE_FIXED)" in w for w in eur.warnings)


def test_a_large_plan_is_summed_up_for_people_and_whole_for_programs(cli, engine, tmp_path):
    """200,000 rows took 318 s and 1.65 GB as one table. A plan longer than 50 rows is shown as a
    summary by currency and its first 20 rows; --format csv|json still give every row."""
    f = tmp_path / "big.csv"
    lines = ["month,category,kind,amount,currency"]
    lines += [f"2025-{m:02d},extra_{i},fixed,{i}.50,usd" for m in range(1, 13) for i in range(25)]
    lines += [f"2025-{m:02d},legal,fixed,100,eur" for m in range(1, 13)]
    f.write_text("\n".join(lines) + "\n")
    cost(engine, "2025-01", "extra_0", 50)  # unchanged: 0.50
    cost(engine, "2025-01", "extra_1", 99)  # changed: 1.50

    res = cli("costs", "import", str(f), "--dry-run", env={"COLUMNS": "150"})
    assert res.exit_code == 0, res.output
    assert "big.csv: would import 312 row(s), by currency" in res.stdout
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in res.stdout.splitlines() if line.startswith("│")]
    assert cells[:2] == [  # by currency: rows, new, changed, unchanged, from, to, total
        ["eur", "12", "12", "0", "0", "2025-01", "2025-12", "€1,200.00"],
        ["usd", "300", "298", "1", "1", "2025-01", "2025-12", "$3,750.00"],  # 12 × Σ(i + 0.50), i < 25
    ]
    assert "The first 20 of 312 rows" in res.stdout and len(cells) == 2 + 20
    assert cells[2:5] == [["2025-01", "extra_0", "fixed", "$0.50", "usd", "unchanged", "$0.50"],
                          ["2025-01", "extra_1", "fixed", "$1.50", "usd", "update", "$0.99"],
                          ["2025-01", "extra_2", "fixed", "$2.50", "usd", "insert", "—"]]
    assert "… and 292 more rows: all of them with --format csv or --format json" in res.stderr
    assert "would import 312 row(s) from big.csv: 310 new, 1 changed, 1 unchanged (dry run: nothing written)" in res.stderr

    res = cli("costs", "import", str(f), "--dry-run", "--format", "json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 312
    res = cli("costs", "import", str(f), "--format", "csv")
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 313
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pmfin_costs")).scalar_one() == 312
        assert conn.execute(text("SELECT amount_cents FROM pmfin_costs WHERE category = 'extra_1'"
                                 " AND month = '2025-01-01'")).scalar_one() == 150
