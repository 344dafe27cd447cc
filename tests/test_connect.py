"""``pmfin connect`` through the real CLI, the real SDK and real HTTP to the Stripe fake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from stripe_fake.env import TEST_KEY


APP_URL = "https://app.penguinmails.example"


def add_tenant(engine, name="Acme", *, config=True, email=None, country=None, account=None, deleted=False) -> str:
    tenant_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO tenants (id, name, deleted) VALUES (:id, :name, CASE WHEN :d THEN now() END)"),
            {"id": tenant_id, "name": name, "d": deleted},
        )
        if config:
            conn.execute(
                text(
                    "INSERT INTO tenant_config (tenant_id, billing_email, country, stripe_account_id) "
                    "VALUES (:id, :email, :country, :account)"
                ),
                {"id": tenant_id, "email": email, "country": country, "account": account},
            )
    return tenant_id


def stored_account(engine, tenant_id):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT stripe_account_id FROM tenant_config WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one_or_none()


def as_json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result, code=2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- create ------------------------------------------------------------------------------------


def test_create_makes_one_express_account_and_stores_it(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, email="billing@acme.example", country="de")
    out = as_json(cli("connect", "create", "--tenant", tenant, "--format", "json", env=stripe_env))
    assert out["created"] is True and out["status"] == "pending"
    assert out["idempotency_key"] == f"pmfin:connect:create:{tenant}"
    assert stored_account(engine, tenant) == out["stripe_account_id"]

    (post,) = stripe_fake.requests_to("POST", "/v1/accounts")
    assert post.idempotency_key == f"pmfin:connect:create:{tenant}"
    assert post.params["type"] == "express"
    assert post.params["capabilities"] == {"card_payments": {"requested": "true"}, "transfers": {"requested": "true"}}
    assert post.params["email"] == "billing@acme.example" and post.params["country"] == "DE"
    assert post.params["metadata"]["tenant_id"] == tenant
    assert stripe_fake.accounts.get(out["stripe_account_id"])["default_currency"] == "eur"


def test_create_inserts_tenant_config_when_missing_and_flags_win(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, config=False)
    out = as_json(cli("connect", "create", "-t", tenant, "--email", "o@x.example", "--country", "gb", "-f", "json", env=stripe_env))
    assert stored_account(engine, tenant) == out["stripe_account_id"]
    (post,) = stripe_fake.requests_to("POST", "/v1/accounts")
    assert (post.params["email"], post.params["country"]) == ("o@x.example", "GB")


def test_second_create_shows_the_existing_account(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    first = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    second = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert second["created"] is False and second["stripe_account_id"] == first["stripe_account_id"]
    assert len(stripe_fake.requests_to("POST", "/v1/accounts")) == 1
    assert len(stripe_fake.accounts.all()) == 1
    table = cli("connect", "create", "--tenant", tenant, env=stripe_env)
    assert table.exit_code == 0 and "already existed" in table.stdout


def _lose_the_commit(engine, tenant) -> None:
    """As if the transaction storing the account had been lost: the intent, recorded and committed
    before Stripe was asked, stays unfinished; the account id never reached the database."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE tenant_config SET stripe_account_id = NULL WHERE tenant_id = :t"), {"t": tenant})
        conn.execute(text("UPDATE pmfin_connect_intents SET finished_at = NULL, stripe_account_id = NULL"))
        conn.execute(text("DELETE FROM pmfin_connect_accounts"))


def test_create_is_one_request_however_many_accounts_the_platform_has(cli, engine, stripe_fake, stripe_env):
    """It used to page through every connected account before each create (5,004 accounts: 52
    requests, 9.9 s): the intent record says there is no earlier attempt to look for."""
    for _ in range(250):
        stripe_fake.accounts.add()
    tenant = add_tenant(engine)
    out = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert [(r.method, r.path) for r in stripe_fake.requests] == [("POST", "/v1/accounts")]
    with engine.connect() as conn:
        intent = conn.execute(text("SELECT * FROM pmfin_connect_intents WHERE tenant_id = :t"), {"t": tenant}).one()
    assert intent.idempotency_key == f"pmfin:connect:create:{tenant}"
    assert intent.started_at <= intent.finished_at and intent.stripe_account_id == out["stripe_account_id"]


