"""``pmfin reconcile fees|payments`` from the CLI, against the Stripe fake and a real PostgreSQL.

Each test plants a month (October 2026) with a known set of differences — one of each kind, plus
clean charges, a charge on the month's boundary and a refund — and checks that every difference is
found where it was planted and nowhere else. Fees by hand (2.9 % + 30¢, half up; platform 23 %):

    $100.00  Stripe 2.9 % = 290   + 30 = 320   application fee 2300   tenant 7700
    $200.00          580   + 30 = 610          4600
    $50.00           145   + 30 = 175          1150
    $80.00           232   + 30 = 262          1840                   tenant 6160
    $60.00           174   + 30 = 204          1380                   tenant 4620
    $120.00          348   + 30 = 378          2760
    $0.99            2.871 → 3 + 30 = 33       22.77 → 23             (23 < 33: negative margin)
    $150.00          435   + 30 = 465          3450
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing_fixtures import add_tenant
from pmfin.fees import FeeModel

UTC = dt.timezone.utc


def ts(text_: str) -> int:
    return int(dt.datetime.fromisoformat(text_).replace(tzinfo=UTC).timestamp())


def add_payment(engine, tenant: str, charge: dict | None, *, charge_id: str | None = None, amount=None, currency=None,
                status="succeeded", refunded=0, fee="stripe", app_fee="stripe", created=None, stream="connect") -> str:
    """The platform's payments row for ``charge`` as it would record it; overrides plant differences."""
    pid = str(uuid.uuid4())
    bt = (charge or {}).get("balance_transaction") or {}
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO payments (tenant_id, id, stripe_charge_id, stripe_account_id, revenue_stream, amount_cents,
                                      currency, status, refunded_cents, fee_cents, application_fee_cents, created_at)
                VALUES (:t, :id, :charge, :account, :stream, :amount, :currency, :status, :refunded, :fee, :app_fee, :created)
                """
            ),
            {
                "t": tenant, "id": pid, "charge": charge_id or charge["id"],
                "account": ((charge or {}).get("transfer_data") or {}).get("destination"), "stream": stream,
                "amount": amount if amount is not None else charge["amount"],
                "currency": currency or (charge or {}).get("currency", "usd"), "status": status, "refunded": refunded,
                "fee": bt.get("fee") if fee == "stripe" else fee,
                "app_fee": (charge or {}).get("application_fee_amount") if app_fee == "stripe" else app_fee,
                "created": created or dt.datetime.fromtimestamp(charge["created"], UTC),
            },
        )
    return pid


@pytest.fixture
def world(engine, stripe_fake):
    """Two tenants with connected accounts (A, B) and an account that belongs to no tenant (X)."""
    acc = {k: stripe_fake.accounts.add()["id"] for k in "ABX"}
    a = add_tenant(engine, "Acme", customer=None)
    b = add_tenant(engine, "Globex", customer=None)
    with engine.begin() as conn:
        for t, k in ((a, "A"), (b, "B")):
            conn.execute(text("UPDATE tenant_config SET stripe_account_id = :a WHERE tenant_id = :t"), {"a": acc[k], "t": t})
    return {"acc": acc, "A": a, "B": b}


def run(cli, stripe_env, kind, *args, code=1):
    result = cli("reconcile", kind, "--month", "2026-10", "--format", "json", *args, env=stripe_env)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def found(report) -> set[tuple]:
    return {(d["kind"], d["stripe_charge_id"], d["expected"], d["actual"]) for d in report["differences"]}


# -- fees -------------------------------------------------------------------------------------------


def test_fees_find_exactly_the_planted_differences(cli, engine, stripe_fake, stripe_env, world):
    pay = stripe_fake.payments
    acc, A, B = world["acc"], world["A"], world["B"]
    oct_ = ts("2026-10-15T12:00:00")
    clean = pay.add_charge(10_000, created=oct_, destination=acc["A"], application_fee_amount=2300)
    fee = pay.add_charge(20_000, created=oct_ + 1, destination=acc["A"], application_fee_amount=4600, fee=620)
    app = pay.add_charge(5_000, created=oct_ + 2, destination=acc["B"], application_fee_amount=1000)
    wrong_account = pay.add_charge(8_000, created=oct_ + 3, destination=acc["A"], application_fee_amount=1840,
                                   transfer_destination=acc["X"])
    wrong_net = pay.add_charge(6_000, created=oct_ + 4, destination=acc["B"], transfer_amount=5_000)
    recorded = pay.add_charge(12_000, created=oct_ + 5, destination=acc["A"], application_fee_amount=2760)
    small = pay.add_charge(99, created=oct_ + 6, destination=acc["B"], application_fee_amount=23)
    refunded = pay.add_charge(15_000, created=oct_ + 7, destination=acc["A"], application_fee_amount=3450)
    pay.refund(refunded["id"], 5_000)
    boundary = pay.add_charge(10_000, created=ts("2026-09-30T23:59:30"), destination=acc["B"], application_fee_amount=1000)
    outside = pay.add_charge(10_000, created=ts("2026-11-01T00:00:05"), destination=acc["B"], application_fee_amount=1)
    failed = pay.add_charge(10_000, created=oct_ + 8, destination=acc["A"], status="failed")
    not_connect = pay.add_charge(3_000, created=oct_ + 9)  # a plain platform charge: not checked here
    for c, t in ((clean, A), (fee, A), (app, B), (wrong_account, A), (wrong_net, B), (small, B), (refunded, A)):
        add_payment(engine, t, c, status="partially_refunded" if c is refunded else "succeeded",
                    refunded=5_000 if c is refunded else 0, app_fee=1000 if c is wrong_net else "stripe")
    add_payment(engine, A, recorded, fee=350)  # the platform recorded 350, Stripe took 378

    report = run(cli, stripe_env, "fees")
    assert found(report) == {
        ("fee_mismatch", fee["id"], 610, 620),
        ("application_fee_mismatch", app["id"], 1150, 1000),
        ("transfer_mismatch", wrong_account["id"], acc["A"], acc["X"]),
        ("transfer_mismatch", wrong_net["id"], 4620, 5000),
        ("recorded_fee_mismatch", recorded["id"], 378, 350),
        ("negative_margin", small["id"], 33, 23),
    }
    s = report["summary"]
    assert s["checked"] == 8 and s["matched"] == 2  # clean and refunded; boundary, outside, failed, plain: not checked
    assert s["by_kind"] == {"fee_mismatch": 1, "application_fee_mismatch": 1, "transfer_mismatch": 2,
                            "recorded_fee_mismatch": 1, "negative_margin": 1}
    by_kind = {(d["kind"], d["stripe_charge_id"]): d for d in report["differences"]}
    assert by_kind[("fee_mismatch", fee["id"])]["detail"]["fee_details"] == {"stripe_fee": 620}
    assert by_kind[("recorded_fee_mismatch", recorded["id"])]["detail"]["field"] == "fee_cents"
    assert by_kind[("application_fee_mismatch", app["id"])]["tenant_id"] == B
    assert {d["stripe_charge_id"] for d in report["differences"]}.isdisjoint(
        {clean["id"], refunded["id"], boundary["id"], outside["id"], failed["id"], not_connect["id"]})
    # one pass over the month (± a day) as 33 day slices: 100 a page, both expands, no request per charge
    listings = stripe_fake.requests_to("GET", "/v1/charges")
    assert all(r.params["expand"] == ["data.balance_transaction", "data.transfer"] and r.params["limit"] == "100"
               for r in listings)
    windows = sorted((int(r.params["created"]["gte"]), int(r.params["created"]["lt"])) for r in listings)
    assert len(windows) == 33 and windows[0][0] == ts("2026-09-30T00:00:00") and windows[-1][1] == ts("2026-11-02T00:00:00")
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))  # contiguous, no gap, no overlap
    assert {r.path for r in stripe_fake.requests} == {"/v1/charges"}

    # a tolerance of 10 minor units accepts the 10¢ fee difference (and nothing else changes)
    tolerant = run(cli, stripe_env, "fees", "--tolerance", "10")
    assert ("fee_mismatch", fee["id"], 610, 620) not in found(tolerant) and len(found(tolerant)) == 5


def test_a_clean_month_exits_0(cli, engine, stripe_fake, stripe_env, world):
    charge = stripe_fake.payments.add_charge(10_000, created=ts("2026-10-03T08:00:00"), destination=world["acc"]["A"],
                                             application_fee_amount=2300)
    add_payment(engine, world["A"], charge)
    for kind in ("fees", "payments"):
        report = run(cli, stripe_env, kind, code=0)
        assert report["differences"] == [] and report["summary"]["matched"] == 1


def test_tenant_filter(cli, engine, stripe_fake, stripe_env, world):
    acc = world["acc"]
    a = stripe_fake.payments.add_charge(5_000, created=ts("2026-10-03T08:00:00"), destination=acc["A"], application_fee_amount=1)
    b = stripe_fake.payments.add_charge(5_000, created=ts("2026-10-03T09:00:00"), destination=acc["B"], application_fee_amount=1)
    report = run(cli, stripe_env, "fees", "--tenant", world["B"])
    assert {d["stripe_charge_id"] for d in report["differences"]} == {b["id"]} and report["summary"]["checked"] == 1
    assert a["id"] not in json.dumps(report)


# -- payments ---------------------------------------------------------------------------------------


def test_payments_find_exactly_the_planted_differences(cli, engine, stripe_fake, stripe_env, world):
    pay = stripe_fake.payments
    A, B = world["A"], world["B"]
    oct_ = ts("2026-10-20T10:00:00")
    clean = pay.add_charge(10_000, created=oct_)
    amount = pay.add_charge(10_000, created=oct_ + 1)
    currency = pay.add_charge(4_900, created=oct_ + 2)
    disputed = pay.add_charge(7_500, created=oct_ + 3)
    pay.add_dispute(disputed["id"])
    refund = pay.add_charge(9_000, created=oct_ + 4)
    pay.refund(refund["id"], 5_000)
    unrecorded = pay.add_charge(2_500, created=oct_ + 5)
    failed = pay.add_charge(1_000, created=oct_ + 6, status="failed")
    # the platform dated this one a few seconds into October; Stripe in September: matched, not missing
    boundary = pay.add_charge(6_000, created=ts("2026-09-30T23:59:50"))
    # and this one in November for Stripe: not in October for the platform's side either way
    late = pay.add_charge(6_000, created=ts("2026-11-01T00:00:10"))

    add_payment(engine, A, clean, stream="subscription")
    pid_amount = add_payment(engine, A, amount, amount=9_900, stream="subscription")
    add_payment(engine, B, currency, currency="eur", stream="subscription")
    add_payment(engine, B, disputed, status="succeeded", stream="subscription")
    add_payment(engine, A, refund, status="partially_refunded", refunded=4_000, stream="subscription")
    add_payment(engine, A, failed, status="failed", stream="subscription")
    add_payment(engine, B, boundary, created=dt.datetime(2026, 10, 1, 0, 0, 5, tzinfo=UTC), stream="subscription")
    add_payment(engine, B, late, stream="subscription")  # row dated November: not this month's
    ghost = add_payment(engine, A, None, charge_id="ch_1GhostOfOctober", amount=3_000, currency="usd",
                        created=dt.datetime(2026, 10, 9, tzinfo=UTC), stream="subscription")

    report = run(cli, stripe_env, "payments")
    assert found(report) == {
        ("missing_in_stripe", "ch_1GhostOfOctober", None, 3000),
        ("missing_in_db", unrecorded["id"], 2500, None),
        ("amount_mismatch", amount["id"], 10000, 9900),
        ("currency_mismatch", currency["id"], "usd", "eur"),
        ("status_mismatch", disputed["id"], "disputed", "succeeded"),
        ("refund_mismatch", refund["id"], 5000, 4000),
    }
    rows = {d["kind"]: d for d in report["differences"]}
    assert rows["missing_in_stripe"]["payment_id"] == ghost and rows["missing_in_db"]["payment_id"] is None
    assert rows["amount_mismatch"]["payment_id"] == pid_amount and rows["amount_mismatch"]["tenant_id"] == A
    s = report["summary"]
    assert s["payments_rows"] == 8 and s["differences"] == 6  # 8 October rows (the November one is not)
    assert {"tenant_id": A, "currency": "usd", "amount": 100 + 1000 + 3000} in s["at_stake"]

    # CSV: one row per difference, for accountants
    csv = cli("reconcile", "payments", "--month", "2026-10", "--format", "csv", env=stripe_env)
    assert csv.exit_code == 1
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == "run,month,kind,stripe_charge_id,payment_id,tenant_id,expected,actual,currency,at_stake,detail"
    assert len(lines) == 7


def test_a_rerun_says_what_changed_and_show_replays_a_past_run(cli, engine, stripe_fake, stripe_env, world):
    pay = stripe_fake.payments
    a = pay.add_charge(10_000, created=ts("2026-10-02T10:00:00"))
    b = pay.add_charge(20_000, created=ts("2026-10-02T11:00:00"))
    pid = add_payment(engine, world["A"], a, amount=9_000, stream="subscription")
    first = run(cli, stripe_env, "payments")
    assert {d["kind"] for d in first["differences"]} == {"amount_mismatch", "missing_in_db"} and first["changes"] is None
    with engine.begin() as conn:  # the platform fixes its row; a new charge arrives unrecorded
        conn.execute(text("UPDATE payments SET amount_cents = 10000 WHERE id = :id"), {"id": pid})
    c = pay.add_charge(3_000, created=ts("2026-10-03T10:00:00"))
    second = run(cli, stripe_env, "payments")
    assert second["changes"] == {
        "resolved": [f"amount_mismatch:{a['id']}:{pid}:amount_cents"],
        "new": [f"missing_in_db:{c['id']}::"],
        "still_open": [f"missing_in_db:{b['id']}::"],
    }
    table = cli("reconcile", "payments", "--month", "2026-10", env=stripe_env)
    assert f"since run {second['run']} of 2026-10: 0 resolved, 0 new, 2 still open" in table.stderr
    shown = cli("reconcile", "show", str(first["run"]), "--format", "json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["differences"] == first["differences"]
    assert cli("reconcile", "show", "999999").stderr.strip() == "error: no reconciliation run 999999"


def test_an_interrupted_read_resumes_from_its_last_stored_page(cli, engine, stripe_fake, stripe_env, world):
    for i in range(250):  # three pages, all in the day slice of 2026-10-05
        stripe_fake.payments.add_charge(1_000 + i, created=ts("2026-10-05T00:00:00") + i)
    # One slice at a time, in order: Sep 30 … Oct 4 (five empty pages), then Oct 5's first page are
    # served; from Oct 5's second page on Stripe fails for good: the run stops (exit 2), its pages kept.
    stripe_fake.inject("delay", seconds=0, method="GET", path="/v1/charges", times=6)
    stripe_fake.inject("status", status=500, method="GET", path="/v1/charges", times=10)
    broken = cli("reconcile", "payments", "--month", "2026-10", "--concurrency", "1", env=stripe_env)
    assert broken.exit_code == 2 and "Stripe answered HTTP 500" in broken.stderr
    with engine.connect() as conn:
        run_id, status = conn.execute(text("SELECT id, status FROM pmfin_reconcile_runs")).one()
        slices = conn.execute(text("SELECT slice_start, cursor, pages, charges, done FROM pmfin_reconcile_slices "
                                   "WHERE run_id = :r ORDER BY slice_start"), {"r": run_id}).all()
    assert status == "reading" and len(slices) == 33  # Sep 30 … Nov 1: the month with a day's margin
    assert [s.done for s in slices[:5]] == [True] * 5 and all(s.charges == 0 for s in slices[:5])
    oct5 = slices[5]
    assert (oct5.pages, oct5.charges, oct5.done) == (1, 100, False) and oct5.cursor.startswith("ch_")
    shown = json.loads(cli("reconcile", "show", str(run_id), "--format", "json").stdout)
    assert shown["charges_read"] == 100 and shown["summary"]["status"].startswith("interrupted")

    stripe_fake.faults.clear()
    before = len(stripe_fake.requests_to("GET", "/v1/charges"))
    resumed = run(cli, stripe_env, "payments")  # 250 charges without payments rows: missing_in_db
    assert resumed["run"] == run_id and resumed["resumed"] is True and resumed["charges_read"] == 250
    gets = stripe_fake.requests_to("GET", "/v1/charges")[before:]
    resumed_oct5 = [g for g in gets if g.params["created"]["gte"] == str(ts("2026-10-05T00:00:00"))]
    assert resumed_oct5[0].params["starting_after"] == oct5.cursor and len(resumed_oct5) == 2  # pages 2 and 3 only
    done_days = {str(ts(f"2026-{d}T00:00:00")) for d in ("09-30", "10-01", "10-02", "10-03", "10-04")}
    assert not [g for g in gets if g.params["created"]["gte"] in done_days]  # finished slices are not read again
    assert resumed["summary"]["by_kind"]["missing_in_db"] == 250


def test_record_adjustments_and_decide_them(cli, engine, stripe_fake, stripe_env, world):
    charge = stripe_fake.payments.add_charge(12_000, created=ts("2026-10-10T10:00:00"), destination=world["acc"]["A"],
                                             application_fee_amount=2760)
    pid = add_payment(engine, world["A"], charge, fee=350)
    report = run(cli, stripe_env, "fees", "--record-adjustments")
    assert found(report) == {("recorded_fee_mismatch", charge["id"], 378, 350)}
    again = run(cli, stripe_env, "fees", "--record-adjustments")  # not proposed twice
    listed = json.loads(cli("reconcile", "adjustments", "list", "--status", "proposed", "-f", "json").stdout)
    assert len(listed) == 1
    adj = listed[0]
    assert (adj["field"], adj["current_value"], adj["proposed_value"], adj["payment_id"]) == ("fee_cents", "350", "378", pid)
    assert adj["action"] == "set payments.fee_cents to Stripe's figure" and adj["run_id"] == report["run"]
    approved = cli("reconcile", "adjustments", "approve", str(adj["id"]), "--note", "checked the dashboard", "-f", "json")
    assert approved.exit_code == 0 and json.loads(approved.stdout)["status"] == "approved"
    twice = cli("reconcile", "adjustments", "reject", str(adj["id"]))
    assert twice.exit_code == 2 and twice.stderr.startswith(f"error: adjustment {adj['id']} was already approved")
    with engine.connect() as conn:  # pmfin never writes the platform's payments
        assert conn.execute(text("SELECT fee_cents FROM payments WHERE id = :id"), {"id": pid}).scalar_one() == 350
    assert again["run"] != report["run"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--month", "2026-13"], "--month"),
        (["--month", "2999-01"], "has not begun yet"),
        (["--month", "2026-10", "--tenant", "nope"], "tenant id must be a UUID"),
        (["--month", "2026-10", "--tenant", "00000000-0000-4000-8000-000000000000"], "no tenant with id"),
    ],
)
def test_bad_input_is_one_line_and_asks_stripe_nothing(cli, stripe_fake, stripe_env, args, message):
    result = cli("reconcile", "fees", *args, env=stripe_env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert stripe_fake.requests == []


# -- the fee model, by hand -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, rounding, stripe_fee, app_fee",
    [
        (50, "usd", "half_up", 31, 12),  # 1.45 → 1, + 30; 11.5 → 12
        (99, "usd", "half_up", 33, 23),  # 2.871 → 3, + 30; 22.77 → 23
        (500, "usd", "half_up", 45, 115),  # 14.5 → 15 (Stripe's own rounding), + 30
        (500, "usd", "half_even", 44, 115),  # 14.5 → 14, + 30
        (100_000_001, "usd", "half_up", 2_900_030, 23_000_000),  # $1,000,000.01: 2,900,000.029 → 2,900,000, + 30
        (10_000, "eur", "half_up", 315, 2_300),  # + 25 (EUR's fixed fee)
        (10_000, "jpy", "half_up", 290, 2_300),  # ¥10,000: whole yen, no fixed fee configured for JPY
        (1_050, "jpy", "half_even", 30, 242),  # 30.45 → 30; 241.5 → 242 (half to even)
    ],
)
def test_fee_model_rounding(amount, currency, rounding, stripe_fee, app_fee):
    model = FeeModel(Decimal("2.9"), {"usd": 30, "eur": 25}, Decimal("0.23"), rounding)
    assert model.stripe_fee(amount, currency) == stripe_fee
    assert model.application_fee(amount) == app_fee
    assert model.application_fee(amount) + model.tenant_share(amount) == amount
