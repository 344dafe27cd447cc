"""Notifications: one mechanism for every message pmfin sends (DESIGN.md §4).

An event (a payment failed, a retry was declined, a tenant was restricted, a dispute arrived …)
becomes a ``Notice``. ``record`` stores it, in the caller's transaction, as

- a row in ``pmfin_notifications`` — the email to the tenant's ``billing_email``, ``pending``
  until it is sent — and
- a row in ``pmfin_alerts`` — the dashboard banner the app shows while ``resolved_at`` is null,

both under the notice's unique ``key`` (``dunning:<invoice>:opened``, …): however often the same
event is found, it is told once. ``send_pending`` sends the pending emails over SMTP one at a
time, each under a row lock (``FOR UPDATE SKIP LOCKED``, so two senders never send the same one)
and marks each sent in the same transaction. When the SMTP server cannot be reached the email
stays pending for the next run (or ``pmfin notifications send``). With no SMTP configured,
notifications are dashboard alerts only (``email_status`` 'not_configured').

Exactly once, and its one limit: an email the SMTP server accepted whose "sent" mark was then
lost (the process killed in between) is sent again by the next sender. Every message carries a
Message-ID derived from its key, so mail systems and people can tell the copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from pmfin.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from pmfin.settings import SmtpSettings

SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Notice:
    """One event to tell a tenant: an email and a dashboard alert under one unique ``key``."""

    tenant_id: uuid.UUID | str | None  # None: a platform-level message (give ``recipient``)
    key: str
    kind: str
    severity: str
    subject: str
    body: str
    alert: str  # the banner's one line
    invoice_id: str | None = None
    resolved: bool = False  # an alert that is history from the start (e.g. 'recovered')
    recipient: str | None = None  # default: the tenant's billing_email
    alert_row: bool = True  # False: an email only (e.g. the copy to finance)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


@dataclass(frozen=True)
class NotificationRow:
    id: int
    tenant_id: str | None
    key: str
    kind: str
    severity: str
    subject: str
    recipient: str | None
    invoice_id: str | None
    created_at: dt.datetime
    email_status: str
    attempts: int
    last_error: str | None
    sent_at: dt.datetime | None


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)  # keys
    refused: list[tuple[str, str]] = field(default_factory=list)  # (key, reason): permanent
    pending: int = 0  # still pending afterwards
    error: str | None = None  # why sending stopped (SMTP unreachable, rejected login)
    config_error: bool = False  # the error is pmfin's SMTP settings (login, STARTTLS), not an outage
    configured: bool = True

    @property
    def ok(self) -> bool:
        return self.error is None


# -- recording ---------------------------------------------------------------------------------


def record(conn: Connection, notice: Notice, *, smtp_configured: bool, at: dt.datetime | None = None) -> bool:
    """Store ``notice`` (email + alert) unless its key is already known. True when it is new.

    Runs in the caller's transaction, so the event and the state change that caused it commit
    together or not at all."""
    from sqlalchemy import text

    recipient = notice.recipient
    if recipient is None and notice.tenant_id is not None:
        recipient = conn.execute(
            text("SELECT billing_email FROM tenant_config WHERE tenant_id = :t"), {"t": str(notice.tenant_id)}
        ).scalar_one_or_none()
    recipient = (recipient or "").strip() or None
    tenant = str(notice.tenant_id) if notice.tenant_id is not None else None
    if not smtp_configured:
        status = "not_configured"
    else:
        status = "pending" if recipient else "no_recipient"
    created = at or dt.datetime.now(dt.timezone.utc)
    new = conn.execute(
        text(
            """
            INSERT INTO pmfin_notifications
                (tenant_id, key, kind, severity, subject, body, recipient, invoice_id, created_at, email_status)
            VALUES (:t, :key, :kind, :severity, :subject, :body, :recipient, :invoice, :created, :status)
            ON CONFLICT (key) DO NOTHING
            RETURNING id
            """
        ),
        {
            "t": tenant, "key": notice.key, "kind": notice.kind, "severity": notice.severity,
            "subject": notice.subject, "body": notice.body, "recipient": recipient, "invoice": notice.invoice_id,
            "created": created, "status": status,
        },
    ).scalar_one_or_none()
    if not notice.alert_row:
        return new is not None
    conn.execute(
        text(
            """
            INSERT INTO pmfin_alerts (tenant_id, key, kind, severity, message, invoice_id, created_at, resolved_at)
            VALUES (:t, :key, :kind, :severity, :message, :invoice, :created, CASE WHEN :resolved THEN :created END)
            ON CONFLICT (key) DO NOTHING
            """
        ),
        {
            "t": tenant, "key": notice.key, "kind": notice.kind, "severity": notice.severity,
            "message": notice.alert, "invoice": notice.invoice_id, "created": created, "resolved": notice.resolved,
        },
    )
    return new is not None


def resolve_alerts(conn: Connection, tenant_id: uuid.UUID | str, *, invoice_id: str | None = None,
                   kinds: tuple[str, ...] | None = None, at: dt.datetime | None = None) -> int:
    """Mark the tenant's open alerts (of one invoice, of some kinds) resolved; returns how many."""
    from sqlalchemy import text

    sql = "UPDATE pmfin_alerts SET resolved_at = :at WHERE tenant_id = :t AND resolved_at IS NULL"
    params: dict = {"t": str(tenant_id), "at": at or dt.datetime.now(dt.timezone.utc)}
    if invoice_id is not None:
        sql += " AND invoice_id = :invoice"
        params["invoice"] = invoice_id
    if kinds is not None:
        sql += " AND kind = ANY(:kinds)"
        params["kinds"] = list(kinds)
    return conn.execute(text(sql), params).rowcount


