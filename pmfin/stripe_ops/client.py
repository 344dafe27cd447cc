"""The one place that builds pmfin's Stripe client and turns Stripe errors into pmfin errors.

- API key from settings, after the live-key guard (``Settings.require_stripe_key``).
- ``STRIPE_API_BASE`` points every API host (api, connect, files) at another server.
- The API version is pinned here (``STRIPE_API_VERSION``); an upgrade is a deliberate change.
- ``max_network_retries`` is set explicitly: a ``StripeClient`` does not retry otherwise. The SDK
  retries connection errors, 409 and 5xx with exponential backoff; pmfin's HTTP client also
  retries 429 (rate limited), waiting at least what ``Retry-After`` asks for.
- Every request, retries included, first takes a token from a shared ``RateLimiter``.
- Keys never appear in output: ``mask_secret`` everywhere.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import stripe

from pmfin.errors import ConfigError, PmfinError, UsageError
from pmfin.settings import Settings, key_mode, mask_secret
from pmfin.stripe_ops.outage import Outage, describe

# Pinned: the version the installed SDK major (16.x) is generated for. Changing it is deliberate.
STRIPE_API_VERSION = "2026-10-28.endive"

# Requests per second Stripe allows by default, by key mode (DESIGN.md, issue 4).
DEFAULT_RATE = {"live": Decimal(100), "test": Decimal(25), "unknown": Decimal(25)}

BACKOFF_INITIAL = 0.5  # seconds before the first retry; doubles each retry
CONNECT_TIMEOUT = 5.0  # seconds to open a connection (PMFIN_STRIPE_TIMEOUT if lower): a dead network shows fast
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 60.0  # never wait longer than this for one Retry-After


def idempotency_key(*parts: object) -> str:
    """A deterministic idempotency key: ``idempotency_key("connect", "create", tenant)`` →
    ``pmfin:connect:create:<tenant>``. Derived only from what the write does, so a rerun (or a
    concurrent run) of the same operation sends the same key and Stripe answers it once."""
    if not parts:
        raise ValueError("an idempotency key needs at least one part")
    text = ":".join(["pmfin", *(str(p) for p in parts)])
    if len(text) > 255:  # Stripe's limit
        raise ValueError(f"idempotency key too long ({len(text)} > 255): {text[:40]}…")
    return text


class RateLimiter:
    """A thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: Decimal | float, burst: float | None = None, *, clock=time.monotonic, sleep=time.sleep):
        rate = float(rate)
        if rate <= 0:
            raise ConfigError(f"PMFIN_STRIPE_RATE must be positive, got {rate:g}")
        self.rate = rate
        self.burst = max(1.0, float(burst) if burst is not None else rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, RETRY_AFTER_MAX))


class PmfinHTTPClient(stripe.RequestsClient):
    """``RequestsClient`` with timeouts, the shared rate limiter, retries of 429, and the run's
    ``Outage`` told about every attempt (``pmfin.stripe_ops.outage``)."""

    def __init__(self, *, timeout: float, limiter: RateLimiter | None, backoff_initial: float = BACKOFF_INITIAL,
                 outage: Outage | None = None):
        super().__init__(timeout=(min(CONNECT_TIMEOUT, timeout), timeout))  # (connect, read)
        self.limiter = limiter
        self.backoff_initial = backoff_initial
        self.outage = outage

    def request(self, method, url, headers, post_data=None, **kwargs):
        self._thread_local.retry_after = None
        if self.outage is not None and self.outage.down:  # nothing more is sent in this run
            raise stripe.APIConnectionError(f"not sent: Stripe cannot be reached ({self.outage.reason})",
                                            should_retry=False)
        if self.limiter is not None:
            self.limiter.acquire()
        try:
            content, status, rheaders = super().request(method, url, headers, post_data, **kwargs)
        except stripe.APIConnectionError as err:
            if self.outage is not None:
                self.outage.no_answer(describe(err))
            raise
        if self.outage is not None:
            self.outage.answered()
        if status == 429:
            self._thread_local.retry_after = _retry_after_seconds(rheaders.get("Retry-After"))
        return content, status, rheaders

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):
        if self.outage is not None and self.outage.down:
            return False
        if response is not None and response[1] == 429:
            rheaders = response[2]
            if rheaders is not None and rheaders.get("stripe-should-retry") == "false":
                return False
            return num_retries < (max_network_retries or 0)
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)

    def _sleep_time_seconds(self, num_retries: int) -> float:
        backoff = min(self.backoff_initial * 2 ** (num_retries - 1), BACKOFF_MAX)
        backoff *= 0.5 * (1 + random.random())  # jitter: [backoff/2, backoff]
        retry_after = getattr(self._thread_local, "retry_after", None)
        return max(backoff, retry_after or 0.0)


