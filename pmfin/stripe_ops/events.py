"""Stripe events: one pipeline, two ways in (issue 9; seed: Webhook Integration).

- ``ingest`` stores an event — from the webhook receiver (``pmfin webhooks serve``) or from
  ``events sync`` — in ``pmfin_events``, unique on the event id: a duplicate delivery, a retry,
  or the same event arriving both ways is stored once, and stored *before* anything acts on it.
- ``process_pending`` hands each stored, unprocessed event to its handler, one at a time under a
  row lock (``FOR UPDATE SKIP LOCKED``: two workers never handle the same event), and records
  when it was processed, what was done, the attempts and the last error.
- Handlers act on the object's **current** state, read from Stripe when the event arrives, never
  on the payload's snapshot: an event delivered late or out of order cannot move anything
  backwards (a ``invoice.payment_failed`` arriving after ``invoice.paid`` finds the invoice paid).
- ``sync`` pages ``GET /v1/events`` forward from a stored cursor (Stripe lists newest first;
  ``ending_before`` walks towards newer events) and stores each page with the new cursor.

Handlers: ``account.updated``/``capability.updated`` (the stored Connect status),
``invoice.payment_failed`` (opens the dunning case, day 0 = the event's ``created``),
``invoice.paid``/``invoice.payment_succeeded`` (recovered), ``invoice.voided``/
``invoice.marked_uncollectible`` (written off), ``charge.dispute.created|updated|closed`` (the
dispute record and its notification), ``charge.refunded`` (the stored charge), and
``payment_method.attached``/``customer.updated`` with a new default card (one retry on it at the
next dunning run for each open case). Other types are stored and acknowledged.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.errors import ConfigError, PmfinError, UsageError
from pmfin.stripe_ops.client import PmfinStripeClient, StripeRequestError
from pmfin.stripe_ops.invoices import is_unreachable, plain, stripe_call, tenants_by_customer

if TYPE_CHECKING:
    from pmfin.settings import Settings

MAX_ATTEMPTS = 5  # a handler that keeps failing is left for `pmfin events replay`
RETENTION = dt.timedelta(days=30)  # Stripe keeps events this long
CURSOR = "platform"


def _ts(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def parse_event_id(value: str) -> str:
    value = (value or "").strip()
    if not (value.startswith("evt_") and len(value) > 6 and value.replace("_", "").isalnum()):
        raise UsageError(f"a Stripe event id looks like evt_1AbC…, got {value!r}")
    return value


# -- storing ------------------------------------------------------------------------------------------


def ingest(conn: Connection, event: dict, *, source: str, raw: str | None = None) -> bool:
    """Store ``event`` (as received) unless its id is known. True when it is new."""
    if not isinstance(event, dict) or not str(event.get("id", "")).startswith("evt_") or not event.get("type"):
        raise ValueError("not a Stripe event: it needs an evt_ id and a type")
    created = _ts(event.get("created")) or dt.datetime.now(dt.timezone.utc)
    new = conn.execute(
        text(
            """
            INSERT INTO pmfin_events (id, type, created, account, livemode, api_version, source, payload)
            VALUES (:id, :type, :created, :account, :livemode, :api_version, :source, CAST(:payload AS jsonb))
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """
        ),
        {"id": event["id"], "type": event["type"], "created": created, "account": event.get("account"),
         "livemode": bool(event.get("livemode")), "api_version": event.get("api_version"), "source": source,
         "payload": raw if raw is not None else json.dumps(event)},
    ).scalar_one_or_none()
    return new is not None


# -- handling -----------------------------------------------------------------------------------------


@dataclass
class Handled:
    event_id: str
    type: str
    result: str | None = None
    error: str | None = None


@dataclass
class ProcessReport:
    handled: list[Handled] = field(default_factory=list)
    stopped: str | None = None  # why processing stopped early (Stripe unreachable)

    @property
    def failed(self) -> list[Handled]:
        return [h for h in self.handled if h.error]


class _Handlers:
    """Each handler takes the event and returns what it did, in words."""

    def __init__(self, engine: Engine, client: PmfinStripeClient, settings: Settings, now: dt.datetime):
        self.engine, self.client, self.settings, self.now = engine, client, settings, now

    def __call__(self, event: dict) -> str:
        method = getattr(self, "on_" + event["type"].replace(".", "_"), None)
        if method is None:
            return "stored (no handler for this type)"
        return method(event)

    def _obj(self, event: dict) -> dict:
        return (event.get("data") or {}).get("object") or {}

    def _tenant_of_customer(self, customer: str | None) -> str | None:
        if not customer:
            return None
        with self.engine.connect() as conn:
            hit = tenants_by_customer(conn, [customer]).get(customer)
        return hit[0] if hit else None

    # Connect
    def on_account_updated(self, event: dict) -> str:
        from pmfin.stripe_ops.connect import refresh_account

        account = event.get("account") or self._obj(event).get("id")
        status = refresh_account(self.engine, self.client, account)
        return f"account {account}: {status.status} (read now)" if status else f"account {account} is no tenant's: ignored"

    def on_capability_updated(self, event: dict) -> str:
        account = event.get("account") or _id(self._obj(event).get("account"))
        return self.on_account_updated({**event, "account": account})

    # invoices and dunning
    def _invoice_now(self, event: dict) -> dict:
        from pmfin.stripe_ops.invoices import retrieve_invoice

        return retrieve_invoice(self.client, self._obj(event)["id"])

    def on_invoice_payment_failed(self, event: dict) -> str:
        from pmfin.stripe_ops import dunning

        invoice = self._invoice_now(event)
        tenant = self._tenant_of_customer(_id(invoice.get("customer")))
        if tenant is None:
            return f"invoice {invoice['id']}: its customer is no tenant's: ignored"
        if invoice.get("status") != "open":
            return f"invoice {invoice['id']} is {invoice.get('status')} now: no case"
        opened = dunning.open_case_from_event(self.engine, self.client, self.settings, tenant_id=tenant, invoice=invoice,
                                              day0=_ts(event["created"]), now=self.now)
        return f"dunning case opened for invoice {invoice['id']}" if opened else f"invoice {invoice['id']} already has a case"

    def _settle(self, event: dict) -> str:
        from pmfin.stripe_ops import dunning

        invoice = self._invoice_now(event)
        closed = dunning.settle_after_payment(self.engine, invoice["id"], invoice, now=self.now, settings=self.settings)
        state = invoice.get("status")
        return (f"invoice {invoice['id']} is {state}: dunning case closed" if closed
                else f"invoice {invoice['id']} is {state}: no open case")

    on_invoice_paid = on_invoice_payment_succeeded = on_invoice_voided = on_invoice_marked_uncollectible = _settle

    # disputes
    def _dispute(self, event: dict) -> str:
        from pmfin.stripe_ops.disputes import store_dispute

        dispute_id = self._obj(event)["id"]
        with stripe_call(self.client, f"read dispute {dispute_id}"):
            dispute = plain(self.client.v1.disputes.retrieve(dispute_id, {"expand": ["charge"]}))
        new = store_dispute(self.engine, dispute, self.settings, now=self.now)
        return f"dispute {dispute_id} {'stored and told' if new else 'updated'}: {dispute['status']}"

    on_charge_dispute_created = on_charge_dispute_updated = on_charge_dispute_closed = _dispute

    def on_charge_refunded(self, event: dict) -> str:
        charge_id = self._obj(event)["id"]
        with stripe_call(self.client, f"read charge {charge_id}"):
            charge = plain(self.client.v1.charges.retrieve(charge_id))
        with self.engine.begin() as conn:
            changed = conn.execute(
                text("UPDATE pmfin_stripe_charges SET amount_refunded = :r, raw = jsonb_set(raw, '{amount_refunded}', "
                     "to_jsonb(CAST(:r AS bigint))), read_at = now() WHERE id = :id"),
                {"r": int(charge.get("amount_refunded") or 0), "id": charge_id},
            ).rowcount
        refunded = charge.get("amount_refunded") or 0
        return f"charge {charge_id} refunded {refunded}" + (" (stored charge updated)" if changed else "")

    # a new card: one retry on it for each open dunning case of the tenant
    def _new_card(self, tenant: str | None, pm: str | None, event: dict, saved_at: dt.datetime) -> str:
        from pmfin.stripe_ops import dunning

        if tenant is None or not pm:
            return "no tenant or no card: ignored"
        invoices = dunning.request_card_retry(self.engine, tenant, pm, saved_at=saved_at, event_id=event["id"])
        return (f"card {pm}: a retry on it at the next dunning run ({', '.join(invoices)})" if invoices
                else f"card {pm}: no open dunning case that failed before it (or already asked for)")

    def on_payment_method_attached(self, event: dict) -> str:
        pm = self._obj(event)
        saved = _ts(pm.get("created")) or _ts(event["created"])
        return self._new_card(self._tenant_of_customer(_id(pm.get("customer"))), pm.get("id"), event, saved)

    def on_customer_updated(self, event: dict) -> str:
        before = ((event.get("data") or {}).get("previous_attributes") or {}).get("invoice_settings") or {}
        if "default_payment_method" not in before:
            return "no change of the default card"
        with stripe_call(self.client, "read the customer"):
            customer = plain(self.client.v1.customers.retrieve(self._obj(event)["id"]))
        pm = _id((customer.get("invoice_settings") or {}).get("default_payment_method"))
        return self._new_card(self._tenant_of_customer(customer["id"]), pm, event, _ts(event["created"]))


_NEXT = """
SELECT id, type, payload FROM pmfin_events
WHERE processed_at IS NULL AND attempts < :max {only}
ORDER BY created, id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""