# -- sending -----------------------------------------------------------------------------------


class SmtpUnavailable(Exception):
    """The SMTP server could not be reached, or broke off: try again later."""


def message_id(key: str, sender: str) -> str:
    """A Message-ID derived from the notification's key: a resent copy has the same one."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "pmfin"
    return f"<pmfin.{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_message(row, sender: str) -> EmailMessage:
    from email import policy

    msg = EmailMessage(policy=policy.default.clone(max_line_length=998))  # RFC 5322's limit: keys stay on one line
    msg["From"] = sender
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    msg["Message-ID"] = message_id(row.key, sender)
    msg["X-PMFIN-Notification"] = row.key
    msg.set_content(row.body)
    return msg


class Mailer:
    """One SMTP session for a batch of messages (``with Mailer(settings) as m: m.send(msg)``)."""

    def __init__(self, settings: SmtpSettings, *, smtp_factory: Callable[..., smtplib.SMTP] = smtplib.SMTP):
        self.settings = settings
        self._factory = smtp_factory
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> Mailer:
        s = self.settings
        try:
            smtp = self._factory(s.host, s.port, timeout=s.timeout)
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.user:
                smtp.login(s.user, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"the SMTP server {s.host}:{s.port} rejected the login of {s.user!r}: {_smtp_reason(exc)}") from None
        except smtplib.SMTPNotSupportedError:
            raise ConfigError(f"the SMTP server {s.host}:{s.port} does not offer STARTTLS (PMFIN_SMTP_STARTTLS)") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpUnavailable(f"cannot reach the SMTP server {s.host}:{s.port}: {_smtp_reason(exc)}") from None
        self._smtp = smtp
        return self

    def send(self, msg: EmailMessage) -> None:
        assert self._smtp is not None, "use Mailer as a context manager"
        try:
            self._smtp.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            code = _smtp_code(exc)
            if code is not None and 400 <= code < 500:  # a temporary refusal: later
                raise SmtpUnavailable(f"the SMTP server deferred the message: {_smtp_reason(exc)}") from None
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpUnavailable(f"the SMTP server broke off: {_smtp_reason(exc)}") from None

    def __exit__(self, *exc) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


def _smtp_code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        return max(codes) if codes else None
    return getattr(exc, "smtp_code", None)


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{rcpt}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                         for rcpt, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        err = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {err}".strip()
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


_NEXT_PENDING = """
SELECT tenant_id, id, key, subject, body, recipient, created_at
FROM pmfin_notifications
WHERE email_status = 'pending' AND id > :after {only}
ORDER BY id
LIMIT 1
FOR UPDATE SKIP LOCKED
"""


def send_pending(
    engine: Engine,
    smtp: SmtpSettings | None,
    *,
    keys: list[str] | None = None,
    mailer_factory: Callable[[SmtpSettings], Mailer] = Mailer,
) -> SendReport:
    """Send every pending email (only those with ``keys``, when given), oldest first.

    Stops at the first sign that the SMTP server is unreachable (the rest stay pending, the
    report says why). A recipient the server refuses for good (5xx) is marked 'refused' and
    the batch goes on."""
    from sqlalchemy import text

    report = SendReport(configured=smtp is not None)
    if smtp is None:
        report.pending = _count_pending(engine)
        return report
    if keys is not None and not keys:
        report.pending = _count_pending(engine)
        return report
    only = "AND key = ANY(:keys)" if keys is not None else ""
    after = 0
    try:
        with _lazy_session(mailer_factory, smtp) as session:
            while True:
                with engine.connect() as conn, conn.begin():
                    row = conn.execute(text(_NEXT_PENDING.format(only=only)), {"after": after, "keys": keys}).one_or_none()
                    if row is None:
                        break
                    after = row.id
                    now = dt.datetime.now(dt.timezone.utc)
                    try:
                        session().send(build_message(row, smtp.sender))
                    except SmtpUnavailable as exc:
                        _mark(conn, row, "pending", now, str(exc))
                        report.error = str(exc)
                        break
                    except ConfigError as exc:  # login rejected, no STARTTLS: nothing will go out
                        _mark(conn, row, "pending", now, exc.message)
                        report.error, report.config_error = exc.message, True
                        break
                    except smtplib.SMTPException as exc:  # refused for good
                        reason = _smtp_reason(exc)
                        _mark(conn, row, "refused", now, reason)
                        report.refused.append((row.key, reason))
                        continue
                    _mark(conn, row, "sent", now, None)
                    report.sent.append(row.key)
    except SmtpUnavailable as exc:  # the connection itself failed
        report.error = str(exc)
        _note_failure(engine, keys, str(exc))
    report.pending = _count_pending(engine)
    return report


@contextmanager
def _lazy_session(factory: Callable[[SmtpSettings], Mailer], smtp: SmtpSettings) -> Iterator[Callable[[], Mailer]]:
    """Connect to the SMTP server only when there is something to send."""
    opened: list[Mailer] = []

    def session() -> Mailer:
        if not opened:
            mailer = factory(smtp)
            mailer.__enter__()
            opened.append(mailer)
        return opened[0]

    try:
        yield session
    finally:
        for mailer in opened:
            mailer.__exit__(None, None, None)


def _mark(conn: Connection, row, status: str, at: dt.datetime, error: str | None) -> None:
    from sqlalchemy import text

    conn.execute(
        text(
            """
            UPDATE pmfin_notifications
            SET email_status = :status, attempts = attempts + 1, last_attempt_at = :at, last_error = :error,
                sent_at = CASE WHEN :status = 'sent' THEN :at END
            WHERE id = :id
            """
        ),
        {"status": status, "at": at, "error": error, "id": row.id},
    )


def _note_failure(engine: Engine, keys: list[str] | None, error: str) -> None:
    """The server was unreachable before the first message: the oldest pending one says why."""
    from sqlalchemy import text

    only = "AND key = ANY(:keys)" if keys is not None else ""
    with engine.begin() as conn:
        conn.execute(
            text(
                f"""
                UPDATE pmfin_notifications SET attempts = attempts + 1, last_attempt_at = now(), last_error = :error
                WHERE id = (SELECT id FROM pmfin_notifications WHERE email_status = 'pending' {only}
                            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                """
            ),
            {"error": error, "keys": keys},
        )


def _count_pending(engine: Engine) -> int:
    from sqlalchemy import text

    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pmfin_notifications WHERE email_status = 'pending'")).scalar_one()


# -- listing -----------------------------------------------------------------------------------


def list_notifications(engine: Engine, *, pending: bool = False, tenant_id: uuid.UUID | None = None,
                       limit: int = 100) -> list[NotificationRow]:
    """Newest first; ``pending``: only emails still to be sent."""
    from sqlalchemy import text

    where = ["true"]
    params: dict = {"limit": limit}
    if pending:
        where.append("email_status = 'pending'")
    if tenant_id is not None:
        where.append("tenant_id = :t")
        params["t"] = str(tenant_id)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"""
                SELECT id, tenant_id, key, kind, severity, subject, recipient, invoice_id, created_at,
                       email_status, attempts, last_error, sent_at
                FROM pmfin_notifications WHERE {' AND '.join(where)}
                ORDER BY created_at DESC, id DESC LIMIT :limit
                """
            ),
            params,
        ).all()
    return [NotificationRow(r.id, str(r.tenant_id) if r.tenant_id else None, *r[2:]) for r in rows]