class PmfinStripeClient(stripe.StripeClient):
    """A ``StripeClient`` that also knows how it was configured (for messages, never the key)."""

    masked_key: str
    key_mode: str
    api_base: str
    max_retries: int
    limiter: RateLimiter | None
    outage: Outage  # whether Stripe can be reached at all, from every attempt of this run

    def describe(self) -> str:
        rate = f"{self.limiter.rate:g}/s" if self.limiter else "unlimited"
        return (
            f"stripe: {self.key_mode}-mode key {self.masked_key}, api {self.api_base}, version {STRIPE_API_VERSION}, "
            f"{self.max_retries} retries, rate {rate}"
        )

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn a Stripe error raised inside into a pmfin error saying ``what`` failed; the Stripe
        error stays on it as ``stripe_error`` (an outage is told apart from a refusal by it)."""
        try:
            yield
        except stripe.StripeError as err:
            translated = translate_error(err, what, self)
            translated.stripe_error = err  # type: ignore[attr-defined]
            raise translated from None


def build_client(settings: Settings, *, backoff_initial: float = BACKOFF_INITIAL) -> PmfinStripeClient:
    key = settings.require_stripe_key()
    mode = key_mode(key)
    rate = settings.stripe_rate if settings.stripe_rate is not None else DEFAULT_RATE[mode]
    # burst 1: at most `rate` requests in any second, the first one included (Stripe counts per second)
    limiter = RateLimiter(rate, burst=1)
    timeout = float(settings.stripe_timeout)  # positive: Settings checks every value
    base_addresses: dict[str, str] = {}
    if settings.stripe_api_base:  # an http(s) URL without a trailing slash (Settings)
        base = settings.stripe_api_base
        base_addresses = {"api": base, "connect": base, "files": base}
    api_base = base_addresses.get("api", stripe.DEFAULT_API_BASE)
    outage = Outage(settings.stripe_max_retries + 1, api_base)
    client = PmfinStripeClient(
        key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base_addresses,  # type: ignore[arg-type]
        max_network_retries=settings.stripe_max_retries,
        http_client=PmfinHTTPClient(timeout=timeout, limiter=limiter, backoff_initial=backoff_initial, outage=outage),
    )
    client.masked_key = mask_secret(key)
    client.key_mode = mode
    client.api_base = api_base
    client.max_retries = settings.stripe_max_retries
    client.limiter = limiter
    client.outage = outage
    return client


# -- errors ------------------------------------------------------------------------------------


class StripeRequestError(UsageError):
    """Stripe refused one request (invalid request, card declined): an error about one item.

    Bulk operations catch it and report it against the item; a single command exits 2."""

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None, request_id: str | None = None, **kw: Any):
        super().__init__(message, **kw)
        self.code = code
        self.param = param
        self.request_id = request_id


class StripeUnavailable(PmfinError):
    """Stripe could not be reached or kept failing after every retry (exit 2, nothing changed)."""

    exit_code = 2


def _request_suffix(err: stripe.StripeError) -> str:
    return f" (request {err.request_id})" if getattr(err, "request_id", None) else ""


def _code(err: stripe.StripeError) -> str | None:
    """The error's code; the SDK sets ``err.code`` only for some classes (not PermissionError)."""
    return err.code or (getattr(err.error, "code", None) if err.error else None)


def _stripe_message(err: stripe.StripeError) -> str:
    message = (err.user_message or "").strip() or type(err).__name__
    return message.splitlines()[0]


def translate_error(err: stripe.StripeError, what: str, client: PmfinStripeClient | None = None) -> PmfinError:
    """A Stripe error → the pmfin error whose one line says what failed and why."""
    mode = getattr(client, "key_mode", "unknown")
    masked = getattr(client, "masked_key", "…")
    attempts = getattr(client, "max_retries", 0) + 1
    suffix = _request_suffix(err)
    if isinstance(err, stripe.AuthenticationError):
        return ConfigError(
            f"Stripe rejected the {mode}-mode API key {masked} while trying to {what}: check STRIPE_API_KEY",
            detail=f"HTTP {err.http_status}{suffix}",
        )
    if isinstance(err, stripe.PermissionError) and _code(err) == "account_invalid":
        # One connected account the platform can no longer reach (deleted, access revoked): an
        # error about that item, not about the key.
        return StripeRequestError(
            f"could not {what}: Stripe no longer gives access to that account (deleted, or its "
            f"access was revoked){suffix}",
            code="account_invalid", request_id=err.request_id,
        )
    if isinstance(err, stripe.PermissionError):
        return ConfigError(f"the {mode}-mode API key {masked} may not {what}: {_stripe_message(err)}{suffix}")
    if isinstance(err, stripe.IdempotencyError):
        return StripeRequestError(
            f"could not {what}: an earlier request with the same idempotency key used different "
            "parameters (other flags, or the tenant's billing email or country changed since); rerun as "
            f"before, or wait until Stripe forgets the key after 24 hours{suffix}",
            code="idempotency_error",
            request_id=err.request_id,
        )
    if isinstance(err, stripe.CardError):
        code = err.code or "card_error"
        decline = (err.error.decline_code if err.error else None) or None
        reason = f"{code}/{decline}" if decline else code
        return StripeRequestError(
            f"could not {what}: card declined ({reason}): {_stripe_message(err)}{suffix}",
            code=err.code, param=err.param, request_id=err.request_id,
        )
    if isinstance(err, stripe.InvalidRequestError):
        param = f" [{err.param}]" if err.param else ""
        return StripeRequestError(
            f"could not {what}: Stripe refused the request{param}: {_stripe_message(err)}{suffix}",
            code=err.code, param=err.param, request_id=err.request_id,
        )
    if isinstance(err, stripe.RateLimitError):
        return StripeUnavailable(
            f"could not {what}: Stripe is still rate-limiting after {attempts} attempts{suffix}; "
            "try again later or lower PMFIN_STRIPE_RATE"
        )
    if isinstance(err, stripe.APIConnectionError):
        base = getattr(client, "api_base", "Stripe")
        reason = describe(err)
        return StripeUnavailable(
            f"could not {what}: no answer from {base} after {attempts} attempts ({reason}); rerunning is safe",
            detail=_stripe_message(err),
        )
    if isinstance(err, stripe.APIError) and (err.http_status or 500) >= 500:
        return StripeUnavailable(
            f"could not {what}: Stripe answered HTTP {err.http_status} after {attempts} attempts{suffix}; "
            "try again later"
        )
    status = f"HTTP {err.http_status}: " if err.http_status else ""
    return StripeRequestError(f"could not {what}: {status}{_stripe_message(err)}{suffix}", request_id=err.request_id)