def process_pending(engine: Engine, client: PmfinStripeClient | Callable[[], PmfinStripeClient], settings: Settings, *,
                    event_ids: list[str] | None = None, retry_failed: bool = False, limit: int | None = None,
                    on_event: Callable[[Handled], None] | None = None, now: dt.datetime | None = None) -> ProcessReport:
    """Handle stored events that are not processed yet (oldest first; only ``event_ids`` when given;
    ``retry_failed``: also those that used up their attempts). Stops when Stripe cannot be reached:
    the rest stay pending."""
    report = ProcessReport()
    only = "AND id = ANY(:ids)" if event_ids is not None else ""
    handlers: _Handlers | None = None
    seen: set[str] = set()
    while limit is None or len(report.handled) < limit:
        with engine.connect() as conn, conn.begin():
            row = conn.execute(text(_NEXT.format(only=only + (" AND NOT (id = ANY(:seen))" if seen else ""))),
                               {"max": 10**9 if retry_failed else MAX_ATTEMPTS, "ids": event_ids, "seen": list(seen)}).one_or_none()
            if row is None:
                break
            seen.add(row.id)
            if handlers is None:
                handlers = _Handlers(engine, client() if callable(client) else client, settings,
                                     now or dt.datetime.now(dt.timezone.utc))
            event = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
            handled = Handled(row.id, row.type)
            try:
                handled.result = handlers(event)
            except ConfigError:
                raise
            except PmfinError as err:
                handled.error = err.message
                if is_unreachable(err):
                    report.stopped = err.message
            conn.execute(
                text(
                    """
                    UPDATE pmfin_events SET attempts = attempts + 1, last_attempt_at = now(), error = CAST(:error AS text),
                        result = coalesce(CAST(:result AS text), result),
                        processed_at = CASE WHEN CAST(:error AS text) IS NULL THEN now() ELSE processed_at END
                    WHERE id = :id
                    """
                ),
                {"error": handled.error, "result": handled.result, "id": row.id},
            )
        report.handled.append(handled)
        if on_event:
            on_event(handled)
        if report.stopped:
            break
    return report


