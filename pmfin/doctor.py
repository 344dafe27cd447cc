"""``pmfin doctor``: is this installation ready to run the money? One line and a verdict per check.

Verdicts: ``ok``; ``warn`` (works, but look: no SMTP, a stale cron job); ``fail`` (something a
command needs is broken). ``pmfin doctor`` exits 0 only when nothing fails. Every check runs even
after an earlier one failed (a broken database does not hide a rejected Stripe key).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from pmfin.settings import Settings

SKEW_WARN = dt.timedelta(seconds=30)
SKEW_FAIL = dt.timedelta(seconds=300)  # Stripe's signature tolerance: webhooks would be refused
DUNNING_STALE = dt.timedelta(hours=25)  # a nightly job that missed a night
SYNC_STALE = dt.timedelta(days=1)
STRIPE_RETENTION = dt.timedelta(days=30)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str  # ok / warn / fail
    detail: str


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "user_message", None) or getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message.strip().splitlines()[0]


def _ago(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} hours ago" if hours < 48 else f"{hours / 24:.1f} days ago"


def run(settings: Settings, *, engine_factory: Callable[[], Engine], client_factory: Callable[[], Any],
        now: dt.datetime | None = None) -> list[Check]:
    now = now or dt.datetime.now(dt.timezone.utc)
    checks: list[Check] = []
    engine = _database(checks, engine_factory)
    if engine is not None:
        _schema(checks, engine)
    _stripe(checks, settings, client_factory, engine, now)
    secrets = settings.webhook_secrets or ()
    checks.append(Check("webhook secret", "ok", f"{len(secrets)} signing secret(s) set"
                        + (" (a rotation: each is accepted)" if len(secrets) > 1 else "")) if secrets else
                  Check("webhook secret", "warn", "STRIPE_WEBHOOK_SECRET not set: `webhooks serve` cannot start "
                        "(`events sync` works without it)"))
    _smtp(checks, settings)
    if engine is not None:
        _jobs(checks, engine, now)
    return checks


def _database(checks: list[Check], engine_factory: Callable[[], Engine]) -> Engine | None:
    from sqlalchemy import text

    try:
        engine = engine_factory()
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        from pmfin.db.url import display

        checks.append(Check("database", "ok", f"PostgreSQL {version} at {display(engine.url)}"))
        return engine
    except Exception as exc:  # noqa: BLE001 - every failure here is the verdict
        checks.append(Check("database", "fail", _first_line(exc)))
        return None


def _schema(checks: list[Check], engine: Engine) -> None:
    from pmfin.db import migrate

    try:
        st = migrate.status(engine)
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("migrations", "fail", _first_line(exc)))
        return
    if st.up_to_date:
        checks.append(Check("migrations", "ok", f"pmfin's tables at {st.current_revision}"))
    else:
        checks.append(Check("migrations", "fail", f"{len(st.pending)} migration(s) pending ({', '.join(st.pending)}): "
                            "run `pmfin db init`"))
    if st.contract_missing:
        checks.append(Check("contract tables", "fail", f"missing: {', '.join(st.contract_missing)}"))
    else:
        checks.append(Check("contract tables", "ok", f"all {len(st.contract_present)} present"))


def _stripe(checks: list[Check], settings: Settings, client_factory: Callable[[], Any], engine: Engine | None,
            now: dt.datetime) -> None:
    from pmfin.settings import key_mode, mask_secret

    key = settings.stripe_api_key
    if not key:
        checks.append(Check("stripe key", "fail", "STRIPE_API_KEY not set"))
        return
    checks.append(Check("stripe key", "ok", f"{key_mode(key)}-mode key {mask_secret(key)}"))
    try:
        client = client_factory()
    except Exception as exc:  # noqa: BLE001 - the live-key guard, a bad STRIPE_API_BASE
        checks.append(Check("stripe", "fail", _first_line(exc)))
        return
    import stripe

    from pmfin.stripe_ops.outbox import banner_follows

    try:
        answer = client.raw_request("get", "/v1/account")
    except stripe.AuthenticationError as exc:
        checks.append(Check("stripe", "fail", f"Stripe rejected the key: {_first_line(exc)}"))
        return
    except stripe.APIConnectionError as exc:
        from pmfin.stripe_ops.outage import describe

        reason = f"cannot reach {getattr(client, 'api_base', 'Stripe')}: {describe(exc)}"
        checks.append(Check("stripe", "fail", reason))
        if engine is not None:
            banner_follows(engine, reason)
        return
    except stripe.StripeError as exc:
        checks.append(Check("stripe", "fail", f"Stripe answered {exc.http_status}: {_first_line(exc)}"))
        return
    if engine is not None:
        banner_follows(engine, None)
    account = answer.data or {}
    checks.append(Check("stripe", "ok", f"reachable at {getattr(client, 'api_base', 'Stripe')}; the key is accepted "
                        f"(account {account.get('id', '?')})"))
    date = (answer.headers or {}).get("Date") or (answer.headers or {}).get("date")
    if not date:
        checks.append(Check("clock", "warn", "Stripe's answer had no Date header to compare with"))
        return
    skew = now - parsedate_to_datetime(date)
    size = abs(skew)
    verdict = "ok" if size < SKEW_WARN else "warn" if size < SKEW_FAIL else "fail"
    side = "ahead of" if skew.total_seconds() > 0 else "behind"
    checks.append(Check("clock", verdict, f"{size.total_seconds():.0f} s {side} Stripe's clock"
                        + ("" if verdict == "ok" else " (webhook signatures allow 300 s: fix NTP)")))


def _smtp(checks: list[Check], settings: Settings) -> None:
    smtp = settings.smtp
    if smtp is None:
        checks.append(Check("smtp", "warn", "not configured (PMFIN_SMTP_HOST): notifications are dashboard alerts only"))
        return
    from pmfin.notify import Mailer

    try:
        with Mailer(smtp):
            pass
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("smtp", "fail", _first_line(exc)))
        return
    checks.append(Check("smtp", "ok", f"{smtp.host}:{smtp.port} answers" + (" (STARTTLS" + (", login)" if smtp.user else ")")
                                                                              if smtp.starttls else "")))


def _jobs(checks: list[Check], engine: Engine, now: dt.datetime) -> None:
    from sqlalchemy import text

    from pmfin.db.migrate import existing_tables

    with engine.connect() as conn:
        tables = existing_tables(conn)
        if "pmfin_dunning_runs" in tables:
            run = conn.execute(text("SELECT as_of, started_at, finished_at, exit_code FROM pmfin_dunning_runs "
                                    "ORDER BY id DESC LIMIT 1")).one_or_none()
            checks.append(_dunning(run, now))
        if "pmfin_event_cursors" in tables:
            cursor = conn.execute(text("SELECT event_id, event_created, updated_at FROM pmfin_event_cursors "
                                       "WHERE name = 'platform'")).one_or_none()
            checks.append(_cursor(cursor, now))
            failed = conn.execute(text("SELECT count(*) FROM pmfin_events WHERE processed_at IS NULL AND error IS NOT NULL")).scalar_one()
            checks.append(Check("events", "ok" if not failed else "warn",
                                "none failed" if not failed else f"{failed} could not be handled: `pmfin events replay --failed`"))
        if "pmfin_outbox" in tables:
            queued = conn.execute(text("SELECT count(*) FROM pmfin_outbox WHERE status = 'queued'")).scalar_one()
            pending = conn.execute(text("SELECT count(*) FROM pmfin_notifications WHERE email_status = 'pending'")).scalar_one()
            verdict = "ok" if not (queued or pending) else "warn"
            checks.append(Check("outbox", verdict, f"{queued} request(s) queued, {pending} email(s) waiting"
                                + ("" if verdict == "ok" else ": `pmfin outbox flush`, `pmfin notifications send`")))


def _dunning(run, now: dt.datetime) -> Check:
    if run is None:
        return Check("last dunning run", "warn", "never (schedule `pmfin dunning run` in cron)")
    if run.finished_at is None:
        return Check("last dunning run", "warn", f"started {_ago(now - run.started_at)} and has not finished "
                     "(running now, or it was killed: the next run resumes safely)")
    age = now - run.finished_at
    verdict = "fail" if run.exit_code == 2 else "warn" if (run.exit_code == 1 or age > DUNNING_STALE) else "ok"
    return Check("last dunning run", verdict, f"finished {_ago(age)} with exit {run.exit_code}"
                 + (" (is cron running it?)" if age > DUNNING_STALE else ""))


def _cursor(cursor, now: dt.datetime) -> Check:
    if cursor is None:
        return Check("events sync", "warn", "never run (fine when webhooks deliver every event)")
    age = now - cursor.event_created
    verdict = "fail" if age > STRIPE_RETENTION else "warn" if now - cursor.updated_at > SYNC_STALE else "ok"
    return Check("events sync", verdict, f"last synced {_ago(now - cursor.updated_at)}; newest event {_ago(age)}"
                 + (" — older than the 30 days Stripe keeps" if verdict == "fail" else ""))
