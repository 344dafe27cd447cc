"""Reconciliation against Stripe's ledger (issue 8): ``fees`` and ``payments`` for one month.

A run reads Stripe's charges of the month with a day's margin on each side — one pass, 100 a
page, ``expand[]=data.balance_transaction`` and ``expand[]=data.transfer``, no request per
charge — as day slices read a few at a time (one cursor cannot overlap its pages; the shared rate
limiter paces them all), and stores each page in ``pmfin_stripe_charges`` (typed columns beside
the raw object) together with its slice's cursor, in one transaction. An interrupted run is
resumed from each slice's last stored page by the next run of the same month (``starting_after``). The comparison then runs
over what was stored:

- ``fees``: every succeeded Connect charge (``transfer_data.destination`` set) created in the
  month, against the fee model (``pmfin.fees``) and against the platform's ``payments`` row —
  ``fee_mismatch``, ``application_fee_mismatch``, ``transfer_mismatch``,
  ``recorded_fee_mismatch``, ``negative_margin``. Rows stream from Postgres, memory stays flat.
- ``payments``: every ``payments`` row of the month against the charges, matched by
  ``stripe_charge_id`` in one SQL join — ``missing_in_stripe``, ``missing_in_db``,
  ``amount_mismatch``, ``currency_mismatch``, ``status_mismatch``, ``refund_mismatch``.

Each run and its differences are stored; a rerun of the same month says what changed since the
previous one (resolved, new, still open). pmfin never writes the platform's ``payments``:
``record_adjustments`` proposes one adjustment per difference for a person to approve.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.errors import UsageError
from pmfin.fees import FeeModel
from pmfin.months import Month
from pmfin.stripe_ops.client import PmfinStripeClient
from pmfin.stripe_ops.invoices import stripe_call

MARGIN = dt.timedelta(days=1)
SLICE = dt.timedelta(days=1)  # the window is read as day slices, several at a time
RESUME_WITHIN = dt.timedelta(hours=24)  # an older unfinished run is started afresh (charges move on)
FEE_KINDS = ("fee_mismatch", "application_fee_mismatch", "transfer_mismatch", "recorded_fee_mismatch", "negative_margin")
PAYMENT_KINDS = ("missing_in_stripe", "missing_in_db", "amount_mismatch", "currency_mismatch", "status_mismatch",
                 "refund_mismatch")
KINDS = {"fees": FEE_KINDS, "payments": PAYMENT_KINDS}


@dataclass(frozen=True)
class Difference:
    kind: str
    stripe_charge_id: str | None
    payment_id: str | None
    tenant_id: str | None
    expected: int | str | None
    actual: int | str | None
    currency: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    at_stake: int = 0  # minor units in question

    @property
    def key(self) -> str:
        part = self.detail.get("field", "")
        return f"{self.kind}:{self.stripe_charge_id or ''}:{self.payment_id or ''}:{part}"


@dataclass
class RunReport:
    run: int
    kind: str
    month: str
    tenant_id: str | None
    resumed: bool
    charges_read: int
    pages: int
    summary: dict[str, Any]
    differences: list[Difference]
    changes: dict[str, list[str]] | None  # resolved / new / still_open keys, against the previous run
    previous_run: int | None
    adjustments: int = 0


# -- reading Stripe ---------------------------------------------------------------------------------


def _window(month: Month) -> tuple[dt.datetime, dt.datetime]:
    return month.start - MARGIN, month.end + MARGIN


def _ts(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value is not None else None


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value


def charge_row(charge: dict, run_id: int) -> dict[str, Any]:
    """A charge as Stripe sent it → the typed columns of ``pmfin_stripe_charges`` (+ raw)."""
    bt = charge.get("balance_transaction") if isinstance(charge.get("balance_transaction"), dict) else {}
    transfer = charge.get("transfer") if isinstance(charge.get("transfer"), dict) else {}
    tdata = charge.get("transfer_data") or {}
    return {
        "id": charge["id"],
        "created": _ts(charge["created"]),
        "amount": int(charge["amount"]),
        "currency": charge["currency"].lower(),
        "status": charge.get("status") or "succeeded",
        "amount_refunded": int(charge.get("amount_refunded") or 0),
        "disputed": bool(charge.get("disputed")),
        "customer": _id(charge.get("customer")),
        "payment_intent": _id(charge.get("payment_intent")),
        "destination": _id(tdata.get("destination")),
        "transfer_data_amount": tdata.get("amount"),
        "application_fee_amount": charge.get("application_fee_amount"),
        "transfer_id": transfer.get("id") or _id(charge.get("transfer")),
        "transfer_amount": transfer.get("amount"),
        "transfer_destination": _id(transfer.get("destination")),
        "fee": bt.get("fee"),
        "fee_details": json.dumps(bt.get("fee_details")) if bt else None,
        "net": bt.get("net"),
        "raw": json.dumps(charge),
        "run": run_id,
    }


_UPSERT = text(
    """
    INSERT INTO pmfin_stripe_charges AS c
        (id, created, amount, currency, status, amount_refunded, disputed, customer, payment_intent, destination,
         transfer_data_amount, application_fee_amount, transfer_id, transfer_amount, transfer_destination, fee,
         fee_details, net, raw, read_by_run, read_at)
    VALUES (:id, :created, :amount, :currency, :status, :amount_refunded, :disputed, :customer, :payment_intent,
            :destination, :transfer_data_amount, :application_fee_amount, :transfer_id, :transfer_amount,
            :transfer_destination, :fee, CAST(:fee_details AS jsonb), :net, CAST(:raw AS jsonb), :run, now())
    ON CONFLICT (id) DO UPDATE SET
        created = EXCLUDED.created, amount = EXCLUDED.amount, currency = EXCLUDED.currency, status = EXCLUDED.status,
        amount_refunded = EXCLUDED.amount_refunded, disputed = EXCLUDED.disputed, customer = EXCLUDED.customer,
        payment_intent = EXCLUDED.payment_intent, destination = EXCLUDED.destination,
        transfer_data_amount = EXCLUDED.transfer_data_amount, application_fee_amount = EXCLUDED.application_fee_amount,
        transfer_id = EXCLUDED.transfer_id, transfer_amount = EXCLUDED.transfer_amount,
        transfer_destination = EXCLUDED.transfer_destination, fee = EXCLUDED.fee, fee_details = EXCLUDED.fee_details,
        net = EXCLUDED.net, raw = EXCLUDED.raw, read_by_run = EXCLUDED.read_by_run, read_at = EXCLUDED.read_at
    """
)


def _start_run(conn: Connection, kind: str, month: Month, tenant_id: str | None, now: dt.datetime) -> tuple[int, bool]:
    """(run id, resumed?): an unfinished recent run of the same month resumes where its slices stopped."""
    row = conn.execute(
        text(
            """
            SELECT id FROM pmfin_reconcile_runs
            WHERE kind = :kind AND month = :month AND tenant_id IS NOT DISTINCT FROM CAST(:t AS uuid)
              AND status = 'reading' AND started_at > :since
            ORDER BY id DESC LIMIT 1 FOR UPDATE
            """
        ),
        {"kind": kind, "month": month.first_day, "t": tenant_id, "since": now - RESUME_WITHIN},
    ).one_or_none()
    if row is not None:
        return row.id, True
    start, end = _window(month)
    run_id = conn.execute(
        text(
            """
            INSERT INTO pmfin_reconcile_runs (kind, month, tenant_id, window_start, window_end)
            VALUES (:kind, :month, :t, :start, :end) RETURNING id
            """
        ),
        {"kind": kind, "month": month.first_day, "t": tenant_id, "start": start, "end": end},
    ).scalar_one()
    slices = []
    at = start
    while at < end:
        slices.append({"run": run_id, "start": at, "end": min(at + SLICE, end)})
        at += SLICE
    conn.execute(text("INSERT INTO pmfin_reconcile_slices (run_id, slice_start, slice_end) VALUES (:run, :start, :end)"),
                 slices)
    return run_id, False


def _read_slice(engine: Engine, client: PmfinStripeClient, run_id: int, month: Month, sl,
                on_page: Callable[[int], None]) -> None:
    """Page through one slice of the window, storing each page with the slice's cursor."""
    params: dict[str, Any] = {
        "created": {"gte": int(sl.slice_start.timestamp()), "lt": int(sl.slice_end.timestamp())},
        "limit": 100,
        "expand": ["data.balance_transaction", "data.transfer"],
    }
    cursor = sl.cursor
    while True:
        if cursor:
            params["starting_after"] = cursor
        with stripe_call(client, f"list Stripe's charges of {month}"):
            # The SDK's raw request (same requestor: retries, pacing, error classes) hands back the
            # parsed JSON: building StripeObjects of 100 expanded charges and converting them back
            # cost ~4 ms a charge, ten times the request itself (benchmarks/bench_reconcile.py).
            page = client.raw_request("get", "/v1/charges", **params).data
        charges = page["data"]
        done = not page.get("has_more") or not charges
        with engine.begin() as conn:
            if charges:
                conn.execute(_UPSERT, [charge_row(c, run_id) for c in charges])
                cursor = charges[-1]["id"]
            conn.execute(
                text("UPDATE pmfin_reconcile_slices SET cursor = :cursor, pages = pages + 1, charges = charges + :n, "
                     "done = :done WHERE run_id = :run AND slice_start = :start"),
                {"cursor": cursor, "n": len(charges), "done": done, "run": run_id, "start": sl.slice_start},
            )
        on_page(len(charges))
        if done:
            return