# -- events sync -----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    fetched: int = 0
    new: int = 0
    pages: int = 0
    cursor: str | None = None
    cursor_created: dt.datetime | None = None
    warning: str | None = None
    processed: ProcessReport | None = None


def cursor_of(conn: Connection) -> tuple[str, dt.datetime] | None:
    row = conn.execute(text("SELECT event_id, event_created FROM pmfin_event_cursors WHERE name = :n"),
                       {"n": CURSOR}).one_or_none()
    return (row.event_id, row.event_created) if row else None


def _store_page(engine: Engine, events: list[dict], new_cursor: dict | None) -> int:
    """Store a page of events and (when it has newer ones) move the cursor, in one transaction."""
    with engine.begin() as conn:
        new = sum(ingest(conn, e, source="sync") for e in events)
        if new_cursor is not None:
            conn.execute(
                text(
                    """
                    INSERT INTO pmfin_event_cursors (name, event_id, event_created, updated_at)
                    VALUES (:n, :id, :created, now())
                    ON CONFLICT (name) DO UPDATE SET event_id = EXCLUDED.event_id, event_created = EXCLUDED.event_created,
                        updated_at = now()
                    WHERE pmfin_event_cursors.event_created <= EXCLUDED.event_created
                    """
                ),
                {"n": CURSOR, "id": new_cursor["id"], "created": _ts(new_cursor["created"])},
            )
    return new


