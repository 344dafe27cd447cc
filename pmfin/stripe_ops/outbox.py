"""Working through a Stripe outage (issue 9; seed: Stripe Service Outage).

- **The outbox.** A request a person asked for while Stripe could not be reached — ``invoices pay
  --queue``, ``connect create --queue``, ``subscription change --queue`` — is stored in ``pmfin_outbox`` with its idempotency key
  instead of being lost; ``pmfin outbox flush`` sends what is queued once Stripe answers, each
  item under its key, so flushing twice (or two flushes at once: row locks) sends one request per
  key. ``pmfin outbox list`` shows the queue, with the emails still waiting for SMTP.
- **The banner.** While Stripe cannot be reached, a platform-wide dashboard alert (``pmfin_alerts``,
  tenant null, kind ``stripe_unreachable``) says so; the first time Stripe answers again it is
  resolved. The cron jobs (``dunning run``, ``events sync``, ``outbox flush``) and ``doctor`` raise
  and clear it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from pmfin.errors import ConfigError, PmfinError, UsageError

if TYPE_CHECKING:
    from pmfin.settings import Settings
    from pmfin.stripe_ops.client import PmfinStripeClient

KINDS = ("invoices.pay", "connect.create", "subscription.change")


def unreachable(err: BaseException) -> bool:
    """Whether a pmfin error from a Stripe call means Stripe could not be reached at all."""
    from pmfin.stripe_ops.invoices import is_unreachable
    from pmfin.stripe_ops.outage import StripeUnreachable

    return isinstance(err, StripeUnreachable) or (isinstance(err, PmfinError) and is_unreachable(err))


# -- the banner ------------------------------------------------------------------------------------


def banner_down(engine: Engine, reason: str) -> bool:
    """Raise the platform-wide banner (once per outage). True when it was raised now."""
    with engine.begin() as conn:  # an alert only: the banner is no email to anyone
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('pmfin:stripe-banner', 0))"))
        if conn.execute(text("SELECT 1 FROM pmfin_alerts WHERE kind = 'stripe_unreachable' AND resolved_at IS NULL")).first():
            return False
        now = dt.datetime.now(dt.timezone.utc)
        conn.execute(
            text("INSERT INTO pmfin_alerts (tenant_id, key, kind, severity, message, created_at) "
                 "VALUES (NULL, :key, 'stripe_unreachable', 'warning', :message, :at)"),
            {"key": f"stripe:unreachable:{now:%Y%m%dT%H%M%S.%f}", "at": now,
             "message": "Payments are delayed: our payment provider cannot be reached. Nothing is lost; "
                        f"we retry automatically. ({reason})"},
        )
    return True


def banner_up(engine: Engine) -> int:
    """Stripe answered: resolve the banner. Returns how many were resolved."""
    with engine.begin() as conn:
        return conn.execute(text("UPDATE pmfin_alerts SET resolved_at = now() WHERE kind = 'stripe_unreachable' "
                                 "AND resolved_at IS NULL")).rowcount


def banner_follows(engine: Engine, down: str | None) -> None:
    """After a job talked to Stripe: ``down`` (why Stripe could not be reached) raises the banner,
    None (Stripe answered) clears it. Best effort: a banner that cannot be written never fails the job."""
    try:
        if down:
            banner_down(engine, down)
        else:
            banner_up(engine)
    except Exception:  # noqa: BLE001 - the banner is a courtesy; the job's own result matters
        pass


# -- queueing and flushing --------------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    tenant_id: str | None
    params: dict
    idempotency_key: str
    status: str
    attempts: int
    last_error: str | None
    result: Any
    queued_by: str | None
    created_at: dt.datetime
    done_at: dt.datetime | None
    new: bool = False


_COLUMNS = "id, kind, tenant_id, params, idempotency_key, status, attempts, last_error, result, queued_by, created_at, done_at"


def _item(row, new: bool = False) -> OutboxItem:
    params = row.params if isinstance(row.params, dict) else json.loads(row.params)
    result = row.result if not isinstance(row.result, str) else json.loads(row.result)
    return OutboxItem(row.id, row.kind, str(row.tenant_id) if row.tenant_id else None, params, row.idempotency_key,
                      row.status, row.attempts, row.last_error, result, row.queued_by, row.created_at, row.done_at, new)


def queue(engine: Engine, kind: str, params: dict, key: str, *, tenant_id: str | None = None,
          reason: str | None = None) -> OutboxItem:
    """Queue a request under ``key`` (a second queueing of the same request returns the first)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    with engine.begin() as conn:
        row = conn.execute(
            text(f"""
                INSERT INTO pmfin_outbox (kind, tenant_id, params, idempotency_key, queued_by, last_error)
                VALUES (:kind, :t, CAST(:params AS jsonb), :key, :by, :reason)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING {_COLUMNS}
            """),
            {"kind": kind, "t": tenant_id, "params": json.dumps(params), "key": key, "by": getpass.getuser(), "reason": reason},
        ).one_or_none()
        if row is not None:
            return _item(row, new=True)
        return _item(conn.execute(text(f"SELECT {_COLUMNS} FROM pmfin_outbox WHERE idempotency_key = :key"), {"key": key}).one())