def test_rerun_after_a_lost_commit_gets_the_same_account(cli, engine, stripe_fake, stripe_env):
    """Stripe created the account, pmfin's commit never happened: the unfinished intent makes the
    rerun look among the platform's accounts, and it adopts the one tagged with the tenant."""
    tenant = add_tenant(engine)
    first = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    _lose_the_commit(engine, tenant)
    again = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert again["stripe_account_id"] == first["stripe_account_id"] and again["created"] is False
    # found at Stripe by its metadata: no second POST at all (so also after Stripe forgets the key)
    assert [r.replayed for r in stripe_fake.requests_to("POST", "/v1/accounts")] == [False]
    assert len(stripe_fake.requests_to("GET", "/v1/accounts")) == 1
    assert len(stripe_fake.accounts.all()) == 1
    assert stored_account(engine, tenant) == first["stripe_account_id"]


def test_rerun_after_dying_before_stripe_was_asked_creates_the_account(cli, engine, stripe_fake, stripe_env):
    """An unfinished intent with nothing at Stripe: the rerun looks, finds nothing, creates one."""
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO pmfin_connect_intents (tenant_id, idempotency_key) VALUES (:t, 'k')"), {"t": tenant})
    out = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert out["created"] is True
    assert [(r.method, r.path) for r in stripe_fake.requests] == [("GET", "/v1/accounts"), ("POST", "/v1/accounts")]


def test_idempotent_replay_when_stripe_answered_but_the_answer_was_lost(cli, engine, stripe_fake, stripe_env):
    """The answer to the create was dropped after Stripe made the account: the SDK's retry sends
    the same idempotency key and gets the same account back (one account, one replay)."""
    tenant = add_tenant(engine)
    stripe_fake.inject("drop", after=True, path="/v1/accounts", method="POST")
    created = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert [r.replayed for r in stripe_fake.requests_to("POST", "/v1/accounts")] == [False, True]
    assert len(stripe_fake.accounts.all()) == 1 and stored_account(engine, tenant) == created["stripe_account_id"]


def test_storing_fails_after_stripe_created_the_account(cli, engine, stripe_fake, stripe_env):
    """The database refuses the write after Stripe answered: one line that names the account, and
    the rerun stores that same account (no second one)."""
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'tenant_config is read-only today'; END $$"))
        conn.execute(text("CREATE TRIGGER refuse BEFORE UPDATE ON tenant_config FOR EACH ROW EXECUTE FUNCTION refuse()"))
    line = one_line_error(cli("connect", "create", "--tenant", tenant, env=stripe_env))
    (created,) = [a["id"] for a in stripe_fake.accounts.all()]
    assert f"Stripe has account {created} for tenant {tenant}, but storing it failed" in line
    assert "(database error: tenant_config is read-only today)" in line and "it finds that account at Stripe" in line
    assert stored_account(engine, tenant) is None
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse ON tenant_config"))
    again = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert again["stripe_account_id"] == created == stored_account(engine, tenant)
    assert len(stripe_fake.accounts.all()) == 1


def test_any_other_database_refusal_is_one_line(cli, engine, stripe_env):
    with engine.begin() as conn:
        conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'no writes to system_config'; END $$"))
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON system_config "
                          "FOR EACH ROW EXECUTE FUNCTION refuse()"))
    line = one_line_error(cli("connect", "platform", "--set", "acct_1Platform0000000", env=stripe_env))
    assert line == "error: database error: no writes to system_config"


def test_rerun_with_other_parameters_adopts_the_existing_account(cli, engine, stripe_fake, stripe_env):
    """The id was cleared from tenant_config and the rerun asks for another email: the finished
    intent names the account it stored, which is read back (one request) and stored again."""
    tenant = add_tenant(engine)
    first = as_json(cli("connect", "create", "--tenant", tenant, "--email", "a@x.example", "-f", "json", env=stripe_env))
    with engine.begin() as conn:
        conn.execute(text("UPDATE tenant_config SET stripe_account_id = NULL WHERE tenant_id = :t"), {"t": tenant})
    again = as_json(cli("connect", "create", "--tenant", tenant, "--email", "b@x.example", "-f", "json", env=stripe_env))
    assert again["stripe_account_id"] == first["stripe_account_id"] == stored_account(engine, tenant)
    assert len(stripe_fake.accounts.all()) == 1
    assert [(r.method, r.path) for r in stripe_fake.requests][1:] == [("GET", f"/v1/accounts/{first['stripe_account_id']}")]