def sync(engine: Engine, client: PmfinStripeClient, settings: Settings, *, since: dt.datetime | None = None,
         process: bool = True, now: dt.datetime | None = None,
         on_page: Callable[[int], None] | None = None) -> SyncReport:
    """Fetch the events newer than the stored cursor (or created since ``since``), store them,
    then handle them through the same pipeline as webhooks. Raises or clears the platform's
    "Stripe unreachable" banner."""
    from pmfin.stripe_ops.outbox import banner_follows, unreachable

    try:
        report = _sync(engine, client, settings, since=since, process=process, now=now, on_page=on_page)
    except PmfinError as err:
        if unreachable(err):
            banner_follows(engine, err.message)
        raise
    banner_follows(engine, report.processed.stopped if report.processed else None)
    return report


def _sync(engine: Engine, client: PmfinStripeClient, settings: Settings, *, since: dt.datetime | None,
          process: bool, now: dt.datetime | None, on_page: Callable[[int], None] | None) -> SyncReport:
    now = now or dt.datetime.now(dt.timezone.utc)
    report = SyncReport()
    with engine.connect() as conn:
        cursor = cursor_of(conn)
    what = "list Stripe's events"
    catch_up = ("events in between may be gone — run `pmfin dunning run`, `pmfin disputes sync` and "
                "`pmfin connect sync` to catch up; synced the 30 days Stripe still has")
    if since is None and cursor is not None and now - cursor[1] > RETENTION:
        report.warning = (f"the last event synced ({cursor[0]}, {cursor[1]:%Y-%m-%d}) is older than the 30 days Stripe "
                          f"keeps events: {catch_up}")
        cursor = None
    if since is None and cursor is not None:
        before = cursor[0]
        while True:  # towards newer events: each page is the nearest newer ones, newest first
            try:
                with stripe_call(client, what):
                    page = client.raw_request("get", "/v1/events", limit=100, ending_before=before).data
            except StripeRequestError as err:
                if err.param != "ending_before":
                    raise
                report.warning = f"Stripe no longer knows the last event synced ({before}): {catch_up}"
                return _first_sync(engine, client, settings, report, now - RETENTION, process=process, now=now,
                                   on_page=on_page)
            events = page["data"]
            report.pages += 1
            report.fetched += len(events)
            if not events:
                break
            report.new += _store_page(engine, events, events[0])
            before = events[0]["id"]
            if on_page:
                on_page(report.fetched)
            if not page.get("has_more"):
                break
        return _finish(engine, client, settings, report, process=process, now=now)
    return _first_sync(engine, client, settings, report, since or now - RETENTION, process=process, now=now,
                       on_page=on_page)