def queued_pay_key(invoice_id: str, payment_method: str | None, at: dt.datetime) -> str:
    """A queued payment's key: the invoice, the card asked for, and the minute it was asked —
    the same request queued twice in a minute is one request."""
    from pmfin.stripe_ops.client import idempotency_key

    return idempotency_key("invoices", "pay", invoice_id, "queued", payment_method or "default", f"{at:%Y%m%d%H%M}")


@dataclass
class FlushReport:
    done: list[OutboxItem] = field(default_factory=list)
    failed: list[tuple[OutboxItem, str]] = field(default_factory=list)  # Stripe refused: final
    stopped: str | None = None  # Stripe unreachable: the rest stay queued
    pending_emails: int = 0


def _send(engine: Engine, client: PmfinStripeClient, settings: Settings, item: OutboxItem) -> dict:
    p = item.params
    if item.kind == "invoices.pay":
        from pmfin.output import to_plain
        from pmfin.stripe_ops.invoices import pay_invoice

        with engine.connect() as conn:  # sent before, but the flush that sent it died before marking it
            earlier = conn.execute(text("SELECT outcome, card, code, decline_code FROM pmfin_payment_attempts "
                                        "WHERE idempotency_key = :k AND outcome IS NOT NULL"),
                                   {"k": item.idempotency_key}).one_or_none()
        if earlier is not None:
            if earlier.outcome != "succeeded":
                raise UsageError(f"declined on {earlier.card} ({earlier.decline_code or earlier.code})")
            return {"outcome": "succeeded", "note": "sent by an earlier flush"}

        result = pay_invoice(engine, client, settings, p["invoice_id"], payment_method=p.get("payment_method"),
                             key=item.idempotency_key)
        if result.outcome != "succeeded":
            raise UsageError(f"declined on {result.card} ({result.reason})")
        return to_plain(result)
    if item.kind == "connect.create":
        import uuid

        from pmfin.output import to_plain
        from pmfin.stripe_ops.connect import create_account

        return to_plain(create_account(engine, client, uuid.UUID(p["tenant_id"]), email=p.get("email"),
                                       country=p.get("country")))
    if item.kind == "subscription.change":
        import uuid

        from pmfin.instants import parse_instant
        from pmfin.output import to_plain
        from pmfin.stripe_ops import subscriptions

        tenant = uuid.UUID(p["tenant_id"])
        for done in subscriptions.finish_pending(engine, client, tenant):  # an earlier lost answer first
            if done.to_plan == p["to"] and done.status == "applied":
                return to_plain(done)
        plan = subscriptions.preview_change(engine, client, tenant, p["to"], force=bool(p.get("force")),
                                            proration_date=parse_instant(p["proration_date"], flag="proration date"))
        result = subscriptions.apply_change(engine, client, plan, by=item.queued_by)
        if result.status != "applied":
            raise UsageError(f"the change to {p['to']} was {result.status}: {result.message}")
        return to_plain(result)
    raise ValueError(f"unknown outbox kind {item.kind!r}")


def flush(engine: Engine, client: PmfinStripeClient | Callable[[], PmfinStripeClient], settings: Settings) -> FlushReport:
    """Send every queued request, oldest first, each under its key and a row lock."""
    report = FlushReport()
    stripe_client = None
    seen: list[int] = []
    while True:
        with engine.connect() as conn, conn.begin():
            row = conn.execute(
                text(f"SELECT {_COLUMNS} FROM pmfin_outbox WHERE status = 'queued' AND NOT (id = ANY(:seen)) "
                     "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"), {"seen": seen}).one_or_none()
            if row is None:
                break
            item = _item(row)
            seen.append(item.id)
            stripe_client = stripe_client or (client() if callable(client) else client)
            status, error, result = "done", None, None
            try:
                result = _send(engine, stripe_client, settings, item)
            except ConfigError:
                raise
            except PmfinError as err:
                if unreachable(err):
                    report.stopped = err.message
                    status, error = "queued", err.message
                else:
                    status, error = "failed", err.message
            conn.execute(
                text("UPDATE pmfin_outbox SET status = :s, attempts = attempts + 1, last_attempt_at = now(), "
                     "last_error = :e, result = CAST(:r AS jsonb), done_at = CASE WHEN :s = 'done' THEN now() END "
                     "WHERE id = :id"),
                {"s": status, "e": error, "r": json.dumps(result, default=str) if result is not None else None, "id": item.id},
            )
        if status == "done":
            report.done.append(item)
        elif status == "failed":
            report.failed.append((item, error or ""))
        if report.stopped:
            break
    if stripe_client is not None:
        banner_follows(engine, report.stopped)
    with engine.connect() as conn:
        report.pending_emails = conn.execute(text("SELECT count(*) FROM pmfin_notifications WHERE email_status = 'pending'")).scalar_one()
    return report


def list_items(engine: Engine, *, status: str | None = None) -> list[OutboxItem]:
    if status is not None and status not in ("queued", "done", "failed"):
        raise UsageError(f"--status must be queued, done or failed, got {status!r}")
    where = "WHERE status = :s" if status else ""
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {_COLUMNS} FROM pmfin_outbox {where} ORDER BY id DESC"), {"s": status}).all()
    return [_item(r) for r in rows]