def test_two_creates_at_once_make_one_account(database_url, engine, stripe_fake, stripe_env, tmp_path: Path):
    """Two real processes race; the row lock and the idempotency key leave exactly one account."""
    tenant = add_tenant(engine)
    # slow the account creation down so that the two runs certainly overlap
    stripe_fake.inject("delay", seconds=0.8, method="POST", path="/v1/accounts", times=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMFIN_", "STRIPE_"))}
    env.update(stripe_env, DATABASE_URL=database_url, PMFIN_HOME=str(tmp_path))
    cmd = [sys.executable, "-m", "pmfin", "connect", "create", "--tenant", tenant, "--format", "json"]
    procs = [subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(o) for o, _ in outs]
    assert results[0]["stripe_account_id"] == results[1]["stripe_account_id"]
    assert sorted(r["created"] for r in results) == [False, True]
    assert len(stripe_fake.accounts.all()) == 1
    assert len(stripe_fake.requests_to("POST", "/v1/accounts")) == 1  # the second waited on the row lock
    assert stored_account(engine, tenant) == results[0]["stripe_account_id"]


# -- bad input and configuration: exit 2, nothing sent -----------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["connect", "create", "--tenant", "not-a-uuid"], "tenant id must be a UUID, got 'not-a-uuid'"),
        (["connect", "create", "--tenant", "00000000-0000-0000-0000-000000000000"], "no tenant with id 00000000-0000-0000-0000-000000000000"),
        (["connect", "create"], "--tenant is required"),
        (["connect", "link", "--tenant", "12345"], "tenant id must be a UUID"),
        (["connect", "status", "--tenant", "00000000-0000-0000-0000-000000000001"], "no tenant with id"),
        (["connect", "status"], "give exactly one of --tenant UUID or --all"),
        (["connect", "create", "--tenant", "00000000-0000-0000-0000-000000000000", "--country", "USA"], "country must be a 2-letter"),
        (["connect", "platform", "--set", "cus_123"], "a Stripe account id looks like acct_"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(cli, stripe_fake, stripe_env, args, message):
    line = one_line_error(cli(*args, env=stripe_env))
    assert message in line
    assert stripe_fake.requests == []


def test_deleted_tenant_is_refused(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, deleted=True)
    assert "was deleted" in one_line_error(cli("connect", "create", "--tenant", tenant, env=stripe_env))
    assert stripe_fake.requests == []


def test_live_key_refused_without_live(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    live_key = "sk_live_51SECRETSECRETSECRETwxyz"
    result = cli("connect", "create", "--tenant", tenant, env={**stripe_env, "STRIPE_API_KEY": live_key})
    line = one_line_error(result)
    assert "live Stripe key" in line and "--live" in line and "sk_live_…wxyz" in line
    assert live_key not in result.output
    assert stripe_fake.requests == []
    assert stored_account(engine, tenant) is None
    ok = cli("--live", "connect", "create", "--tenant", tenant, "-f", "json", env={**stripe_env, "STRIPE_API_KEY": live_key})
    assert ok.exit_code == 0, ok.output


def test_rejected_key_names_its_mode_and_is_masked(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    stripe_fake.accepted_keys = {"sk_test_theotherone0000000000"}
    result = cli("--verbose", "connect", "create", "--tenant", tenant, env=stripe_env)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "rejected the test-mode API key sk_test_…abcd" in result.stderr
    assert TEST_KEY not in result.output
    assert stored_account(engine, tenant) is None
    assert len(stripe_fake.requests) == 1  # a 401 is not retried


def test_verbose_describes_the_client_without_the_key(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    result = cli("-v", "connect", "status", "--tenant", tenant, env=stripe_env)  # not connected: no Stripe client needed
    assert result.exit_code == 0
    result = cli("-v", "connect", "create", "--tenant", tenant, env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "test-mode key sk_test_…abcd" in result.stderr and stripe_fake.url in result.stderr
    assert TEST_KEY not in result.output


# -- faults ------------------------------------------------------------------------------------


def test_rate_limited_then_success(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    stripe_fake.inject("status", status=429, retry_after=0.2, error_type="rate_limit_error", method="POST", path="/v1/accounts")
    out = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert [r.status for r in stripe_fake.requests_to("POST", "/v1/accounts")] == [429, 200]
    assert stored_account(engine, tenant) == out["stripe_account_id"]


def test_rate_limited_every_time_fails_clearly(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    stripe_fake.inject("status", status=429, times=10, error_type="rate_limit_error", method="POST")
    line = one_line_error(cli("connect", "create", "--tenant", tenant, env=stripe_env))
    assert "still rate-limiting after 3 attempts" in line
    assert stored_account(engine, tenant) is None


def test_repeated_500_is_one_clear_line(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    stripe_fake.inject("status", status=500, times=10, method="POST", path="/v1/accounts")
    line = one_line_error(cli("connect", "create", "--tenant", tenant, env=stripe_env))
    assert f"could not create the Connect account of tenant {tenant}: Stripe answered HTTP 500 after 3 attempts" in line
    assert len(stripe_fake.requests_to("POST", "/v1/accounts")) == 3
    assert stored_account(engine, tenant) is None
    assert stripe_fake.accounts.all() == []


def test_dropped_connections(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    stripe_fake.inject("drop", times=10, method="POST")
    line = one_line_error(cli("connect", "create", "--tenant", tenant, env=stripe_env))
    assert f"no answer from {stripe_fake.url} after 3 attempts" in line
    assert stored_account(engine, tenant) is None
    stripe_fake.faults.clear()
    stripe_fake.inject("drop", after=True, method="POST", path="/v1/accounts")  # done at Stripe, answer lost
    out = as_json(cli("connect", "create", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert [a["id"] for a in stripe_fake.accounts.all()] == [out["stripe_account_id"]]


# -- link --------------------------------------------------------------------------------------


def test_link_goes_back_to_billing_settings(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    account = as_json(cli("connect", "create", "-t", tenant, "-f", "json", env=stripe_env))["stripe_account_id"]
    result = cli("connect", "link", "--tenant", tenant, "-f", "json", env=stripe_env)
    out = as_json(result)
    assert out["url"].startswith(f"https://connect.stripe.com/setup/e/{account}/")
    assert out["return_url"] == f"{APP_URL}/dashboard/settings/billing"
    assert 0 < out["expires_in_seconds"] <= 300
    assert "expires in about 5 minute(s)" in result.stderr and "single-use" in result.stderr
    (post,) = stripe_fake.requests_to("POST", "/v1/account_links")
    assert post.params == {
        "account": account,
        "type": "account_onboarding",
        "refresh_url": f"{APP_URL}/dashboard/settings/billing",
        "return_url": f"{APP_URL}/dashboard/settings/billing",
    }
    assert post.idempotency_key.startswith(f"pmfin:connect:link:{account}:")


def test_link_without_account_says_what_to_do(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine)
    line = one_line_error(cli("connect", "link", "--tenant", tenant, env=stripe_env))
    assert f"run pmfin connect create --tenant {tenant}" in line
    assert stripe_fake.requests == []


def test_link_open_without_a_browser_warns(cli, engine, stripe_fake, stripe_env, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or False)
    tenant = add_tenant(engine)
    cli("connect", "create", "-t", tenant, env=stripe_env)
    result = cli("connect", "link", "-t", tenant, "--open", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert opened and opened[0].startswith("https://connect.stripe.com/")
    assert "no browser available" in result.stderr


# -- status ------------------------------------------------------------------------------------


def test_status_through_onboarding(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, name="Acme")
    out = as_json(cli("connect", "status", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert out["status"] == "not_connected" and out["stripe_account_id"] is None
    assert stripe_fake.requests == []

    account = as_json(cli("connect", "create", "-t", tenant, "-f", "json", env=stripe_env))["stripe_account_id"]
    out = as_json(cli("connect", "status", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert out["status"] == "pending" and out["charges_enabled"] is False
    assert "external_account" in out["currently_due"] and out["disabled_reason"] == "requirements.past_due"

    stripe_fake.accounts.onboard(account, payouts_enabled=False, currently_due=["external_account"])
    out = as_json(cli("connect", "status", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert (out["status"], out["charges_enabled"], out["payouts_enabled"]) == ("pending", True, False)
    assert out["currently_due"] == ["external_account"] and out["past_due"] == []

    stripe_fake.accounts.onboard(account)
    out = as_json(cli("connect", "status", "--tenant", tenant, "-f", "json", env=stripe_env))
    assert out["status"] == "complete" and out["disabled_reason"] is None

    table = cli("connect", "status", "--tenant", tenant, env=stripe_env)
    assert table.exit_code == 0 and "complete" in table.stdout and account in table.stdout


def test_status_of_an_account_stripe_does_not_know(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, account="acct_1Gone00000000000")
    line = one_line_error(cli("connect", "status", "--tenant", tenant, env=stripe_env))
    assert "Stripe no longer gives access to that account (deleted, or its access was revoked)" in line
    assert "API key" not in line  # not the key's fault


# -- sync and status --all ---------------------------------------------------------------------


def _connected_tenants(engine, stripe_fake, n):
    tenants = []
    for i in range(n):
        account = stripe_fake.accounts.add()["id"]
        tenants.append((add_tenant(engine, name=f"T{i:02d}", account=account), account))
    return tenants


def test_sync_then_status_all_without_stripe(cli, engine, stripe_fake, stripe_env):
    tenants = _connected_tenants(engine, stripe_fake, 6)
    stripe_fake.accounts.onboard(tenants[0][1])
    stripe_fake.accounts.onboard(tenants[1][1], charges_enabled=False, past_due=["external_account"], disabled_reason="requirements.past_due")
    lonely = add_tenant(engine, name="Z no account")

    result = cli("connect", "sync", "--concurrency", "3", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # the progress bar is drawn on a terminal only, and leaves no line behind
    assert "6 of 6 accounts stored" in result.stdout
    assert len(stripe_fake.requests_to("GET", "/v1/accounts/.*")) == 6

    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT raw FROM pmfin_connect_accounts WHERE tenant_id = :t"), {"t": tenants[0][0]}
        ).scalar_one()
    assert raw["id"] == tenants[0][1] and raw["object"] == "account"

    stripe_fake.stop()  # Stripe is gone: status --all still answers from what sync stored
    out = as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))
    by_tenant = {row["tenant_id"]: row for row in out}
    assert by_tenant[tenants[0][0]]["status"] == "complete"
    assert by_tenant[tenants[1][0]]["status"] == "pending"
    assert by_tenant[tenants[1][0]]["past_due"] == ["external_account"]
    assert by_tenant[tenants[2][0]]["status"] == "pending" and by_tenant[tenants[2][0]]["checked_at"]
    assert by_tenant[lonely]["status"] == "not_connected"
    assert [row["tenant_name"] for row in out] == [f"T{i:02d}" for i in range(6)] + ["Z no account"]
    csv_out = cli("connect", "status", "--all", "-f", "csv", env=stripe_env)
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines()[0].startswith("tenant_id,tenant_name,stripe_account_id,status")


def test_status_all_before_any_sync(cli, engine, stripe_fake, stripe_env):
    tenant = add_tenant(engine, account="acct_1NotSyncedYet0000")
    result = cli("connect", "status", "--all", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "not_synced" in result.stdout
    out = as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))
    assert out == [{**out[0], "tenant_id": tenant, "status": "not_synced", "stripe_account_id": "acct_1NotSyncedYet0000"}]
    assert stripe_fake.requests == []


def test_sync_reports_accounts_it_could_not_read(cli, engine, stripe_fake, stripe_env):
    good = _connected_tenants(engine, stripe_fake, 2)
    gone = add_tenant(engine, name="Gone", account="acct_1Deleted000000000")
    result = cli("connect", "sync", "-f", "json", env=stripe_env)
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["total"] == 3 and len(out["synced"]) == 2
    assert [f["tenant_id"] for f in out["failed"]] == [gone]
    assert "Stripe no longer gives access to that account" in out["failed"][0]["error"]
    assert "1 of 3 accounts could not be synced" in result.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pmfin_connect_accounts")).scalar() == len(good)


def test_sync_stops_on_a_rejected_key(cli, engine, stripe_fake, stripe_env):
    _connected_tenants(engine, stripe_fake, 5)
    stripe_fake.accepted_keys = set()
    result = cli("connect", "sync", "--concurrency", "1", env=stripe_env)
    assert result.exit_code == 2 and "rejected the test-mode API key" in result.stderr
    assert len(stripe_fake.requests) < 5


def test_sync_is_paced_by_the_rate_limit(cli, engine, stripe_fake, stripe_env):
    import time

    _connected_tenants(engine, stripe_fake, 12)
    started = time.monotonic()
    result = cli("connect", "sync", "--concurrency", "8", env={**stripe_env, "PMFIN_STRIPE_RATE": "10"})
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    # a bucket of 10 tokens, then 10 per second: the last 2 requests wait ≈ 0.2 s
    assert elapsed >= 0.18


# -- platform ----------------------------------------------------------------------------------


def test_platform_account(cli, engine, stripe_fake, stripe_env):
    out = as_json(cli("connect", "platform", "-f", "json", env=stripe_env))
    assert out["stripe_account_id"] is None
    out = as_json(cli("connect", "platform", "--set", "acct_1Platform0000000", "-f", "json", env=stripe_env))
    assert out["stripe_account_id"] == "acct_1Platform0000000" and out["changed"] is True
    again = as_json(cli("connect", "platform", "--set", "acct_1Platform0000000", "-f", "json", env=stripe_env))
    assert again["changed"] is False and again["updated"] == out["updated"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM system_config WHERE key = 'stripe_account_id'")).scalar() == "acct_1Platform0000000"
    assert stripe_fake.requests == []


# -- demo accounts -----------------------------------------------------------------------------


def test_sync_skips_the_demos_made_up_accounts_with_a_note(cli, engine, stripe_fake, stripe_env):
    """`pmfin demo` then `connect sync`: the demo's acct_… ids exist nowhere at Stripe. They are
    skipped (never sent), unless the id is recorded as a real one (pmfin_demo_objects
    'stripe_account'); the real tenants' accounts are synced as ever."""
    assert cli("demo", "--tenants", "150", "--months", "6", "--end", "2025-06", "--seed", "3").exit_code == 0
    with engine.begin() as conn:
        demo_connected = conn.execute(text(
            "SELECT tc.tenant_id FROM tenant_config tc JOIN tenants t ON t.id = tc.tenant_id "
            "WHERE tc.stripe_account_id IS NOT NULL AND t.deleted IS NULL ORDER BY 1")).scalars().all()
        assert len(demo_connected) >= 3
        real_for_demo = stripe_fake.accounts.add()["id"]  # as `pmfin demo --stripe` is to create and record
        conn.execute(text("UPDATE tenant_config SET stripe_account_id = :a WHERE tenant_id = :t"),
                     {"a": real_for_demo, "t": demo_connected[0]})
        conn.execute(text("INSERT INTO pmfin_demo_objects (kind, object_id) VALUES ('stripe_account', :a)"),
                     {"a": real_for_demo})
    real_tenant = add_tenant(engine, name="Real", account=stripe_fake.accounts.add()["id"])
    skipped = len(demo_connected) - 1

    result = cli("connect", "sync", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "Connect sync: 2 of 2 accounts stored" in result.stdout
    assert result.stderr.strip() == (
        f"skipped {skipped} demo account(s): their ids were made up by pmfin demo and exist nowhere at "
        "Stripe (see 'connect status --all')")
    assert sorted(r.path for r in stripe_fake.requests) == sorted(
        f"/v1/accounts/{a}" for a in (real_for_demo, stored_account(engine, real_tenant)))

    out = as_json(cli("connect", "sync", "-f", "json", env=stripe_env))
    assert out["total"] == len(demo_connected) + 1 and len(out["synced"]) == 2 and out["failed"] == []
    assert len(out["skipped"]) == skipped and {s["reason"] for s in out["skipped"]} == {
        "a demo account: its id was made up by pmfin demo and exists nowhere at Stripe"}

    statuses = {r["tenant_id"]: r["status"] for r in as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))}
    assert [statuses[str(t)] for t in demo_connected[1:]] == ["demo"] * skipped
    assert statuses[str(demo_connected[0])] == statuses[real_tenant] == "pending"
    one = as_json(cli("connect", "status", "--tenant", str(demo_connected[1]), "-f", "json", env=stripe_env))
    assert one["status"] == "demo"  # answered without asking Stripe
    assert len(stripe_fake.requests) == 4


# -- Stripe unreachable: a sweep stops within seconds, exit 2, one line --------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["refused", "timeouts", "dns"])
def test_sync_stops_when_stripe_cannot_be_reached(cli, engine, stripe_fake, stripe_env, case):
    """238 accounts used to be retried four times each (85 s, exit 1). Now the run stops once as
    many attempts in a row as one request makes got no answer: exit 2, one line, nothing more sent."""
    import time

    _connected_tenants(engine, stripe_fake, 20)
    env = dict(stripe_env)
    if case == "refused":
        env["STRIPE_API_BASE"] = base = f"http://127.0.0.1:{_closed_port()}"
        reason = "connection refused"
    elif case == "dns":
        env["STRIPE_API_BASE"] = base = "http://stripe.pmfin-nowhere.invalid"
        reason = "the DNS lookup failed"
    else:  # the server takes the connection and never answers in time
        stripe_fake.inject("delay", seconds=3, method="GET", path="/v1/accounts/.*", times=100)
        env["PMFIN_STRIPE_TIMEOUT"] = "0.3"
        base, reason = stripe_fake.url, "no answer within the timeout"
    started = time.monotonic()
    result = cli("connect", "sync", env=env)
    elapsed = time.monotonic() - started
    line = one_line_error(result)
    assert line == (f"error: Stripe cannot be reached ({reason} at {base}; 3 attempts in a row got no answer): "
                    "stopped connect sync with 0 of 20 accounts stored; rerunning is safe")
    assert result.stdout == ""
    if case != "dns":  # a resolver may take its time; the others are bounded here
        assert elapsed < 5, elapsed
    if case == "timeouts":
        assert len(stripe_fake.requests) <= 8 + 2  # the first wave (--concurrency 8), not 20 × 3 attempts
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pmfin_connect_accounts")).scalar() == 0


def test_sync_goes_on_when_only_some_requests_get_no_answer(cli, engine, stripe_fake, stripe_env):
    """A dropped connection here and there is not an outage: its retry gets an answer, the run goes on."""
    _connected_tenants(engine, stripe_fake, 6)
    stripe_fake.inject("drop", times=2, method="GET", path="/v1/accounts/.*")
    result = cli("connect", "sync", "--concurrency", "1", env=stripe_env)
    assert result.exit_code == 0, result.output
    assert "6 of 6 accounts stored" in result.stdout


def test_status_all_shows_when_and_why_the_last_sync_failed(cli, engine, stripe_fake, stripe_env):
    """Accounts Stripe refused to the last sync were 'not_synced'; now 'failed', with the error and
    the time, until a later sync reads them."""
    (good, good_account), = _connected_tenants(engine, stripe_fake, 1)
    gone = add_tenant(engine, name="Gone", account="acct_1Deleted000000000")
    assert cli("connect", "sync", env=stripe_env).exit_code == 1
    rows = {r["tenant_id"]: r for r in as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))}
    assert rows[good]["status"] == "pending" and rows[good]["error"] is None
    failed = rows[gone]
    assert failed["status"] == "failed" and failed["checked_at"]
    assert failed["error"].startswith("could not retrieve Stripe account acct_1Deleted000000000 of tenant")
    assert "Stripe no longer gives access to that account" in failed["error"]
    table = cli("connect", "status", "--all", env={**stripe_env, "COLUMNS": "250"})
    assert table.exit_code == 0 and "last sync failed " in table.stdout and "UTC: could not retrieve" in table.stdout
    assert "failed: the last 'pmfin connect sync' could not read the account" in table.stderr

    # a good account that fails later is 'failed' too (its old data is stale); a good read ends it
    stripe_fake.inject("status", status=500, times=3, method="GET", path=f"/v1/accounts/{good_account}")
    assert cli("connect", "sync", env=stripe_env).exit_code == 1
    rows = {r["tenant_id"]: r for r in as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))}
    assert rows[good]["status"] == "failed" and "HTTP 500" in rows[good]["error"]
    assert cli("connect", "sync", env=stripe_env).exit_code == 1  # Gone still fails
    rows = {r["tenant_id"]: r for r in as_json(cli("connect", "status", "--all", "-f", "json", env=stripe_env))}
    assert rows[good]["status"] == "pending" and rows[good]["error"] is None