def read_charges(engine: Engine, client: PmfinStripeClient, run_id: int, month: Month,
                 on_page: Callable[[int], None] | None = None, *, concurrency: int = 4) -> tuple[int, int]:
    """Read the month's charges (with margin) as day slices, ``concurrency`` at a time, every request
    paced by the client's shared rate limiter; each page is stored with its slice's cursor in one
    transaction, so an interrupted run resumes each slice where it stopped. Returns (charges read
    by this run in all, pages)."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
    from threading import Lock

    with engine.connect() as conn:
        todo = conn.execute(
            text("SELECT slice_start, slice_end, cursor FROM pmfin_reconcile_slices WHERE run_id = :run AND NOT done "
                 "ORDER BY slice_start"), {"run": run_id}).all()
        read = conn.execute(text("SELECT coalesce(sum(charges), 0) FROM pmfin_reconcile_slices WHERE run_id = :run"),
                            {"run": run_id}).scalar_one()
    lock = Lock()
    count = [int(read)]

    def page_read(n: int) -> None:
        with lock:
            count[0] += n
            total = count[0]
        if on_page:
            on_page(total)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="pmfin-reconcile") as pool:
        pending = {pool.submit(_read_slice, engine, client, run_id, month, sl, page_read) for sl in todo}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    future.result()  # the first failure stops the read (the stored pages stay)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    with engine.begin() as conn:
        read, pages = conn.execute(
            text("UPDATE pmfin_reconcile_runs r SET charges_read = s.charges, pages = s.pages, read_at = clock_timestamp() "
                 "FROM (SELECT sum(charges) AS charges, sum(pages) AS pages FROM pmfin_reconcile_slices WHERE run_id = :run) s "
                 "WHERE r.id = :run RETURNING r.charges_read, r.pages"), {"run": run_id}).one()
    return int(read), int(pages)


# -- comparing ------------------------------------------------------------------------------------


_TENANT_OF_CHARGE = """
coalesce(
    (SELECT p.tenant_id FROM payments p WHERE p.stripe_charge_id = c.id LIMIT 1),
    (SELECT tc.tenant_id FROM tenant_config tc WHERE tc.stripe_account_id = c.destination LIMIT 1),
    (SELECT tc.tenant_id FROM tenant_config tc WHERE tc.stripe_customer_id = c.customer LIMIT 1)
)
"""

_FEES_SQL = f"""
SELECT c.id, c.amount, c.currency, c.destination, c.transfer_data_amount, c.application_fee_amount,
       c.transfer_id, c.transfer_amount, c.transfer_destination, c.fee, c.fee_details,
       p.id AS payment_id, p.fee_cents, p.application_fee_cents,
       {_TENANT_OF_CHARGE} AS tenant_id,
       (SELECT tc.stripe_account_id FROM tenant_config tc WHERE tc.tenant_id = {_TENANT_OF_CHARGE}) AS tenant_account
