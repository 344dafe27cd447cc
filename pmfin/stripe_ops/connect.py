"""Stripe Connect for tenants: one Express account per tenant (DESIGN.md §4).

Service functions: they take an engine and a Stripe client, return dataclasses, never print.
Every Stripe write carries a deterministic idempotency key (``pmfin:connect:…``).

- ``create_account``: under a row lock on the tenant's ``tenant_config`` row (``FOR UPDATE``),
  so two concurrent runs serialise: the second finds the first one's account. Before asking
  Stripe it records its intent (tenant, idempotency key, time) in ``pmfin_connect_intents`` and
  commits that; the transaction that stores the account marks the intent finished. Only when an
  earlier intent is unfinished — its commit may have been lost after Stripe made the account — does
  it look among the platform's accounts for one pmfin made for the tenant (``metadata.tenant_id``)
  and adopt it: one request in the common case, and never a second account, however late the
  rerun. The idempotency key ``pmfin:connect:create:<tenant>`` covers requests in flight.
- ``sync_accounts``: retrieves every connected tenant's account with bounded concurrency (the
  client's rate limiter paces the requests) and stores what it saw in ``pmfin_connect_accounts``
  with the raw object, and what it could not read, with the error and the time, in
  ``pmfin_connect_failures``, so ``all_statuses`` works without Stripe.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pmfin.db.errors import translate as translate_db_error
from pmfin.db.own import readable
from pmfin.demo.marks import is_made_up, made_up_sql
from pmfin.errors import DatabaseError, UsageError
from pmfin.stripe_ops.client import PmfinStripeClient, StripeRequestError, StripeUnavailable, idempotency_key

BILLING_PATH = "/dashboard/settings/billing"
PLATFORM_KEY = "stripe_account_id"  # system_config key of the platform's own account
CAPABILITIES = ("card_payments", "transfers")
_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{6,}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


@dataclass(frozen=True)
class AccountStatus:
    """A tenant's Connect state. ``status``: not_connected, pending, complete, not_synced
    (connected, but ``connect sync`` has not seen the account yet), failed (the last sync could not
    read it: ``error``, at ``checked_at``), or demo (an account id the demo made up:
    ``pmfin.demo.marks``)."""

    tenant_id: str
    tenant_name: str | None
    stripe_account_id: str | None
    status: str
    details_submitted: bool | None = None
    charges_enabled: bool | None = None
    payouts_enabled: bool | None = None
    currently_due: list[str] = field(default_factory=list)
    past_due: list[str] = field(default_factory=list)
    disabled_reason: str | None = None
    checked_at: dt.datetime | None = None  # when Stripe was last asked
    error: str | None = None  # status failed: why the last sync could not read the account


@dataclass(frozen=True)
class CreateResult(AccountStatus):
    created: bool = False  # False: the tenant already had this account
    idempotency_key: str = ""


@dataclass(frozen=True)
class OnboardingLink:
    tenant_id: str
    stripe_account_id: str
    url: str
    expires_at: dt.datetime
    expires_in_seconds: int
    return_url: str
    refresh_url: str


@dataclass(frozen=True)
class SyncFailure:
    tenant_id: str
    stripe_account_id: str
    error: str


@dataclass(frozen=True)
class SyncSkip:
    tenant_id: str
    stripe_account_id: str
    reason: str


DEMO_ACCOUNT = "a demo account: its id was made up by pmfin demo and exists nowhere at Stripe"


@dataclass
class SyncResult:
    total: int  # connected tenants: synced + failed + skipped
    synced: list[AccountStatus] = field(default_factory=list)
    failed: list[SyncFailure] = field(default_factory=list)
    skipped: list[SyncSkip] = field(default_factory=list)


@dataclass(frozen=True)
class PlatformAccount:
    stripe_account_id: str | None
    updated: dt.datetime | None
    changed: bool = False


# -- input -------------------------------------------------------------------------------------


def parse_tenant_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise UsageError(f"tenant id must be a UUID, got {value!r}") from None


def parse_country(value: str | None) -> str | None:
    if value is None:
        return None
    if not _COUNTRY.match(value.strip()):
        raise UsageError(f"country must be a 2-letter ISO code such as US or DE, got {value!r}")
    return value.strip().upper()


def parse_account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value.strip()):
        raise UsageError(f"a Stripe account id looks like acct_1AbC…, got {value!r}")
    return value.strip()


def _tenant_name(conn: Connection, tenant_id: uuid.UUID) -> str | None:
    row = conn.execute(text("SELECT name, deleted FROM tenants WHERE id = :t"), {"t": tenant_id}).one_or_none()
    if row is None:
        raise UsageError(f"no tenant with id {tenant_id}")
    if row.deleted is not None:
        raise UsageError(f"tenant {tenant_id} ({row.name}) was deleted on {row.deleted:%Y-%m-%d}")
    return row.name


# -- Stripe account → status -------------------------------------------------------------------


def _plain(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def classify(account: dict) -> str:
    """complete: details submitted, charges and payouts enabled, nothing past due, not disabled."""
    req = account.get("requirements") or {}
    done = account.get("details_submitted") and account.get("charges_enabled") and account.get("payouts_enabled")
    return "complete" if done and not req.get("past_due") and not req.get("disabled_reason") else "pending"


def status_from_account(tenant_id: str, tenant_name: str | None, account: dict, checked_at: dt.datetime) -> AccountStatus:
    req = account.get("requirements") or {}
    return AccountStatus(
        tenant_id=str(tenant_id),
        tenant_name=tenant_name,
        stripe_account_id=account["id"],
        status=classify(account),
        details_submitted=bool(account.get("details_submitted")),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        currently_due=list(req.get("currently_due") or []),
        past_due=list(req.get("past_due") or []),
        disabled_reason=req.get("disabled_reason"),
        checked_at=checked_at,
    )


_UPSERT = text(
    """
    INSERT INTO pmfin_connect_accounts AS c
        (tenant_id, stripe_account_id, status, details_submitted, charges_enabled, payouts_enabled,
         currently_due, past_due, disabled_reason, requirements, raw, synced_at)
    VALUES (:tenant_id, :stripe_account_id, :status, :details_submitted, :charges_enabled, :payouts_enabled,
            :currently_due, :past_due, :disabled_reason, CAST(:requirements AS jsonb), CAST(:raw AS jsonb), :synced_at)
    ON CONFLICT (tenant_id) DO UPDATE SET
        stripe_account_id = EXCLUDED.stripe_account_id, status = EXCLUDED.status,
        details_submitted = EXCLUDED.details_submitted, charges_enabled = EXCLUDED.charges_enabled,
        payouts_enabled = EXCLUDED.payouts_enabled, currently_due = EXCLUDED.currently_due,
        past_due = EXCLUDED.past_due, disabled_reason = EXCLUDED.disabled_reason,
        requirements = EXCLUDED.requirements, raw = EXCLUDED.raw, synced_at = EXCLUDED.synced_at
    WHERE c.synced_at <= EXCLUDED.synced_at
    """
)


def _store(conn: Connection, status: AccountStatus, account: dict) -> None:
    """The account as Stripe showed it; an earlier sync failure of the tenant is over."""
    conn.execute(
        text("DELETE FROM pmfin_connect_failures WHERE tenant_id = :t AND failed_at <= :at"),
        {"t": status.tenant_id, "at": status.checked_at},
    )
    conn.execute(
        _UPSERT,
        {
            "tenant_id": status.tenant_id,
            "stripe_account_id": status.stripe_account_id,
            "status": status.status,
            "details_submitted": status.details_submitted,
            "charges_enabled": status.charges_enabled,
            "payouts_enabled": status.payouts_enabled,
            "currently_due": status.currently_due,
            "past_due": status.past_due,
            "disabled_reason": status.disabled_reason,
            "requirements": json.dumps(account.get("requirements")),
            "raw": json.dumps(account),
            "synced_at": status.checked_at,
        },
    )


def _store_failure(conn: Connection, failure: SyncFailure, at: dt.datetime) -> None:
    conn.execute(
        text(
            """
            INSERT INTO pmfin_connect_failures AS f (tenant_id, stripe_account_id, error, failed_at)
            VALUES (:t, :a, :e, :at)
            ON CONFLICT (tenant_id) DO UPDATE SET stripe_account_id = EXCLUDED.stripe_account_id,
                error = EXCLUDED.error, failed_at = EXCLUDED.failed_at
            WHERE f.failed_at <= EXCLUDED.failed_at
            """
        ),
        {"t": failure.tenant_id, "a": failure.stripe_account_id, "e": failure.error, "at": at},
    )


def refresh_account(engine: Engine, client: PmfinStripeClient, account_id: str) -> AccountStatus | None:
    """A tenant's account read from Stripe now and stored (an ``account.updated`` or
    ``capability.updated`` event: the current state, whatever order events arrive in). None when
    no tenant has this account."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT tc.tenant_id, t.name FROM tenant_config tc JOIN tenants t ON t.id = tc.tenant_id "
                 "WHERE tc.stripe_account_id = :a"), {"a": account_id}).one_or_none()
    if row is None:
        return None
    status, account = _retrieve(client, row.tenant_id, row.name, account_id)
    with engine.begin() as conn:
        _store(conn, status, account)
    return status


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _retrieve(client: PmfinStripeClient, tenant_id, tenant_name, account_id: str) -> tuple[AccountStatus, dict]:
    with client.errors(f"retrieve Stripe account {account_id} of tenant {tenant_id}"):
        account = _plain(client.v1.accounts.retrieve(account_id))
    return status_from_account(tenant_id, tenant_name, account, _now()), account


