"""The Stripe fake itself, exercised through the real SDK over real HTTP.

These pin down the fake's Stripe behaviour (idempotency, Stripe-Account, pagination, error
shapes, the spec check, fault injection) so that later tests can trust it.
"""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from stripe_fake.forms import MalformedParams, decode_pairs, decode_query
from stripe_fake.env import TEST_KEY, make_settings


EXPRESS = {
    "type": "express",
    "country": "US",
    "email": "owner@tenant.example",
    "capabilities": {"card_payments": {"requested": True}, "transfers": {"requested": True}},
}


def create(client, idem: str | None = None, **overrides):
    options = {"idempotency_key": idem} if idem else {}
    return client.v1.accounts.create({**EXPRESS, **overrides}, options)


def raw_post(fake, path: str, body: str, **headers):
    return requests.post(
        fake.url + path,
        data=body,
        headers={"Authorization": f"Bearer {TEST_KEY}", "Content-Type": "application/x-www-form-urlencoded", **headers},
        timeout=5,
    )


# -- objects -----------------------------------------------------------------------------------


def test_account_is_shaped_after_the_fixture(stripe_fake, stripe_client):
    account = create(stripe_client, metadata={"tenant_id": "t1"})
    assert account.id.startswith("acct_") and account.object == "account"
    assert account.type == "express"
    assert account.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    assert account.charges_enabled is False and account.details_submitted is False
    assert "external_account" in account.requirements.currently_due
    assert account.metadata["tenant_id"] == "t1"
    # every key of the fixture object is present
    from stripe_fake.spec import load_fixtures

    assert set(load_fixtures()["account"]) <= set(account.to_dict())
    assert stripe_client.v1.accounts.retrieve(account.id).email == "owner@tenant.example"


def test_onboarding_helper_changes_what_retrieve_returns(stripe_fake, stripe_client):
    account = create(stripe_client)
    stripe_fake.accounts.onboard(account.id, payouts_enabled=False, currently_due=["external_account"])
    got = stripe_client.v1.accounts.retrieve(account.id)
    assert (got.details_submitted, got.charges_enabled, got.payouts_enabled) == (True, True, False)
    assert got.requirements.currently_due == ["external_account"]
    assert got.requirements.past_due == [] and got.requirements.disabled_reason is None
    assert got.capabilities["transfers"] == "active"


def test_account_link_expires_within_minutes(stripe_fake, stripe_client):
    account = create(stripe_client)
    link = stripe_client.v1.account_links.create(
        {"account": account.id, "type": "account_onboarding", "refresh_url": "https://a.example/r", "return_url": "https://a.example/r"}
    )
    assert link.object == "account_link" and link.url.startswith("https://connect.stripe.com/")
    assert 0 < link.expires_at - link.created <= 600
    assert stripe_fake.accounts.links[-1]["account"] == account.id


def test_missing_and_invalid_params_are_stripe_errors(stripe_fake, stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.account_links.create({"account": "acct_nope", "type": "account_onboarding"})
    assert missing.value.http_status == 400 and missing.value.code == "resource_missing"
    assert missing.value.param == "account"
    with pytest.raises(stripe.InvalidRequestError) as bad_country:
        create(stripe_client, country="XX")
    assert bad_country.value.param == "country"
    # A connected account the platform cannot reach is 403 account_invalid at Stripe (PermissionError).
    with pytest.raises(stripe.PermissionError) as not_found:
        stripe_client.v1.accounts.retrieve("acct_doesnotexist")
    assert not_found.value.http_status == 403 and not_found.value.request_id.startswith("req_")
    assert not_found.value.error.code == "account_invalid"


def test_error_body_is_stripe_shaped(stripe_fake):
    r = requests.post(stripe_fake.url + "/v1/account_links", data={"account": "acct_x", "type": "account_onboarding"},
                      headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5)
    assert r.status_code == 400 and r.headers["Request-Id"].startswith("req_")
    assert r.json() == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "account",
            "message": "No such account: 'acct_x'",
        }
    }


# -- idempotency -------------------------------------------------------------------------------


def test_same_idempotency_key_same_response(stripe_fake, stripe_client):
    first = create(stripe_client, idem="pmfin:test:1")
    second = create(stripe_client, idem="pmfin:test:1")
    assert first.id == second.id
    assert len(stripe_fake.accounts.all()) == 1
    assert [r.replayed for r in stripe_fake.requests_to("POST", "/v1/accounts")] == [False, True]
    third = create(stripe_client, idem="pmfin:test:2")
    assert third.id != first.id


