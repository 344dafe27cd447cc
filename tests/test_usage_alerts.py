"""``pmfin usage report|alerts``: usage against plan limits, and tenants told at 80 % and at the limit —
once per tenant, metric, threshold and month — over a real SMTP server on loopback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from metrics_fixtures import add_subscription, add_tenant
from test_usage import emails, ip, plan, seat

# October 2026 (a past month: seats and IPs counted at 2026-11-01 00:00 UTC)
OCT = "2026-10-{:02d}T{:02d}:00:00"


def sent(conn, tenant, n: int) -> None:
    emails(conn, tenant, *(OCT.format(1 + i % 28, i % 24) for i in range(n)))


@pytest.fixture
def october(engine):
    """acme on 'pro' (1,000 emails, 2 IPs, 5 seats): 850 emails = 85 % (the threshold), 5 seats = 100 %
    (the limit), 1 IP = 50 %; globex on 'free' (100 emails, 0 IPs, 1 seat): 20 emails = 20 %,
    1 seat = 100 %, 1 IP over a limit of 0; initech on 'pro': 100 emails, 1 seat, no IP: nothing."""
    with engine.begin() as conn:
        plan(conn, "pro", emails=1000, ips=2, seats=5)
        plan(conn, "free", emails=100, ips=0, seats=1, price=0)
        t = {name: str(add_tenant(conn, name, created="2026-01-01")) for name in ("acme", "globex", "initech")}
        for name, tid in t.items():
            conn.execute(text("INSERT INTO tenant_config (tenant_id, billing_email) VALUES (:t, :e) "
                              "ON CONFLICT (tenant_id) DO UPDATE SET billing_email = EXCLUDED.billing_email"),
                         {"t": tid, "e": f"billing@{name}.example"})
        for name, p in (("acme", "pro"), ("globex", "free"), ("initech", "pro")):
            add_subscription(conn, t[name], "2026-01-01", price=9900 if p == "pro" else 0, plan_id=p)
        sent(conn, t["acme"], 850)
        sent(conn, t["globex"], 20)
        sent(conn, t["initech"], 100)
        for _ in range(5):
            seat(conn, t["acme"], "2026-02-01")
        seat(conn, t["globex"], "2026-02-01")
        seat(conn, t["initech"], "2026-02-01")
        ip(conn, t["acme"], "198.18.0.1", "80.00", "2026-03-01")
        ip(conn, t["globex"], "198.18.0.2", "60.00", "2026-03-01")
    return t


def alerts(cli, *args, env=None, code=0):
    result = cli("usage", "alerts", "--month", "2026-10", "--format", "json", *args, env=env)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_report_is_the_usage_metric(cli, october):
    rows = {r["tenant_name"]: r for r in json.loads(cli("usage", "report", "--month", "2026-10", "-f", "json").stdout)}
    assert (rows["acme"]["emails_sent"], rows["acme"]["email_share"], rows["acme"]["seat_share"]) == (850, 0.85, 1)
    assert (rows["globex"]["ips"], rows["globex"]["ip_limit"], rows["globex"]["ip_share"]) == (1, 0, None)
    table = cli("usage", "report", "--month", "2026-10")
    assert table.exit_code == 0 and "85.0%" in table.stdout
    one = json.loads(cli("usage", "report", "--month", "2026-10", "--tenant", october["acme"], "-f", "json").stdout)
    assert [r["tenant_name"] for r in one] == ["acme"]


def test_alerts_at_the_threshold_and_at_the_limit(cli, october):
    found = {(a["tenant_name"], a["metric"], a["level"]) for a in alerts(cli)}
    assert found == {("acme", "emails", "threshold"), ("acme", "seats", "limit"), ("globex", "seats", "limit"),
                     ("globex", "ips", "limit")}
    at_90 = {(a["tenant_name"], a["metric"], a["level"]) for a in alerts(cli, "--threshold", "0.9")}
    assert ("acme", "emails", "threshold") not in at_90 and len(at_90) == 3
    assert alerts(cli, "--threshold", "85%")[0]["key"].endswith(":2026-10")


def test_notify_tells_each_alert_once(cli, engine, october, smtp):
    env = smtp.env()
    first = alerts(cli, "--notify", env=env)
    assert [a["told"] for a in first] == ["now"] * 4 and len(smtp.messages) == 4
    acme = [m for m in smtp.messages if "85%" in m["Subject"]]
    assert [m["Subject"] for m in acme] == ["You have used 85% of your emails this month on the Pro plan"]
    second = alerts(cli, "--notify", env=env)  # cron runs it again: nothing new
    assert [a["told"] for a in second] == ["before"] * 4 and len(smtp.messages) == 4
    # acme reaches its email limit: the limit is a new alert, told once
    with engine.begin() as conn:
        sent(conn, october["acme"], 150)
    third = alerts(cli, "--notify", env=env)
    assert [(a["metric"], a["level"], a["told"]) for a in third if a["tenant_name"] == "acme"] == [
        ("emails", "limit", "now"), ("seats", "limit", "before")]
    assert smtp.subjects()[-1] == "You have reached your limit of emails this month on the Pro plan"
    assert len(smtp.messages) == 5
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind, count(*) FROM pmfin_alerts WHERE kind LIKE 'usage%' GROUP BY kind")).all()
    assert dict(kinds) == {"usage_threshold": 1, "usage_limit": 4}


def test_on_demo_data_each_alert_is_sent_exactly_once(cli, engine, smtp):
    demo = cli("demo", "--tenants", "60", "--months", "3", "--seed", "5")
    assert demo.exit_code == 0, demo.output
    first = json.loads(cli("usage", "alerts", "--threshold", "0.3", "--notify", "-f", "json", env=smtp.env()).stdout)
    assert first, "the demo month has tenants above 30 % of a limit"
    assert len(smtp.messages) == len(first) == len({a["key"] for a in first})
    again = json.loads(cli("usage", "alerts", "--threshold", "0.3", "--notify", "-f", "json", env=smtp.env()).stdout)
    assert {a["told"] for a in again} == {"before"} and len(smtp.messages) == len(first)
    assert sorted(m["X-PMFIN-Notification"] for m in smtp.messages) == sorted(a["key"] for a in first)


@pytest.mark.parametrize("args, message", [
    (["--threshold", "80"], "--threshold must be a share above 0 and at most 1"),
    (["--threshold", "lots"], "--threshold must be a share such as 0.8"),
    (["--month", "2999-01"], "--month must not be after the current month"),
])
def test_bad_input(cli, args, message):
    result = cli("usage", "alerts", *args)
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