FROM pmfin_stripe_charges c
LEFT JOIN payments p ON p.stripe_charge_id = c.id
WHERE c.read_by_run = :run AND c.created >= :start AND c.created < :end
  AND c.status = 'succeeded' AND c.destination IS NOT NULL
ORDER BY c.created, c.id
"""


def fee_differences(row, model: FeeModel, tolerance: int) -> tuple[list[Difference], bool]:
    """The differences of one Connect charge (pure). Second value: whether the charge was checked."""
    out: list[Difference] = []
    cur = row.currency.strip().lower()
    tenant = str(row.tenant_id) if row.tenant_id else None
    payment = str(row.payment_id) if row.payment_id else None

    def diff(kind: str, expected: int | None, actual: int | None, **detail) -> None:
        if expected is None and actual is None:
            return
        if expected is not None and actual is not None and abs(expected - actual) <= tolerance:
            return
        stake = abs((expected or 0) - (actual or 0))
        out.append(Difference(kind, row.id, payment, tenant, expected, actual, cur, detail, stake))

    details = row.fee_details if isinstance(row.fee_details, list) else json.loads(row.fee_details or "null") or []
    by_type: dict[str, int] = {}
    for d in details:
        by_type[d.get("type", "?")] = by_type.get(d.get("type", "?"), 0) + int(d.get("amount") or 0)
    model_fee = model.stripe_fee(row.amount, cur)
    if row.fee is not None:
        diff("fee_mismatch", model_fee, int(row.fee), fee_details=by_type,
             **({"note": f"no fixed fee configured for {cur.upper()} (PMFIN_STRIPE_FEE_FIXED)"} if model.fixed_fee(cur) is None else {}))
    share = model.application_fee(row.amount)
    transferred = row.transfer_amount if row.transfer_amount is not None else row.transfer_data_amount
    if row.application_fee_amount is not None:
        # Stripe transfers the full amount and takes the application fee back: a wrong fee is an
        # application_fee_mismatch; the transfer is wrong only when it is not the full amount.
        taken = int(row.application_fee_amount)
        net = int(transferred) - taken if transferred is not None else None
        diff("application_fee_mismatch", share, taken, amount=row.amount, platform_share=str(model.platform_share))
        if transferred is not None and int(transferred) != row.amount:
            diff("transfer_mismatch", model.tenant_share(row.amount), net, field="net", amount=row.amount,
                 transfer=row.transfer_id, transferred=int(transferred), application_fee=taken)
    else:  # transfer_data[amount]: the transfer is already the tenant's net, no application fee
        net = int(transferred) if transferred is not None else None
        taken = row.amount - net if net is not None else None
        diff("transfer_mismatch", model.tenant_share(row.amount), net, field="net", amount=row.amount,
             transfer=row.transfer_id, transferred=net)
    account = row.transfer_destination or row.destination
    if row.tenant_account and account and account != row.tenant_account:
        out.append(Difference("transfer_mismatch", row.id, payment, tenant, row.tenant_account, account, cur,
                              {"field": "destination", "transfer": row.transfer_id}, int(row.transfer_amount or row.amount)))
    if row.payment_id is not None:
        if row.fee is not None:
            diff("recorded_fee_mismatch", int(row.fee), None if row.fee_cents is None else int(row.fee_cents), field="fee_cents")
        if taken is not None:
            diff("recorded_fee_mismatch", taken, None if row.application_fee_cents is None else int(row.application_fee_cents),
                 field="application_fee_cents")
    if taken is not None and row.fee is not None and taken < int(row.fee):
        out.append(Difference("negative_margin", row.id, payment, tenant, int(row.fee), taken, cur,
                              {"margin": taken - int(row.fee), "amount": row.amount}, int(row.fee) - taken))
    return out, True


_STRIPE_STATUS = """
CASE WHEN c.status = 'failed' THEN 'failed'
     WHEN c.status = 'pending' THEN 'pending'
     WHEN c.disputed THEN 'disputed'
     WHEN c.amount > 0 AND c.amount_refunded >= c.amount THEN 'refunded'
     WHEN c.amount_refunded > 0 THEN 'partially_refunded'
     ELSE 'succeeded' END
