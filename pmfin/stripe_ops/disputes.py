"""Disputes (chargebacks) with evidence from the platform's own data (issue 8; seed: Chargeback &
Dispute Management).

``sync`` stores Stripe's disputes in ``pmfin_disputes`` (amount, reason, status, charge, tenant,
``evidence_details.due_by``, the raw object) and tells each new one — urgently — to the tenant's
billing contact and to ``PMFIN_FINANCE_EMAIL``, with a dashboard alert, through the notification
mechanism. ``assemble_evidence`` builds Stripe's evidence fields from what the platform knows
(the service agreement, the emails sent and campaigns run in the disputed period, the seats with
access); ``stage_evidence`` sends them with ``POST /v1/disputes/{id}`` (``submit=false``), and
submits only when asked.

The disputed period is the calendar month (UTC) of the disputed charge.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin.errors import UsageError
from pmfin.money import format_money
from pmfin.months import Month
from pmfin.notify import Notice, record, send_pending
from pmfin.stripe_ops.client import PmfinStripeClient, idempotency_key
from pmfin.stripe_ops.invoices import plain, stripe_call

if TYPE_CHECKING:
    from pmfin.notify import SendReport
    from pmfin.settings import Settings

OPEN = ("warning_needs_response", "needs_response", "warning_under_review", "under_review")
AWAITING = ("warning_needs_response", "needs_response")
DEFAULT_LOOKBACK = dt.timedelta(days=120)  # card networks allow disputes up to 120 days after a charge
MAX_FIELD = 20_000  # characters Stripe accepts in one evidence text field


def parse_dispute_id(value: str) -> str:
    value = (value or "").strip()
    if not (value.startswith(("du_", "dp_")) and len(value) > 5 and value.replace("_", "").isalnum()):
        raise UsageError(f"a Stripe dispute id looks like du_1AbC… (or dp_…), got {value!r}")
    return value


def _ts(value: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc) if value else None


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


@dataclass(frozen=True)
class DisputeRow:
    id: str
    tenant_id: str | None
    tenant_name: str | None
    charge_id: str | None
    amount: int
    currency: str
    reason: str | None
    status: str
    created: dt.datetime
    due_by: dt.datetime | None
    days_left: int | None
    due_soon: bool
    submission_count: int
    evidence_staged_at: dt.datetime | None
    evidence_submitted_at: dt.datetime | None


@dataclass
class SyncResult:
    total: int = 0
    new: list[str] = field(default_factory=list)
    updated: int = 0
    notifications: SendReport | None = None


_TENANT = """
coalesce(
    (SELECT p.tenant_id FROM payments p WHERE p.stripe_charge_id = :charge LIMIT 1),
    (SELECT tc.tenant_id FROM tenant_config tc WHERE tc.stripe_account_id = :destination LIMIT 1),
    (SELECT tc.tenant_id FROM tenant_config tc WHERE tc.stripe_customer_id = :customer LIMIT 1)
)
"""

_UPSERT = text(
    f"""
    INSERT INTO pmfin_disputes AS d (id, tenant_id, charge_id, payment_intent, amount, currency, reason, status, created,
                                     due_by, submission_count, raw, synced_at)
    VALUES (:id, {_TENANT}, :charge, :pi, :amount, :currency, :reason, :status, :created, :due_by, :submissions,
            CAST(:raw AS jsonb), now())
    ON CONFLICT (id) DO UPDATE SET
        tenant_id = coalesce(EXCLUDED.tenant_id, d.tenant_id), status = EXCLUDED.status, amount = EXCLUDED.amount,
        reason = EXCLUDED.reason, due_by = EXCLUDED.due_by, submission_count = EXCLUDED.submission_count,
        raw = EXCLUDED.raw, synced_at = now()
    RETURNING (xmax = 0) AS inserted, tenant_id
    """
)


def _store(conn: Connection, dispute: dict) -> tuple[bool, str | None]:
    charge = dispute.get("charge") if isinstance(dispute.get("charge"), dict) else {}
    evidence = dispute.get("evidence_details") or {}
    row = conn.execute(_UPSERT, {
        "id": dispute["id"], "charge": _id(dispute.get("charge")), "pi": _id(dispute.get("payment_intent")),
        "destination": _id((charge.get("transfer_data") or {}).get("destination")), "customer": _id(charge.get("customer")),
        "amount": int(dispute["amount"]), "currency": dispute["currency"].lower(), "reason": dispute.get("reason"),
        "status": dispute["status"], "created": _ts(dispute["created"]), "due_by": _ts(evidence.get("due_by")),
        "submissions": int(evidence.get("submission_count") or 0), "raw": json.dumps(dispute),
    }).one()
    return bool(row.inserted), str(row.tenant_id) if row.tenant_id else None


def _notices(dispute: dict, tenant_id: str | None, tenant_name: str | None, finance: str | None) -> list[Notice]:
    amount = format_money(int(dispute["amount"]), dispute["currency"].lower())
    due = _ts((dispute.get("evidence_details") or {}).get("due_by"))
    due_text = f"Evidence is due by {due:%Y-%m-%d %H:%M} UTC." if due else "Stripe gives no evidence deadline."
    reason = (dispute.get("reason") or "unspecified").replace("_", " ")
    subject = f"URGENT: a payment of {amount} is disputed ({reason})"
    body = (f"Charge {_id(dispute.get('charge'))} of {amount} was disputed by the cardholder's bank (reason: {reason}).\n"
            f"{due_text}\n\nDispute {dispute['id']}. PenguinMails will respond with the service records it holds; "
            "reply to this email with anything that helps (agreements, correspondence).\n")
    out = []
    if tenant_id:
        out.append(Notice(tenant_id, f"dispute:{dispute['id']}:created", "dispute", "critical", subject, body,
                          f"A payment of {amount} is disputed ({reason}). {due_text}"))
    if finance:
        who = f"tenant {tenant_name or tenant_id}" if tenant_id else "no known tenant"
        out.append(Notice(tenant_id, f"dispute:{dispute['id']}:created:finance", "dispute", "critical",
                          subject + f" — {who}", body + f"\nTenant: {who}.\n  pmfin disputes evidence {dispute['id']}\n",
                          subject, recipient=finance, alert_row=False))
    return out


def sync(engine: Engine, client: PmfinStripeClient, settings: Settings, *, since: dt.date | None = None,
         now: dt.datetime | None = None, send: bool = True) -> SyncResult:
    now = now or dt.datetime.now(dt.timezone.utc)
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc) if since else now - DEFAULT_LOOKBACK
    result = SyncResult()
    params = {"created": {"gte": int(start.timestamp())}, "limit": 100, "expand": ["data.charge"]}
    with stripe_call(client, "list Stripe's disputes"):
        for obj in client.v1.disputes.list(params).auto_paging_iter():
            result.total += 1
            if store_dispute(engine, plain(obj), settings, now=now):
                result.new.append(obj["id"])
            else:
                result.updated += 1
    if send and settings.smtp is not None and result.new:
        result.notifications = send_pending(engine, settings.smtp)
    return result


def store_dispute(engine: Engine, dispute: dict, settings: Settings, *, now: dt.datetime | None = None) -> bool:
    """Store a dispute as Stripe shows it now (its ``charge`` expanded, for the tenant); a new open
    one is told once — urgently — to the tenant and to finance, in the same transaction. True when new."""
    with engine.begin() as conn:
        inserted, tenant = _store(conn, dispute)
        if not inserted:
            return False
        name = conn.execute(text("SELECT name FROM tenants WHERE id = :t"), {"t": tenant}).scalar_one_or_none() if tenant else None
        if dispute["status"] in OPEN:
            for notice in _notices(dispute, tenant, name, settings.finance_email):
                record(conn, notice, smtp_configured=settings.smtp is not None, at=now)
    return True


_LIST = """
SELECT d.id, d.tenant_id, t.name AS tenant_name, d.charge_id, d.amount, d.currency, d.reason, d.status, d.created,
       d.due_by, d.submission_count, d.evidence_staged_at, d.evidence_submitted_at