def test_same_key_different_params_is_an_idempotency_error(stripe_fake, stripe_client):
    create(stripe_client, idem="pmfin:test:k")
    with pytest.raises(stripe.IdempotencyError) as exc:
        create(stripe_client, idem="pmfin:test:k", email="other@tenant.example")
    assert exc.value.http_status == 400
    assert "pmfin:test:k" in exc.value.user_message
    assert len(stripe_fake.accounts.all()) == 1


def test_failed_validation_is_not_saved_under_the_key(stripe_fake, stripe_client):
    with pytest.raises(stripe.InvalidRequestError):
        create(stripe_client, idem="pmfin:test:v", country="XX")
    # Stripe does not store a request that failed validation: the key is still free
    with pytest.raises(stripe.InvalidRequestError):
        create(stripe_client, idem="pmfin:test:v", country="XX")
    assert create(stripe_client, idem="pmfin:test:v").id


# -- Stripe-Account ----------------------------------------------------------------------------


def test_stripe_account_header(stripe_fake, stripe_client):
    account = create(stripe_client)
    me = stripe_client.v1.accounts.retrieve_current(options={"stripe_account": account.id})
    assert me.id == account.id
    assert stripe_client.v1.accounts.retrieve_current().id == stripe_fake.accounts.platform["id"]
    assert stripe_fake.requests[-2].stripe_account == account.id
    with pytest.raises(stripe.PermissionError):
        stripe_client.v1.accounts.retrieve_current(options={"stripe_account": "acct_unknown000"})
    with pytest.raises(stripe.PermissionError):
        stripe_client.v1.accounts.list(options={"stripe_account": account.id})


# -- pagination --------------------------------------------------------------------------------