"""

_PAYMENTS_SQL = f"""
WITH ch AS (
    SELECT c.*, {_STRIPE_STATUS} AS stripe_status, {_TENANT_OF_CHARGE} AS tenant_id
    FROM pmfin_stripe_charges c WHERE c.read_by_run = :run
),
p AS (
    SELECT * FROM payments
    WHERE created_at >= :start AND created_at < :end AND (CAST(:t AS uuid) IS NULL OR tenant_id = CAST(:t AS uuid))
)
SELECT 'missing_in_stripe' AS kind, p.stripe_charge_id AS charge_id, p.id AS payment_id, p.tenant_id,
       NULL::text AS expected, p.amount_cents::text AS actual, lower(p.currency::text) AS currency, p.amount_cents AS at_stake,
       jsonb_build_object('status', p.status, 'created_at', p.created_at) AS detail
FROM p WHERE p.stripe_charge_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ch WHERE ch.id = p.stripe_charge_id)
UNION ALL
SELECT 'missing_in_db', ch.id, NULL, ch.tenant_id, ch.amount::text, NULL, lower(ch.currency::text), ch.amount,
       jsonb_build_object('status', ch.stripe_status, 'created', ch.created, 'customer', ch.customer, 'destination', ch.destination)
FROM ch
WHERE ch.created >= :start AND ch.created < :end
  AND (CAST(:t AS uuid) IS NULL OR ch.tenant_id = CAST(:t AS uuid))
  AND NOT EXISTS (SELECT 1 FROM payments x WHERE x.stripe_charge_id = ch.id)
