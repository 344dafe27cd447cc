"""Notifications: recorded once per key, emailed exactly once over a real SMTP server on loopback
(aiosmtpd), pending while SMTP is down and sent when it is back; dashboard alerts beside them."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from billing_fixtures import add_tenant, alerts, notifications
from pmfin.notify import Notice, message_id, record, resolve_alerts, send_pending
from pmfin.settings import Settings
from smtp_server import SmtpServer, body


def notice(tenant_id: str, key: str = "test:1", **kw) -> Notice:
    fields = dict(tenant_id=tenant_id, key=key, kind="payment_failed", severity="warning",
                  subject="Payment failed: invoice A-0001 ($49.00)", body="We could not collect $49.00.\n",
                  alert="Payment of $49.00 failed.", invoice_id="in_1Test")
    fields.update(kw)
    return Notice(**fields)


def smtp_settings(server: SmtpServer):
    return Settings.load({}, environ=server.env()).smtp


def test_record_is_once_per_key_with_an_alert(engine):
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        assert record(conn, notice(tenant), smtp_configured=True) is True
        assert record(conn, notice(tenant, subject="changed"), smtp_configured=True) is False  # same key: told once
    (row,) = notifications(engine)
    assert (row["email_status"], row["recipient"], row["subject"]) == ("pending", "billing@acme.example",
                                                                      "Payment failed: invoice A-0001 ($49.00)")
    (alert,) = alerts(engine, tenant)
    assert alert["resolved_at"] is None and alert["message"] == "Payment of $49.00 failed." and alert["key"] == "test:1"


def test_status_without_recipient_or_smtp(engine):
    nobody = add_tenant(engine, "Nobody", email=None)
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        record(conn, notice(nobody, "k:1"), smtp_configured=True)
        record(conn, notice(tenant, "k:2"), smtp_configured=False)
    assert [n["email_status"] for n in notifications(engine)] == ["no_recipient", "not_configured"]


def test_send_delivers_each_pending_email_once(engine, smtp):
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        record(conn, notice(tenant, "k:1"), smtp_configured=True)
        record(conn, notice(tenant, "k:2", subject="Second"), smtp_configured=True)
    report = send_pending(engine, smtp_settings(smtp))
    assert report.ok and report.sent == ["k:1", "k:2"] and report.pending == 0
    again = send_pending(engine, smtp_settings(smtp))
    assert again.sent == [] and again.pending == 0
    assert smtp.subjects() == ["Payment failed: invoice A-0001 ($49.00)", "Second"]
    first = smtp.messages[0]
    assert first["To"] == "billing@acme.example" and first["From"] == "billing@penguinmails.example"
    assert first["Message-ID"] == message_id("k:1", "billing@penguinmails.example")  # a resent copy would match
    assert body(first).strip() == "We could not collect $49.00."
    assert {n["email_status"] for n in notifications(engine)} == {"sent"}
    assert all(n["sent_at"] is not None and n["attempts"] == 1 for n in notifications(engine))


def test_smtp_down_keeps_them_pending_and_the_cli_sends_them_later(engine, smtp, cli):
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        record(conn, notice(tenant, "k:1"), smtp_configured=True)
    smtp.stop()
    down = cli("notifications", "send", env=smtp.env())
    assert down.exit_code == 1 and "Traceback" not in down.output
    assert down.stderr.strip().splitlines()[-1].startswith("error: cannot reach the SMTP server 127.0.0.1:")
    (row,) = notifications(engine)
    assert row["email_status"] == "pending" and row["attempts"] == 1 and "cannot reach" in row["last_error"]
    listed = cli("notifications", "list", "--pending", "--format", "json", env=smtp.env())
    assert [n["key"] for n in __import__("json").loads(listed.stdout)] == ["k:1"]

    smtp.start()  # back, same port
    up = cli("notifications", "send", env=smtp.env())
    assert up.exit_code == 0, up.output
    assert len(smtp.messages) == 1 and notifications(engine)[0]["email_status"] == "sent"
    assert cli("notifications", "list", "--pending", "--format", "json", env=smtp.env()).stdout.strip() == "[]"


def test_a_refused_recipient_is_marked_and_the_batch_goes_on(engine, smtp):
    bad = add_tenant(engine, "Bad", email="gone@nowhere.example")
    good = add_tenant(engine, "Good", email="ok@good.example")
    smtp.refuse.add("gone@nowhere.example")
    with engine.begin() as conn:
        record(conn, notice(bad, "k:bad"), smtp_configured=True)
        record(conn, notice(good, "k:good"), smtp_configured=True)
    report = send_pending(engine, smtp_settings(smtp))
    assert report.sent == ["k:good"] and [k for k, _ in report.refused] == ["k:bad"] and report.ok
    assert [n["email_status"] for n in notifications(engine)] == ["refused", "sent"]


def test_two_senders_at_once_send_each_email_once(engine, smtp):
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        for i in range(30):
            record(conn, notice(tenant, f"k:{i}"), smtp_configured=True)
    settings = smtp_settings(smtp)
    results = []
    threads = [threading.Thread(target=lambda: results.append(send_pending(engine, settings))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k for r in results for k in r.sent) == sorted(f"k:{i}" for i in range(30))
    assert len(smtp.messages) == 30 and len({m["X-PMFIN-Notification"] for m in smtp.messages}) == 30


def test_send_without_smtp_is_a_configuration_error(cli):
    result = cli("notifications", "send")
    assert result.exit_code == 2 and result.stderr.startswith("error: no SMTP server configured")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PMFIN_SMTP_HOST": "mail.example"}, "PMFIN_SMTP_FROM must be the sender's email address"),
        ({"PMFIN_SMTP_HOST": "mail.example", "PMFIN_SMTP_FROM": "b@x.example", "PMFIN_SMTP_PORT": "70000"},
         "PMFIN_SMTP_PORT must be a whole number from 1 to 65535, got '70000'"),
        ({"PMFIN_SMTP_HOST": "mail.example", "PMFIN_SMTP_FROM": "b@x.example", "PMFIN_SMTP_USER": "u"},
         "PMFIN_SMTP_USER and PMFIN_SMTP_PASSWORD go together"),
        ({"PMFIN_SMTP_HOST": "mail.example", "PMFIN_SMTP_FROM": "b@x.example", "PMFIN_SMTP_STARTTLS": "maybe"},
         "PMFIN_SMTP_STARTTLS"),
        ({"PMFIN_DUNNING_RETRY_DAYS": "3,1"}, "PMFIN_DUNNING_RETRY_DAYS must be strictly increasing"),
        ({"PMFIN_DUNNING_RETRY_DAYS": "0,2"}, "PMFIN_DUNNING_RETRY_DAYS must be a whole number from 1 to 365 days, got '0'"),
        ({"PMFIN_FEE_ROUNDING": "bankers"}, "PMFIN_FEE_ROUNDING must be half_up or half_even, got 'bankers'"),
        ({"PMFIN_FINANCE_EMAIL": "finance"}, "PMFIN_FINANCE_EMAIL must be an email address"),
        ({"PMFIN_DUNNING_GRACE_DAYS": "20"}, "PMFIN_DUNNING_SUSPEND_DAYS (14) must not come before PMFIN_DUNNING_GRACE_DAYS (20)"),
    ],
)
def test_bad_notification_and_dunning_settings_are_one_line(cli, env, message):
    result = cli("notifications", "list", env=env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_resolve_alerts_of_one_invoice(engine):
    tenant = add_tenant(engine)
    with engine.begin() as conn:
        record(conn, notice(tenant, "a", invoice_id="in_1A"), smtp_configured=False)
        record(conn, notice(tenant, "b", invoice_id="in_1B"), smtp_configured=False)
        assert resolve_alerts(conn, tenant, invoice_id="in_1A") == 1
    assert [a["key"] for a in alerts(engine, tenant, open_only=True)] == ["b"]
    with engine.connect() as conn:  # the banner query the app runs
        banner = conn.execute(text("SELECT message FROM pmfin_alerts WHERE tenant_id = :t AND resolved_at IS NULL"),
                              {"t": tenant}).scalars().all()
    assert banner == ["Payment of $49.00 failed."]


def test_a_platform_level_message_goes_to_its_own_recipient(engine, smtp):
    with engine.begin() as conn:
        record(conn, notice(None, "finance:1", recipient="finance@penguinmails.example", alert_row=False), smtp_configured=True)
    report = send_pending(engine, smtp_settings(smtp))
    assert report.sent == ["finance:1"] and smtp.messages[0]["To"] == "finance@penguinmails.example"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pmfin_alerts")).scalar_one() == 0