def test_pagination_like_stripe(stripe_fake, stripe_client):
    ids = [stripe_fake.accounts.add()["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    page = stripe_client.v1.accounts.list({"limit": 2})
    assert [a.id for a in page.data] == newest_first[:2] and page.has_more is True and page.url == "/v1/accounts"
    page2 = stripe_client.v1.accounts.list({"limit": 2, "starting_after": page.data[-1].id})
    assert [a.id for a in page2.data] == newest_first[2:4] and page2.has_more is True
    last = stripe_client.v1.accounts.list({"limit": 2, "starting_after": page2.data[-1].id})
    assert [a.id for a in last.data] == newest_first[4:] and last.has_more is False
    back = stripe_client.v1.accounts.list({"limit": 2, "ending_before": newest_first[4]})
    assert [a.id for a in back.data] == newest_first[2:4] and back.has_more is True
    assert [a.id for a in stripe_client.v1.accounts.list({"limit": 2}).auto_paging_iter()] == newest_first


def test_unknown_cursor_is_resource_missing(stripe_fake, stripe_client):
    stripe_fake.accounts.add()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.accounts.list({"starting_after": "acct_gone"})
    assert (exc.value.http_status, exc.value.code, exc.value.param) == (400, "resource_missing", "starting_after")
    with pytest.raises(stripe.InvalidRequestError) as limit:
        stripe_client.v1.accounts.list({"limit": 101})
    assert limit.value.param == "limit"


# -- the spec check ----------------------------------------------------------------------------


def test_decode_form_brackets():
    assert decode_query("a[b][c]=1&a[b][d]=2&e[0]=x&e[1]=y&f[]=p&f[]=q&g=") == {
        "a": {"b": {"c": "1", "d": "2"}},
        "e": ["x", "y"],
        "f": ["p", "q"],
        "g": "",
    }
    for bad in ("a[b=1", "a]=1", "[a]=1", "a=1&a=2", "a=1&a[b]=2", "e[0]=x&e[2]=y"):
        with pytest.raises(MalformedParams):
            decode_query(bad)
    assert decode_pairs([]) == {}


def test_malformed_params_are_rejected_and_recorded(stripe_fake):
    r = raw_post(stripe_fake, "/v1/accounts", "type=express&capabilities=yes")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = raw_post(stripe_fake, "/v1/accounts", "type=express&capabilities[transfers][requested]=maybe")
    assert r.status_code == 400
    r = raw_post(stripe_fake, "/v1/accounts", "metadata[a=1")
    assert r.status_code == 400
    assert len(stripe_fake.spec_errors) == 3
    assert "must be an object" in stripe_fake.spec_errors[0]
    assert "must be true or false" in stripe_fake.spec_errors[1]
    stripe_fake.spec_errors.clear()  # expected here; otherwise the fixture fails the test


def test_misspelled_params_are_refused_like_stripe(stripe_fake):
    """Not in the 2022 spec and not in the SDK's current parameters either: a typo, which Stripe
    answers with 400. So a request shape pmfin got wrong fails its tests."""
    for body in ("type=express&capabilities[card_paymnts][requested]=true",
                 "type=express&capabilities[card_payments][requestd]=true",
                 "type=express&emial=a@b.example"):
        r = raw_post(stripe_fake, "/v1/accounts", body)
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", body
    assert len(stripe_fake.spec_errors) == 3
    assert all("unknown parameter" in e for e in stripe_fake.spec_errors)
    assert len(stripe_fake.accounts.all()) == 0
    stripe_fake.spec_errors.clear()  # expected here; otherwise the fixture fails the test


def test_params_newer_than_the_spec_are_warnings(stripe_fake, stripe_client):
    create(stripe_client, controller={"fees": {"payer": "application"}})
    assert any("'controller'" in w for w in stripe_fake.spec_warnings)
    assert stripe_fake.spec_errors == []


# -- faults ------------------------------------------------------------------------------------


def test_429_with_retry_after_is_retried(stripe_fake, stripe_client):
    stripe_fake.inject("status", status=429, retry_after=0.3, error_type="rate_limit_error", path="/v1/accounts", method="POST")
    started = time.monotonic()
    account = create(stripe_client, idem="pmfin:test:429")
    assert time.monotonic() - started >= 0.3  # waited as Retry-After asked
    statuses = [r.status for r in stripe_fake.requests_to("POST", "/v1/accounts")]
    assert statuses == [429, 200]
    assert len({r.idempotency_key for r in stripe_fake.requests_to("POST", "/v1/accounts")}) == 1
    assert stripe_fake.accounts.get(account.id)


def test_repeated_500_gives_up_after_max_retries(stripe_fake, stripe_client):
    stripe_fake.inject("status", status=500, times=10, path="/v1/accounts/.*")
    with pytest.raises(stripe.APIError) as exc:
        stripe_client.v1.accounts.retrieve("acct_x")
    assert exc.value.http_status == 500
    assert len(stripe_fake.requests_to("GET")) == 3  # 1 + PMFIN_STRIPE_MAX_RETRIES (2)


def test_dropped_answer_after_processing_replays_on_retry(stripe_fake, stripe_client):
    """The worst case for a write: Stripe did it, the answer was lost; the retry must not redo it."""
    stripe_fake.inject("drop", after=True, path="/v1/accounts", method="POST")
    account = create(stripe_client, idem="pmfin:test:drop")
    posts = stripe_fake.requests_to("POST", "/v1/accounts")
    assert len(posts) == 2 and posts[1].replayed is True
    assert [a["id"] for a in stripe_fake.accounts.all()] == [account.id]


def test_dropped_connection_before_processing_is_retried(stripe_fake, stripe_client):
    account = create(stripe_client)
    stripe_fake.inject("drop", path=f"/v1/accounts/{account.id}", times=2)
    assert stripe_client.v1.accounts.retrieve(account.id).id == account.id
    assert len(stripe_fake.requests_to("GET")) == 3


def test_slow_answer_times_out_and_is_retried(stripe_fake):
    from pmfin.stripe_ops.client import build_client

    client = build_client(make_settings(stripe_fake, PMFIN_STRIPE_TIMEOUT="0.3"), backoff_initial=0.05)
    account = stripe_fake.accounts.add()
    stripe_fake.inject("delay", seconds=1.0, path=f"/v1/accounts/{account['id']}")
    assert client.v1.accounts.retrieve(account["id"]).id == account["id"]
    assert len(stripe_fake.requests_to("GET")) == 2


def test_bad_key_is_401(stripe_fake, stripe_client):
    stripe_fake.accepted_keys = {"sk_test_someoneelse000000000000"}
    with pytest.raises(stripe.AuthenticationError) as exc:
        stripe_client.v1.accounts.list()
    assert exc.value.http_status == 401
    assert TEST_KEY not in exc.value.user_message  # Stripe masks it; so does the fake