UNION ALL
SELECT k.kind, ch.id, p.id, p.tenant_id, k.expected, k.actual, lower(ch.currency::text), k.at_stake, k.detail
FROM p JOIN ch ON ch.id = p.stripe_charge_id
CROSS JOIN LATERAL (VALUES
    ('amount_mismatch', ch.amount::text, p.amount_cents::text, abs(ch.amount - p.amount_cents),
     jsonb_build_object('field', 'amount_cents'), ch.amount <> p.amount_cents),
    ('currency_mismatch', lower(ch.currency::text), lower(p.currency::text), ch.amount,
     jsonb_build_object('field', 'currency'), lower(ch.currency::text) <> lower(p.currency::text)),
    ('status_mismatch', ch.stripe_status, p.status, ch.amount,
     jsonb_build_object('field', 'status', 'amount_refunded', ch.amount_refunded, 'disputed', ch.disputed),
     ch.stripe_status <> p.status),
    ('refund_mismatch', ch.amount_refunded::text, p.refunded_cents::text, abs(ch.amount_refunded - p.refunded_cents),
     jsonb_build_object('field', 'refunded_cents'), ch.amount_refunded <> p.refunded_cents)
) AS k(kind, expected, actual, at_stake, detail, differs)
WHERE k.differs
ORDER BY 1, 2 NULLS LAST, 3
"""

_CHECKED_PAYMENTS = """
SELECT count(*) AS rows, count(c.id) AS matched
FROM payments p LEFT JOIN pmfin_stripe_charges c ON c.id = p.stripe_charge_id AND c.read_by_run = :run
WHERE p.created_at >= :start AND p.created_at < :end AND (CAST(:t AS uuid) IS NULL OR p.tenant_id = CAST(:t AS uuid))
"""


def _money(value: str | None) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return value


def payment_differences(conn: Connection, run_id: int, month: Month, tenant_id: str | None) -> Iterator[Difference]:
    rows = conn.execution_options(yield_per=1000).execute(
        text(_PAYMENTS_SQL), {"run": run_id, "start": month.start, "end": month.end, "t": tenant_id})
    for r in rows:
        detail = r.detail if isinstance(r.detail, dict) else json.loads(r.detail or "{}")
        yield Difference(r.kind, r.charge_id, str(r.payment_id) if r.payment_id else None,
                         str(r.tenant_id) if r.tenant_id else None, _money(r.expected), _money(r.actual),
                         r.currency, detail, int(r.at_stake or 0))


def _fee_rows(conn: Connection, run_id: int, month: Month, tenant_id: str | None):
    sql = _FEES_SQL
    params: dict[str, Any] = {"run": run_id, "start": month.start, "end": month.end}
    if tenant_id:
        sql = f"SELECT * FROM ({_FEES_SQL}) f WHERE f.tenant_id = CAST(:t AS uuid)"
        params["t"] = tenant_id
    return conn.execution_options(yield_per=1000).execute(text(sql), params)


# -- a run ------------------------------------------------------------------------------------------


def reconcile(
    engine: Engine,
    client: PmfinStripeClient,
    model: FeeModel,
    kind: str,
    month: Month,
    *,
    tenant_id: str | None = None,
    tolerance: int = 0,
    record_adjustments: bool = False,
    on_page: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
    concurrency: int = 4,
) -> RunReport:
    if kind not in KINDS:
        raise UsageError(f"unknown reconciliation {kind!r}")
    if month > Month.of(now or dt.datetime.now(dt.timezone.utc)):
        raise UsageError(f"--month {month} has not begun yet: nothing to reconcile")
    now = now or dt.datetime.now(dt.timezone.utc)
    from pmfin.db.migrate import require_contract

    with engine.begin() as conn:
        require_contract(conn, ("payments", "tenant_config", "pmfin_reconcile_runs"))
        if tenant_id is not None and conn.execute(text("SELECT 1 FROM tenants WHERE id = :t"), {"t": tenant_id}).first() is None:
            raise UsageError(f"no tenant with id {tenant_id}")
        run_id, resumed = _start_run(conn, kind, month, tenant_id, now)
    read, pages = read_charges(engine, client, run_id, month, on_page, concurrency=concurrency)

    differences: list[Difference] = []
    checked = 0
    with engine.connect() as conn:
        if kind == "fees":
            for row in _fee_rows(conn, run_id, month, tenant_id):
                found, _ = fee_differences(row, model, tolerance)
                differences.extend(found)
                checked += 1
            matched = checked - len({d.stripe_charge_id for d in differences})
            rows_checked = None
        else:
            differences = list(payment_differences(conn, run_id, month, tenant_id))
            counts = conn.execute(text(_CHECKED_PAYMENTS), {"run": run_id, "start": month.start, "end": month.end,
                                                            "t": tenant_id}).one()
            rows_checked = counts.rows
            checked = counts.rows
            differing_payments = {d.payment_id for d in differences if d.payment_id}
            matched = counts.matched - len({p for p in differing_payments})
    summary = summarize(kind, checked, matched, differences, rows_checked)
    with engine.begin() as conn:
        previous = conn.execute(
            text(
                """
                SELECT id FROM pmfin_reconcile_runs
                WHERE kind = :kind AND month = :month AND tenant_id IS NOT DISTINCT FROM CAST(:t AS uuid)
                  AND status = 'done' AND id <> :id
                ORDER BY id DESC LIMIT 1
                """
            ),
            {"kind": kind, "month": month.first_day, "t": tenant_id, "id": run_id},
        ).scalar_one_or_none()
        conn.execute(text("DELETE FROM pmfin_reconcile_differences WHERE run_id = :id"), {"id": run_id})
        if differences:
            conn.execute(
                text(
                    """
                    INSERT INTO pmfin_reconcile_differences
                        (run_id, key, kind, stripe_charge_id, payment_id, tenant_id, expected, actual, currency, at_stake, detail)
                    VALUES (:run, :key, :kind, :charge, :payment, :tenant, :expected, :actual, :currency, :stake, CAST(:detail AS jsonb))
                    ON CONFLICT (run_id, key) DO NOTHING
                    """
                ),
                [
                    {"run": run_id, "key": d.key, "kind": d.kind, "charge": d.stripe_charge_id, "payment": d.payment_id,
                     "tenant": d.tenant_id, "expected": None if d.expected is None else str(d.expected),
                     "actual": None if d.actual is None else str(d.actual), "currency": d.currency, "stake": d.at_stake,
                     "detail": json.dumps(d.detail, default=str)}
                    for d in differences
                ],
            )
        changes = None
        if previous is not None:
            before = set(conn.execute(text("SELECT key FROM pmfin_reconcile_differences WHERE run_id = :p"),
                                      {"p": previous}).scalars())
            now_keys = {d.key for d in differences}
            changes = {"resolved": sorted(before - now_keys), "new": sorted(now_keys - before),
                       "still_open": sorted(before & now_keys)}
            summary["changes"] = {k: len(v) for k, v in changes.items()}
        adjustments = _propose(conn, run_id, differences) if record_adjustments else 0
        conn.execute(
            text("UPDATE pmfin_reconcile_runs SET status = 'done', finished_at = now(), previous_run_id = :p, "
                 "summary = CAST(:s AS jsonb) WHERE id = :id"),
            {"p": previous, "s": json.dumps(summary, default=str), "id": run_id},
        )
    return RunReport(run_id, kind, str(month), tenant_id, resumed, read, pages, summary, differences, changes, previous,
                     adjustments)


def summarize(kind: str, checked: int, matched: int, differences: list[Difference], rows: int | None) -> dict[str, Any]:
    by_kind = {k: 0 for k in KINDS[kind]}
    stake: dict[tuple[str | None, str | None], int] = {}
    for d in differences:
        by_kind[d.kind] = by_kind.get(d.kind, 0) + 1
        stake[(d.tenant_id, d.currency)] = stake.get((d.tenant_id, d.currency), 0) + d.at_stake
    summary: dict[str, Any] = {
        "checked": checked,
        "matched": max(0, matched),
        "differences": len(differences),
        "by_kind": by_kind,
        "at_stake": [{"tenant_id": t, "currency": c, "amount": a}
                     for (t, c), a in sorted(stake.items(), key=lambda kv: (-kv[1], str(kv[0][0]), str(kv[0][1])))],
    }
    if rows is not None:
        summary["payments_rows"] = rows
    return summary


# -- adjustments -------------------------------------------------------------------------------------

# What a person would do about each kind. Kinds that are a payments column propose its new value;
# the others say the figures in words ({e}: expected, {a}: actual, as money where they are money).
_ACTIONS = {
    "recorded_fee_mismatch": "set payments.{field} to Stripe's figure",
    "amount_mismatch": "set payments.amount_cents to Stripe's amount",
    "currency_mismatch": "correct payments.currency to Stripe's",
    "status_mismatch": "set payments.status to what Stripe shows",
    "refund_mismatch": "set payments.refunded_cents to Stripe's amount_refunded",
    "missing_in_db": "record the charge of {e} in payments",
    "missing_in_stripe": "find the charge of {a} (wrong id, another Stripe account, never made) or remove the row",
    "fee_mismatch": "Stripe took {a}, the fee model says {e}: accept it (card type, international) or raise it with Stripe",
    "application_fee_mismatch": "the application fee taken was {a}, the platform share is {e}: correct it where the charge is made",
    "transfer_mismatch": "the tenant netted {a}, its share is {e}: correct the transfer",
    "transfer_mismatch:destination": "the transfer went to {a}, the tenant's account is {e}: have it reversed and sent to the tenant",
    "negative_margin": "Stripe's fee {e} is more than the application fee {a}: review the pricing of small charges",
}
PAYMENT_FIELDS = ("fee_cents", "application_fee_cents", "amount_cents", "currency", "status", "refunded_cents")


def _propose(conn: Connection, run_id: int, differences: list[Difference]) -> int:
    from pmfin.money import format_money

    def shown(v):
        return format_money(v, d.currency or "usd") if isinstance(v, int) else (v or "—")

    made = 0
    for d in differences:
        fld = d.detail.get("field")
        fld = fld if fld in PAYMENT_FIELDS else None
        template = _ACTIONS.get(f"{d.kind}:{d.detail.get('field')}", _ACTIONS[d.kind])
        action = template.format(field=fld or "", e=shown(d.expected), a=shown(d.actual))
        new = conn.execute(
            text(
                """
                INSERT INTO pmfin_reconcile_adjustments
                    (key, run_id, kind, tenant_id, payment_id, stripe_charge_id, field, current_value, proposed_value,
                     action, currency)
                VALUES (:key, :run, :kind, :tenant, :payment, :charge, :field, :current, :proposed, :action, :currency)
                ON CONFLICT (key) WHERE status = 'proposed' DO NOTHING
                RETURNING id
                """
            ),
            {"key": d.key, "run": run_id, "kind": d.kind, "tenant": d.tenant_id, "payment": d.payment_id,
             "charge": d.stripe_charge_id, "field": fld,
             "current": None if fld is None or d.actual is None else str(d.actual),
             "proposed": None if fld is None or d.expected is None else str(d.expected),
             "action": action, "currency": d.currency},
        ).scalar_one_or_none()
        made += new is not None
    return made


@dataclass(frozen=True)
class Adjustment:
    id: int
    status: str
    kind: str
    tenant_id: str | None
    payment_id: str | None
    stripe_charge_id: str | None
    field: str | None
    current_value: str | None
    proposed_value: str | None
    currency: str | None
    action: str
    run_id: int
    created_at: dt.datetime
    decided_at: dt.datetime | None
    decided_by: str | None
    note: str | None


_ADJ_COLUMNS = ("id, status, kind, tenant_id, payment_id, stripe_charge_id, field, current_value, proposed_value, "
                "currency, action, run_id, created_at, decided_at, decided_by, note")


def _adjustment(r) -> Adjustment:
    return Adjustment(r.id, r.status, r.kind, str(r.tenant_id) if r.tenant_id else None,
                      str(r.payment_id) if r.payment_id else None, *r[5:])


def list_adjustments(engine: Engine, *, status: str | None = None, run_id: int | None = None) -> list[Adjustment]:
    if status is not None and status not in ("proposed", "approved", "rejected"):
        raise UsageError(f"--status must be proposed, approved or rejected, got {status!r}")
    where, params = ["true"], {}
    if status:
        where.append("status = :s")
        params["s"] = status
    if run_id is not None:
        where.append("run_id = :r")
        params["r"] = run_id
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_ADJ_COLUMNS} FROM pmfin_reconcile_adjustments WHERE {' AND '.join(where)} "
                                 "ORDER BY id"), params).all()
    return [_adjustment(r) for r in rows]


def decide(engine: Engine, adjustment_id: int, decision: str, *, by: str, note: str | None = None) -> Adjustment:
    """Approve or reject a proposed adjustment (pmfin records the decision; it never writes
    ``payments`` — the platform's team applies approved ones)."""
    status = {"approve": "approved", "reject": "rejected"}[decision]
    with engine.begin() as conn:
        row = conn.execute(text(f"SELECT {_ADJ_COLUMNS} FROM pmfin_reconcile_adjustments WHERE id = :id FOR UPDATE"),
                           {"id": adjustment_id}).one_or_none()
        if row is None:
            raise UsageError(f"no adjustment {adjustment_id}")
        if row.status != "proposed":
            raise UsageError(f"adjustment {adjustment_id} was already {row.status} on {row.decided_at:%Y-%m-%d %H:%M} by {row.decided_by}")
        conn.execute(
            text("UPDATE pmfin_reconcile_adjustments SET status = :s, decided_at = now(), decided_by = :by, note = :note "
                 "WHERE id = :id"),
            {"s": status, "by": by, "note": note, "id": adjustment_id},
        )
        row = conn.execute(text(f"SELECT {_ADJ_COLUMNS} FROM pmfin_reconcile_adjustments WHERE id = :id"),
                           {"id": adjustment_id}).one()
    return _adjustment(row)


# -- a past run ---------------------------------------------------------------------------------------


def show_run(engine: Engine, run_id: int) -> RunReport:
    with engine.connect() as conn:
        run = conn.execute(text("SELECT * FROM pmfin_reconcile_runs WHERE id = :id"), {"id": run_id}).mappings().one_or_none()
        if run is None:
            raise UsageError(f"no reconciliation run {run_id}")
        rows = conn.execute(
            text("SELECT kind, stripe_charge_id, payment_id, tenant_id, expected, actual, currency, detail, at_stake "
                 "FROM pmfin_reconcile_differences WHERE run_id = :id ORDER BY id"),
            {"id": run_id},
        ).all()
        changes = None
        if run["previous_run_id"]:
            before = set(conn.execute(text("SELECT key FROM pmfin_reconcile_differences WHERE run_id = :p"),
                                      {"p": run["previous_run_id"]}).scalars())
            now_keys = set(conn.execute(text("SELECT key FROM pmfin_reconcile_differences WHERE run_id = :p"),
                                        {"p": run_id}).scalars())
            changes = {"resolved": sorted(before - now_keys), "new": sorted(now_keys - before),
                       "still_open": sorted(before & now_keys)}
        if run["status"] != "done":  # interrupted: what its slices stored so far
            read, pages = conn.execute(text("SELECT coalesce(sum(charges), 0), coalesce(sum(pages), 0) "
                                            "FROM pmfin_reconcile_slices WHERE run_id = :id"), {"id": run_id}).one()
            run = {**run, "charges_read": int(read), "pages": int(pages)}
    diffs = [
        Difference(r.kind, r.stripe_charge_id, str(r.payment_id) if r.payment_id else None,
                   str(r.tenant_id) if r.tenant_id else None, _money(r.expected), _money(r.actual), r.currency,
                   r.detail if isinstance(r.detail, dict) else json.loads(r.detail or "{}"), int(r.at_stake or 0))
        for r in rows
    ]
    summary = run["summary"] if isinstance(run["summary"], dict) else json.loads(run["summary"] or "{}")
    if run["status"] != "done":
        summary = {**summary, "status": "interrupted: rerun the same month to resume it"}
    return RunReport(run["id"], run["kind"], f"{run['month']:%Y-%m}", str(run["tenant_id"]) if run["tenant_id"] else None,
                     False, run["charges_read"], run["pages"], summary, diffs, changes, run["previous_run_id"])