def _first_sync(engine: Engine, client: PmfinStripeClient, settings: Settings, report: SyncReport, start: dt.datetime,
                *, process: bool, now: dt.datetime, on_page: Callable[[int], None] | None) -> SyncReport:
    """Everything created since ``start``, newest first; the cursor is set when the whole span is
    stored (an interrupted first sync starts again: the events already stored are not stored twice)."""
    params: dict[str, Any] = {"limit": 100, "created": {"gte": int(start.timestamp())}}
    newest: dict | None = None
    while True:
        with stripe_call(client, "list Stripe's events"):
            page = client.raw_request("get", "/v1/events", **params).data
        events = page["data"]
        report.pages += 1
        report.fetched += len(events)
        if events and newest is None:
            newest = events[0]
        report.new += _store_page(engine, events, newest if not page.get("has_more") else None)
        if on_page:
            on_page(report.fetched)
        if not page.get("has_more") or not events:
            break
        params["starting_after"] = events[-1]["id"]
    return _finish(engine, client, settings, report, process=process, now=now)


def _finish(engine: Engine, client: PmfinStripeClient, settings: Settings, report: SyncReport, *, process: bool,
            now: dt.datetime) -> SyncReport:
    with engine.connect() as conn:
        cur = cursor_of(conn)
    if cur:
        report.cursor, report.cursor_created = cur
    if process:
        report.processed = process_pending(engine, client, settings, now=now)
    return report


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    id: str
    type: str
    created: dt.datetime
    received_at: dt.datetime
    processed_at: dt.datetime | None
    attempts: int
    error: str | None
    source: str
    account: str | None
    result: str | None


_COLUMNS = "id, type, created, received_at, processed_at, attempts, error, source, account, result"


def list_events(engine: Engine, *, failed: bool = False, type_: str | None = None, limit: int = 100) -> list[EventRow]:
    where, params = ["true"], {"limit": limit}
    if failed:
        where.append("processed_at IS NULL AND error IS NOT NULL")
    if type_:
        where.append("type LIKE :type")
        params["type"] = type_.replace("*", "%")
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM pmfin_events WHERE {' AND '.join(where)} "
                                 "ORDER BY created DESC, id DESC LIMIT :limit"), params).all()
    return [EventRow(*r) for r in rows]


def get_event(engine: Engine, event_id: str) -> tuple[EventRow, dict]:
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS}, payload FROM pmfin_events WHERE id = :id"), {"id": event_id}).one_or_none()
    if row is None:
        raise UsageError(f"no event {event_id} in pmfin (it arrives by webhook or `pmfin events sync`)")
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return EventRow(*row[:10]), payload


def replay(engine: Engine, client: PmfinStripeClient | Callable[[], PmfinStripeClient], settings: Settings, *,
           event_id: str | None = None, failed: bool = False) -> ProcessReport:
    """Handle again one event (processed or not) or every failed one."""
    with engine.begin() as conn:
        if event_id is not None:
            if conn.execute(text("UPDATE pmfin_events SET processed_at = NULL WHERE id = :id"),
                            {"id": event_id}).rowcount == 0:
                raise UsageError(f"no event {event_id} in pmfin (it arrives by webhook or `pmfin events sync`)")
            ids = [event_id]
        elif failed:
            ids = list(conn.execute(text("SELECT id FROM pmfin_events WHERE processed_at IS NULL AND error IS NOT NULL")).scalars())
        else:
            raise UsageError("give an event id, or --failed for every failed event")
    if not ids:
        return ProcessReport()
    return process_pending(engine, client, settings, event_ids=ids, retry_failed=True)