FROM pmfin_disputes d LEFT JOIN tenants t ON t.id = d.tenant_id
WHERE {where}
ORDER BY d.due_by NULLS LAST, d.created DESC, d.id
"""


def list_disputes(engine: Engine, *, open_only: bool = False, due_within: int | None = None,
                  now: dt.datetime | None = None) -> list[DisputeRow]:
    now = now or dt.datetime.now(dt.timezone.utc)
    where, params = ["true"], {"now": now}
    if open_only:
        where.append("d.status = ANY(:open)")
        params["open"] = list(OPEN)
    if due_within is not None:
        if due_within < 0:
            raise UsageError(f"--due-within must be 0 or more days, got {due_within}")
        where.append("d.due_by IS NOT NULL AND d.due_by <= :until AND d.status = ANY(:awaiting)")
        params.update(until=now + dt.timedelta(days=due_within), awaiting=list(AWAITING))
    with engine.connect() as conn:
        from pmfin.db.migrate import require_contract

        require_contract(conn, ("tenants", "pmfin_disputes"))
        rows = conn.execute(text(_LIST.format(where=" AND ".join(where))), params).all()
    return [_row(r, now) for r in rows]


def _row(r, now: dt.datetime) -> DisputeRow:
    left = (r.due_by - now).days if r.due_by else None
    soon = r.due_by is not None and r.status in AWAITING and now <= r.due_by <= now + dt.timedelta(days=7)
    return DisputeRow(r.id, str(r.tenant_id) if r.tenant_id else None, r.tenant_name, r.charge_id, int(r.amount),
                      r.currency.strip().lower(), r.reason, r.status, r.created, r.due_by, left, soon,
                      int(r.submission_count or 0), r.evidence_staged_at, r.evidence_submitted_at)


def get(engine: Engine, dispute_id: str, *, now: dt.datetime | None = None) -> tuple[DisputeRow, dict]:
    now = now or dt.datetime.now(dt.timezone.utc)
    with engine.connect() as conn:
        row = conn.execute(text(_LIST.format(where="d.id = :id")), {"id": dispute_id}).one_or_none()
        raw = conn.execute(text("SELECT raw FROM pmfin_disputes WHERE id = :id"), {"id": dispute_id}).scalar_one_or_none()
    if row is None:
        raise UsageError(f"no dispute {dispute_id} in pmfin (run `pmfin disputes sync` first)")
    return _row(row, now), raw if isinstance(raw, dict) else json.loads(raw)


# -- evidence -----------------------------------------------------------------------------------------


@dataclass
class Evidence:
    dispute_id: str
    tenant_id: str | None
    period: str
    fields: dict[str, str]  # Stripe's evidence[...] fields
    sources: dict[str, Any]  # what each field was built from (counts), for the person reviewing it


def _clip(value: str) -> str:
    return value if len(value) <= MAX_FIELD else value[: MAX_FIELD - 40] + "\n… (cut to Stripe's field limit)"


def assemble_evidence(engine: Engine, dispute_id: str) -> Evidence:
    row, raw = get(engine, dispute_id)
    if row.tenant_id is None:
        raise UsageError(f"dispute {dispute_id} belongs to no known tenant: pmfin has no records to offer as evidence")
    charge_at = _ts((raw.get("charge") or {}).get("created") if isinstance(raw.get("charge"), dict) else None) or row.created
    month = Month.of(charge_at)
    with engine.connect() as conn:
        tenant = conn.execute(
            text("SELECT t.name, t.created, tc.billing_email, tc.country FROM tenants t "
                 "LEFT JOIN tenant_config tc ON tc.tenant_id = t.id WHERE t.id = :t"), {"t": row.tenant_id}).one()
        subs = conn.execute(
            text("""
                SELECT p.name, p.tier, p.billing_cycle, s.unit_price_cents, s.quantity, s.currency, s.started_at, s.ended_at,
                       s.stripe_subscription_id
                FROM subscriptions s JOIN plans p ON p.id = s.plan_id
                WHERE s.tenant_id = :t AND s.started_at < :end AND (s.ended_at IS NULL OR s.ended_at > :start)
                ORDER BY s.started_at
            """), {"t": row.tenant_id, "start": month.start, "end": month.end}).all()
        first_sub = conn.execute(text("SELECT min(started_at) FROM subscriptions WHERE tenant_id = :t"),
                                 {"t": row.tenant_id}).scalar_one()
        campaigns = conn.execute(
            text("""
                SELECT c.name, c.created_at, count(e.id) AS sent, min(e.sent_at) AS first, max(e.sent_at) AS last
                FROM emails e JOIN campaigns c ON c.tenant_id = e.tenant_id AND c.id = e.campaign_id
                WHERE e.tenant_id = :t AND e.sent_at >= :start AND e.sent_at < :end
                GROUP BY c.id, c.name, c.created_at ORDER BY sent DESC, c.name
            """), {"t": row.tenant_id, "start": month.start, "end": month.end}).all()
        seats = conn.execute(
            text("SELECT email, created, deleted FROM tenant_users WHERE tenant_id = :t AND created < :end "
                 "AND (deleted IS NULL OR deleted > :start) ORDER BY created"),
            {"t": row.tenant_id, "start": month.start, "end": month.end}).all()
    plan_lines = [
        f"- {s.name} ({s.tier}, billed per {s.billing_cycle}): {format_money(s.unit_price_cents * s.quantity, s.currency.strip().lower())} "
        f"per {s.billing_cycle}, from {s.started_at:%Y-%m-%d}" + (f" to {s.ended_at:%Y-%m-%d}" if s.ended_at else " (active)")
        for s in subs
    ]
    sent = sum(c.sent for c in campaigns)
    fields = {
        "customer_name": tenant.name or row.tenant_id,
        "product_description": _clip(
            "PenguinMails, a B2B cold-email platform (sending infrastructure, campaigns, deliverability), sold as a "
            "subscription.\nService agreement in force during the disputed period "
            f"({month}):\n" + ("\n".join(plan_lines) or "- no subscription row in the period") +
            (f"\nCustomer since {first_sub:%Y-%m-%d}." if first_sub else "")),
        "service_date": f"{charge_at:%Y-%m-%d}",
        "uncategorized_text": _clip(
            f"Email records for {month} (UTC): {sent:,} emails sent in {len(campaigns)} campaign(s).\n" + "\n".join(
                f"- campaign \"{c.name}\" (created {c.created_at:%Y-%m-%d}): {c.sent:,} emails sent, "
                f"first {c.first:%Y-%m-%d %H:%M}, last {c.last:%Y-%m-%d %H:%M} UTC" for c in campaigns)),
        "access_activity_log": _clip(
            f"Seats with access during {month}: {len(seats)}.\n" + "\n".join(
                f"- {u.email or '(no email)'}: access from {u.created:%Y-%m-%d}" +
                (f" to {u.deleted:%Y-%m-%d}" if u.deleted else " (still active)") for u in seats)),
    }
    if tenant.billing_email:
        fields["customer_email_address"] = tenant.billing_email
    sources = {"period": str(month), "subscriptions": len(subs), "campaigns": len(campaigns), "emails_sent": sent,
               "seats": len(seats)}
    return Evidence(dispute_id, row.tenant_id, str(month), fields, sources)


@dataclass(frozen=True)
class StageResult:
    dispute_id: str
    submitted: bool
    status: str
    submission_count: int
    fields: list[str]


def stage_evidence(engine: Engine, client: PmfinStripeClient, evidence: Evidence, *, submit: bool) -> StageResult:
    """``POST /v1/disputes/{id}`` with the evidence (``submit=false`` stages it; ``submit=true``
    sends it to the bank, after which it cannot be changed)."""
    row, _ = get(engine, evidence.dispute_id)
    if row.status not in AWAITING:
        raise UsageError(f"dispute {evidence.dispute_id} is {row.status}: Stripe takes evidence only while it needs a response")
    payload = json.dumps(evidence.fields, sort_keys=True)
    import hashlib

    digest = hashlib.sha256(payload.encode()).hexdigest()[:16]
    key = idempotency_key("disputes", "evidence", evidence.dispute_id, "submit" if submit else "stage", digest)
    with stripe_call(client, f"{'submit' if submit else 'stage'} the evidence of dispute {evidence.dispute_id}"):
        answer = plain(client.v1.disputes.update(
            evidence.dispute_id,
            {"evidence": evidence.fields, "submit": submit, "metadata": {"pmfin_evidence": digest}},
            {"idempotency_key": key},
        ))
    with engine.begin() as conn:
        _store(conn, answer)
        conn.execute(
            text("UPDATE pmfin_disputes SET evidence_staged_at = now(), "
                 "evidence_submitted_at = CASE WHEN :submit THEN now() ELSE evidence_submitted_at END WHERE id = :id"),
            {"submit": submit, "id": evidence.dispute_id},
        )
    details = answer.get("evidence_details") or {}
    return StageResult(evidence.dispute_id, submit, answer["status"], int(details.get("submission_count") or 0),
                       sorted(evidence.fields))
