"""pmfin's Stripe client: configuration, retries, pacing and error translation (over real HTTP)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import stripe
from stripe._api_version import _ApiVersion

from pmfin.errors import ConfigError, UsageError
from pmfin.stripe_ops.client import (
    DEFAULT_RATE,
    STRIPE_API_VERSION,
    RateLimiter,
    StripeRequestError,
    StripeUnavailable,
    build_client,
    idempotency_key,
    translate_error,
)
from stripe_fake.env import TEST_KEY, make_settings



def test_api_version_is_pinned_to_what_the_sdk_speaks(stripe_fake, stripe_client):
    # An SDK upgrade that changes its API version fails here: upgrading is a deliberate change.
    assert STRIPE_API_VERSION == _ApiVersion.CURRENT
    stripe_client.v1.accounts.list()
    (request,) = stripe_fake.requests
    assert request.headers["stripe-version"] == STRIPE_API_VERSION
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"


def test_build_client_settings(stripe_fake):
    client = build_client(make_settings(stripe_fake, PMFIN_STRIPE_MAX_RETRIES="4", PMFIN_STRIPE_RATE="7.5"))
    assert client.max_retries == 4 and client.limiter.rate == 7.5
    assert client.api_base == stripe_fake.url and client.key_mode == "test"
    assert client.masked_key == "sk_test_…abcd"
    assert TEST_KEY not in client.describe() and "sk_test_…abcd" in client.describe()
    default = build_client(make_settings(stripe_fake, PMFIN_STRIPE_RATE=None))
    assert default.limiter.rate == float(DEFAULT_RATE["test"]) == 25.0


def test_no_retries_when_set_to_zero(stripe_fake):
    client = build_client(make_settings(stripe_fake, PMFIN_STRIPE_MAX_RETRIES="0"))
    stripe_fake.inject("status", status=503, times=5)
    with pytest.raises(stripe.APIError):
        client.v1.accounts.list()
    assert len(stripe_fake.requests) == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"STRIPE_API_KEY": None}, "no Stripe API key"),
        ({"STRIPE_API_KEY": "rk_live_51abcdefghijklmnop"}, "refusing to use a live Stripe key (rk_live_…mnop)"),
        ({"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE must be an http(s) URL"),
        ({"PMFIN_STRIPE_TIMEOUT": "0"}, "PMFIN_STRIPE_TIMEOUT must be a number above 0 and at most 600 seconds"),
        ({"PMFIN_STRIPE_RATE": "0"}, "PMFIN_STRIPE_RATE must be a number above 0"),
    ],
)
def test_configuration_errors(stripe_fake, overrides, message):
    with pytest.raises(ConfigError) as exc:  # the settings refuse a bad value, the client a missing or live key
        build_client(make_settings(stripe_fake, **overrides))
    assert message in str(exc.value)
    assert stripe_fake.requests == []


def test_live_key_with_live_flag(stripe_fake):
    client = build_client(make_settings(stripe_fake, STRIPE_API_KEY="sk_live_51abcdefghijklmnop", PMFIN_LIVE="true"))
    assert client.key_mode == "live"


def test_idempotency_keys_are_deterministic():
    assert idempotency_key("connect", "create", "t-1") == "pmfin:connect:create:t-1"
    assert idempotency_key("dunning", "in_1", "attempt-2") == idempotency_key("dunning", "in_1", "attempt-2")
    with pytest.raises(ValueError):
        idempotency_key()
    with pytest.raises(ValueError):
        idempotency_key("x" * 300)


# -- rate limiter ------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_paces_after_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(Decimal(4), clock=clock, sleep=clock.sleep)
    for _ in range(4):  # a full bucket: no waiting
        assert limiter.acquire() == 0
    waits = [limiter.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.25] * 4)
    assert clock.now == pytest.approx(1.0)
    clock.now += 10  # idle: the bucket refills, but only up to the burst size
    assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.acquire() == pytest.approx(0.25)


def test_every_http_request_takes_a_token(stripe_fake):
    client = build_client(make_settings(stripe_fake, PMFIN_STRIPE_RATE="20"))
    started = time.monotonic()
    for _ in range(30):  # 20 from the bucket, then 10 at 20/s
        client.v1.accounts.list({"limit": 1})
    assert time.monotonic() - started >= 0.45
    assert len(stripe_fake.requests) == 30


def test_429_without_retry_after_backs_off_and_stops_at_max(stripe_fake, stripe_client):
    stripe_fake.inject("status", status=429, times=10, error_type="rate_limit_error")
    with pytest.raises(stripe.RateLimitError):
        stripe_client.v1.accounts.list()
    assert [r.status for r in stripe_fake.requests] == [429, 429, 429]


def test_should_retry_false_is_honoured():
    """A 429 that Stripe marks ``Stripe-Should-Retry: false`` is not retried."""
    from pmfin.stripe_ops.client import PmfinHTTPClient

    http = PmfinHTTPClient(timeout=1, limiter=None)
    assert http._should_retry((b"", 429, {"stripe-should-retry": "false"}), None, 0, 3) is False
    assert http._should_retry((b"", 429, {}), None, 0, 3) is True
    assert http._should_retry((b"", 429, {}), None, 3, 3) is False
    assert http._should_retry((b"", 400, {}), None, 0, 3) is False


# -- error translation -------------------------------------------------------------------------


def _error_from_fake(stripe_fake, stripe_client, **fault):
    stripe_fake.inject("status", **fault)
    with pytest.raises(stripe.StripeError) as exc:
        stripe_client.v1.accounts.list()
    return translate_error(exc.value, "list accounts", stripe_client)


def test_translation_of_stripe_errors(stripe_fake, stripe_client):
    auth = _error_from_fake(stripe_fake, stripe_client, status=401, error_type="invalid_request_error")
    assert isinstance(auth, ConfigError) and auth.exit_code == 2
    assert "rejected the test-mode API key sk_test_…abcd" in auth.message and TEST_KEY not in auth.message

    perm = _error_from_fake(stripe_fake, stripe_client, status=403, error_type="invalid_request_error", message="nope")
    assert isinstance(perm, ConfigError) and "may not list accounts: nope" in perm.message

    card = _error_from_fake(stripe_fake, stripe_client, status=402, error_type="card_error", message="Your card was declined.")
    assert isinstance(card, StripeRequestError) and isinstance(card, UsageError)
    assert card.message.startswith("could not list accounts: card declined (card_error): Your card was declined.")

    bad = _error_from_fake(stripe_fake, stripe_client, status=400, error_type="invalid_request_error", message="Bad thing")
    assert isinstance(bad, StripeRequestError) and "Stripe refused the request: Bad thing (request req_" in bad.message

    for status in (500, 502):
        down = _error_from_fake(stripe_fake, stripe_client, status=status, times=3)
        assert isinstance(down, StripeUnavailable) and down.exit_code == 2
        assert f"Stripe answered HTTP {status} after 3 attempts" in down.message

    limited = _error_from_fake(stripe_fake, stripe_client, status=429, times=3, error_type="rate_limit_error")
    assert isinstance(limited, StripeUnavailable) and "still rate-limiting after 3 attempts" in limited.message


def test_errors_context_manager(stripe_fake, stripe_client):
    with pytest.raises(StripeRequestError) as exc:
        with stripe_client.errors("link acct_x"):
            stripe_client.v1.account_links.create({"account": "acct_x", "type": "account_onboarding"})
    assert exc.value.code == "resource_missing" and exc.value.param == "account"
    assert exc.value.request_id.startswith("req_")
    assert str(exc.value).startswith("could not link acct_x: Stripe refused the request [account]: No such account")
    # 403 account_invalid (a deleted or revoked connected account) is about that account, not the key
    with pytest.raises(StripeRequestError) as gone:
        with stripe_client.errors("retrieve acct_x"):
            stripe_client.v1.accounts.retrieve("acct_x")
    assert gone.value.code == "account_invalid"
    assert "Stripe no longer gives access to that account" in str(gone.value) and "key" not in str(gone.value)


def test_connection_refused(stripe_fake):
    client = build_client(make_settings(stripe_fake, STRIPE_API_BASE="http://127.0.0.1:9", PMFIN_STRIPE_MAX_RETRIES="1"), backoff_initial=0.01)
    with pytest.raises(StripeUnavailable) as exc:
        with client.errors("list accounts"):
            client.v1.accounts.list()
    assert "no answer from http://127.0.0.1:9 after 2 attempts (connection refused)" in exc.value.message