# -- commands' services ------------------------------------------------------------------------


def create_account(
    engine: Engine,
    client: PmfinStripeClient,
    tenant_id: uuid.UUID,
    *,
    email: str | None = None,
    country: str | None = None,
) -> CreateResult:
    """The tenant's Express account: created once, stored in ``tenant_config.stripe_account_id``."""
    key = idempotency_key("connect", "create", tenant_id)
    with engine.connect() as conn, conn.begin():
        name = _tenant_name(conn, tenant_id)
        conn.execute(
            text("INSERT INTO tenant_config (tenant_id) VALUES (:t) ON CONFLICT (tenant_id) DO NOTHING"), {"t": tenant_id}
        )
        row = conn.execute(
            text("SELECT stripe_account_id, billing_email, country FROM tenant_config WHERE tenant_id = :t FOR UPDATE"),
            {"t": tenant_id},
        ).one()
        if row.stripe_account_id:
            status, account = _retrieve(client, tenant_id, name, row.stripe_account_id)
            _store(conn, status, account)
            return CreateResult(**vars(status), created=False, idempotency_key=key)

        params: dict[str, Any] = {
            "type": "express",
            "capabilities": {cap: {"requested": True} for cap in CAPABILITIES},
            "metadata": {"tenant_id": str(tenant_id), "created_by": "pmfin"},
        }
        email = email or row.billing_email
        country = country or (row.country.strip().upper() if row.country else None)
        if email:
            params["email"] = email
        if country:
            params["country"] = country
        earlier = conn.execute(
            text("SELECT finished_at, stripe_account_id FROM pmfin_connect_intents WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).one_or_none()
        _record_intent(engine, tenant_id, key)  # committed before Stripe is asked
        account = _earlier_account(client, tenant_id, name, earlier)
        created = account is None
        if account is None:
            with client.errors(f"create the Connect account of tenant {tenant_id}"):
                account = _plain(client.v1.accounts.create(params, {"idempotency_key": key}))
        try:
            conn.execute(
                text("UPDATE tenant_config SET stripe_account_id = :a, updated = now() WHERE tenant_id = :t"),
                {"a": account["id"], "t": tenant_id},
            )
            status = status_from_account(tenant_id, name, account, _now())
            _store(conn, status, account)
            conn.execute(
                text("UPDATE pmfin_connect_intents SET finished_at = clock_timestamp(), stripe_account_id = :a WHERE tenant_id = :t"),
                {"a": account["id"], "t": tenant_id},
            )
            conn.commit()
        except DBAPIError as exc:
            # Stripe has the account; say which, so nobody creates a second one by hand.
            reason = translate_db_error(exc) or DatabaseError(str(exc))
            raise DatabaseError(
                f"Stripe has account {account['id']} for tenant {tenant_id}, but storing it failed "
                f"({reason.message}); rerun `pmfin connect create --tenant {tenant_id}`: it finds that "
                "account at Stripe (metadata tenant_id) and stores it",
                detail=str(exc),
            ) from None
    return CreateResult(**vars(status), created=created, idempotency_key=key)


def _record_intent(engine: Engine, tenant_id: uuid.UUID, key: str) -> None:
    """Note (and commit, on a connection of its own) that an account is about to be asked for: if
    this run dies before it stores the account, the next one knows to look at Stripe first."""
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO pmfin_connect_intents (tenant_id, idempotency_key, started_at) VALUES (:t, :k, now())
                ON CONFLICT (tenant_id) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key,
                    started_at = EXCLUDED.started_at, finished_at = NULL, stripe_account_id = NULL
                """
            ),
            {"t": tenant_id, "k": key},
        )


def _earlier_account(client: PmfinStripeClient, tenant_id: uuid.UUID, name: str | None, earlier) -> dict | None:
    """The account an earlier ``create`` made for the tenant, when the database no longer names it.

    No earlier intent: there is none (no request at all). A finished one: the account it stored
    (one read). An unfinished one: it may have made an account and lost its commit — look for it
    among the platform's accounts."""
    if earlier is None:
        return None
    if earlier.finished_at is not None and earlier.stripe_account_id:
        try:
            return _retrieve(client, tenant_id, name, earlier.stripe_account_id)[1]
        except StripeRequestError as err:
            if err.code != "account_invalid":  # deleted at Stripe since: look for another, or create
                raise
    return _find_tagged_account(client, tenant_id)


def _find_tagged_account(client: PmfinStripeClient, tenant_id: uuid.UUID) -> dict | None:
    """The platform's Express account that pmfin created for this tenant (``metadata.tenant_id``),
    if Stripe has one: after a lost commit, once Stripe has forgotten the idempotency key (24 h),
    this is what keeps a rerun from creating a second account. Reads every connected account,
    100 a page: only done when an earlier attempt did not finish (``pmfin_connect_intents``)."""
    with client.errors(f"look for an existing Connect account of tenant {tenant_id}"):
        for account in client.v1.accounts.list({"limit": 100}).auto_paging_iter():
            plain = _plain(account)
            if (plain.get("metadata") or {}).get("tenant_id") == str(tenant_id):
                return plain
    return None


def _connected_account(conn: Connection, tenant_id: uuid.UUID) -> tuple[str | None, str | None]:
    name = _tenant_name(conn, tenant_id)
    account_id = conn.execute(
        text("SELECT stripe_account_id FROM tenant_config WHERE tenant_id = :t"), {"t": tenant_id}
    ).scalar_one_or_none()
    return name, account_id


def create_onboarding_link(
    engine: Engine, client: PmfinStripeClient, tenant_id: uuid.UUID, *, app_url: str, clock: Callable[[], float] = time.time
) -> OnboardingLink:
    """A single-use onboarding link back to ``{app_url}/dashboard/settings/billing``.

    Idempotency key ``pmfin:connect:link:<account>:<minute>``: a retry within the same minute
    gets the same link back instead of a second one."""
    with engine.connect() as conn:
        _, account_id = _connected_account(conn, tenant_id)
    if not account_id:
        raise UsageError(f"tenant {tenant_id} has no Connect account yet: run pmfin connect create --tenant {tenant_id}")
    back = f"{app_url.rstrip('/')}{BILLING_PATH}"
    key = idempotency_key("connect", "link", account_id, int(clock() // 60))
    params = {"account": account_id, "type": "account_onboarding", "refresh_url": back, "return_url": back}
    with client.errors(f"create an onboarding link for tenant {tenant_id}"):
        link = client.v1.account_links.create(params, {"idempotency_key": key})
    expires = dt.datetime.fromtimestamp(link.expires_at, dt.timezone.utc)
    return OnboardingLink(
        tenant_id=str(tenant_id),
        stripe_account_id=account_id,
        url=link.url,
        expires_at=expires,
        expires_in_seconds=max(0, int(link.expires_at - clock())),
        return_url=back,
        refresh_url=back,
    )


def account_status(engine: Engine, client: PmfinStripeClient | Callable[[], PmfinStripeClient], tenant_id: uuid.UUID) -> AccountStatus:
    """One tenant, asked live from Stripe (and remembered in ``pmfin_connect_accounts``).

    ``client`` may be a factory: a tenant without an account needs no Stripe client at all."""
    with engine.connect() as conn:
        name, account_id = _connected_account(conn, tenant_id)
        made_up = bool(account_id) and is_made_up(conn, tenant_id, account_id, "account")
    if not account_id:
        return AccountStatus(str(tenant_id), name, None, "not_connected")
    if made_up:  # nothing at Stripe to ask
        return AccountStatus(str(tenant_id), name, account_id, "demo")
    stripe_client = client() if callable(client) else client
    status, account = _retrieve(stripe_client, tenant_id, name, account_id)
    with engine.begin() as conn:
        _store(conn, status, account)
    return status


_ALL = f"""
    SELECT t.id AS tenant_id, t.name AS tenant_name, tc.stripe_account_id,
           c.status, c.details_submitted, c.charges_enabled, c.payouts_enabled,
           c.currently_due, c.past_due, c.disabled_reason, c.synced_at,
           f.error, f.failed_at,
           {made_up_sql("t.id", "tc.stripe_account_id", "account")} AS made_up
    FROM tenants t
    LEFT JOIN tenant_config tc ON tc.tenant_id = t.id
    LEFT JOIN pmfin_connect_accounts c ON c.tenant_id = t.id AND c.stripe_account_id = tc.stripe_account_id
    LEFT JOIN pmfin_connect_failures f ON f.tenant_id = t.id AND f.stripe_account_id = tc.stripe_account_id
    WHERE t.deleted IS NULL AND (CAST(:tenant AS uuid) IS NULL OR t.id = CAST(:tenant AS uuid))
    ORDER BY t.name NULLS LAST, t.id
"""


def all_statuses(engine: Engine, tenant_id: uuid.UUID | None = None) -> list[AccountStatus]:
    """Every tenant (or one), from what ``connect sync`` last stored: no Stripe call. An account the
    last sync could not read is ``failed``, with the error and when (newer than its last good read)."""
    with engine.connect() as conn:
        rows = conn.execute(readable(conn, _ALL), {"tenant": str(tenant_id) if tenant_id else None}).all()
    out = []
    for r in rows:
        if r.stripe_account_id is None:
            out.append(AccountStatus(str(r.tenant_id), r.tenant_name, None, "not_connected"))
        elif r.made_up:
            out.append(AccountStatus(str(r.tenant_id), r.tenant_name, r.stripe_account_id, "demo"))
        elif r.failed_at is not None and (r.synced_at is None or r.failed_at > r.synced_at):
            out.append(AccountStatus(str(r.tenant_id), r.tenant_name, r.stripe_account_id, "failed",
                                     checked_at=r.failed_at, error=r.error))
        elif r.status is None:
            out.append(AccountStatus(str(r.tenant_id), r.tenant_name, r.stripe_account_id, "not_synced"))
        else:
            out.append(
                AccountStatus(
                    str(r.tenant_id), r.tenant_name, r.stripe_account_id, r.status, r.details_submitted,
                    r.charges_enabled, r.payouts_enabled, list(r.currently_due), list(r.past_due),
                    r.disabled_reason, r.synced_at,
                )
            )
    return out


def sync_accounts(
    engine: Engine,
    client: PmfinStripeClient,
    *,
    concurrency: int = 8,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[AccountStatus | SyncFailure], None] | None = None,
) -> SyncResult:
    """Refresh every connected tenant's account from Stripe into ``pmfin_connect_accounts``.

    Up to ``concurrency`` requests in flight, paced by the client's rate limiter. An account
    Stripe refuses or cannot deliver is a failure of that tenant; the others go on. A rejected
    API key stops the whole run (every request would fail the same way), and so does Stripe being
    unreachable (``StripeUnreachable``, exit 2: ``pmfin.stripe_ops.outage``) — within seconds,
    instead of failing every account after all its retries. Accounts whose ids the demo made up
    (``pmfin.demo.marks``) are skipped, never sent to Stripe."""
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, got {concurrency}")
    with engine.connect() as conn:
        connected = conn.execute(
            readable(
                conn,
                f"""
                SELECT tc.tenant_id, t.name, tc.stripe_account_id,
                       {made_up_sql("tc.tenant_id", "tc.stripe_account_id", "account")} AS made_up
                FROM tenant_config tc JOIN tenants t ON t.id = tc.tenant_id
                WHERE tc.stripe_account_id IS NOT NULL AND t.deleted IS NULL
                ORDER BY tc.tenant_id
                """,
            )
        ).all()
    targets = [t for t in connected if not t.made_up]
    result = SyncResult(total=len(connected), skipped=[
        SyncSkip(str(t.tenant_id), t.stripe_account_id, DEMO_ACCOUNT) for t in connected if t.made_up])
    if on_start:
        on_start(len(targets))

    def fetch(target):
        if client.outage.down:
            return None  # not tried: Stripe cannot be reached
        try:
            return _retrieve(client, target.tenant_id, target.name, target.stripe_account_id)
        except (StripeRequestError, StripeUnavailable) as err:
            if client.outage.down:
                return None
            return SyncFailure(str(target.tenant_id), target.stripe_account_id, err.message)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="pmfin-sync") as pool:
        pending = {pool.submit(fetch, t) for t in targets}
        try:
            while pending and not client.outage.down:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()  # a ConfigError (bad key) propagates and stops the run
                    if outcome is None:
                        continue
                    if isinstance(outcome, SyncFailure):
                        with engine.begin() as conn:
                            _store_failure(conn, outcome, _now())
                        result.failed.append(outcome)
                        item: AccountStatus | SyncFailure = outcome
                    else:
                        status, account = outcome
                        with engine.begin() as conn:
                            _store(conn, status, account)
                        result.synced.append(status)
                        item = status
                    if on_progress:
                        on_progress(item)
        finally:
            pool.shutdown(cancel_futures=True)  # what is still queued is never sent
    if client.outage.down:  # the accounts read before are stored; the rest were not tried
        raise client.outage.error(f"connect sync with {len(result.synced)} of {len(targets)} accounts stored")
    result.synced.sort(key=lambda s: s.tenant_id)
    result.failed.sort(key=lambda f: f.tenant_id)
    return result


def get_platform(engine: Engine) -> PlatformAccount:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT value, updated FROM system_config WHERE key = :k"), {"k": PLATFORM_KEY}
        ).one_or_none()
    return PlatformAccount(row.value if row else None, row.updated if row else None)


def set_platform(engine: Engine, account_id: str) -> PlatformAccount:
    account_id = parse_account_id(account_id)
    with engine.begin() as conn:
        before = conn.execute(
            text("SELECT value FROM system_config WHERE key = :k FOR UPDATE"), {"k": PLATFORM_KEY}
        ).scalar_one_or_none()
        row = conn.execute(
            text(
                """
                INSERT INTO system_config (key, value, updated) VALUES (:k, :v, now())
                ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,
                    updated = CASE WHEN system_config.value IS DISTINCT FROM EXCLUDED.value
                                   THEN EXCLUDED.updated ELSE system_config.updated END
                RETURNING value, updated
                """
            ),
            {"k": PLATFORM_KEY, "v": account_id},
        ).one()
    return PlatformAccount(row.value, row.updated, changed=before != account_id)

