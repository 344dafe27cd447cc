"""``pmfin invoices`` through the real CLI, the real Stripe SDK over HTTP to the fake, real Postgres."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_fixtures import add_tenant, at, attempts, billing_status, case_row, fail_payment

VISA, INSUFFICIENT, GENERIC = "4242424242424242", "4000000000009995", "4000000000000002"


@pytest.fixture
def billing(engine, stripe_fake):
    """Two tenants with a Stripe customer each and a few invoices."""
    acme = stripe_fake.billing.add_customer(email="billing@acme.example", cards=(INSUFFICIENT, VISA))
    globex = stripe_fake.billing.add_customer(email="ap@globex.example", cards=(VISA,))
    t_acme = add_tenant(engine, "Acme", customer=acme["id"])
    t_globex = add_tenant(engine, "Globex", customer=globex["id"])
    inv = {
        "open": stripe_fake.billing.add_invoice(acme["id"], 4900, attempt_count=1, created=1_793_000_000),
        "paid": stripe_fake.billing.add_invoice(acme["id"], 9900, status="paid", created=1_790_000_000),
        "draft": stripe_fake.billing.add_invoice(acme["id"], 1000, status="draft", created=1_793_100_000),
        "void": stripe_fake.billing.add_invoice(globex["id"], 2000, status="void", created=1_793_200_000),
        "taxed": stripe_fake.billing.add_invoice(globex["id"], 12_100, tax=2_100, lines=[6_000, 4_000], created=1_793_300_000),
    }
    return {"acme": (t_acme, acme), "globex": (t_globex, globex), "inv": inv}


def js(result, code=0):
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def one_error(result, code=2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# -- list / show ------------------------------------------------------------------------------------


def test_list_filters_by_tenant_status_and_date(cli, stripe_env, billing, stripe_fake):
    inv = billing["inv"]
    every = js(cli("invoices", "list", "-f", "json", env=stripe_env))
    assert [i["id"] for i in every] == [inv[k]["id"] for k in ("taxed", "void", "draft", "open", "paid")]  # newest first
    assert {i["tenant_name"] for i in every} == {"Acme", "Globex"}
    acme = js(cli("invoices", "list", "--tenant", billing["acme"][0], "-f", "json", env=stripe_env))
    assert [i["id"] for i in acme] == [inv["draft"]["id"], inv["open"]["id"], inv["paid"]["id"]]
    open_ = js(cli("invoices", "list", "--status", "open", "-f", "json", env=stripe_env))
    assert [i["id"] for i in open_] == [inv["taxed"]["id"], inv["open"]["id"]]
    recent = js(cli("invoices", "list", "--since", "2026-10-27", "-f", "json", env=stripe_env))  # 1_793_000_000 = 2026-10-26T…
    assert inv["open"]["id"] not in [i["id"] for i in recent] and inv["draft"]["id"] in [i["id"] for i in recent]
    (get,) = [r for r in stripe_fake.requests_to("GET", "/v1/invoices") if r.params.get("created")]
    assert get.params["created"] == {"gte": str(1_793_059_200)} and get.params["limit"] == "100"
    first = every[-1]
    assert set(first) == {"id", "number", "status", "tenant_id", "tenant_name", "customer_id", "currency", "total",
                          "amount_due", "amount_paid", "amount_remaining", "attempt_count", "created", "due_date",
                          "hosted_invoice_url", "invoice_pdf"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--status", "late"], "error: --status must be one of draft, open, paid, uncollectible, void, got 'late'"),
        (["--tenant", "acme"], "error: tenant id must be a UUID, got 'acme'"),
        (["--since", "2026-02-30"], "error: --since must be a date YYYY-MM-DD, got '2026-02-30'"),
        (["--tenant", "00000000-0000-4000-8000-000000000000"], "error: no tenant with id 00000000-0000-4000-8000-000000000000"),
    ],
)
def test_list_bad_input_is_one_line(cli, stripe_env, args, message, stripe_fake):
    assert one_error(cli("invoices", "list", *args, env=stripe_env)) == message
    assert stripe_fake.requests_to("GET", "/v1/invoices") == []


def test_list_for_a_tenant_without_customer(cli, stripe_env, engine):
    tenant = add_tenant(engine, "Bare", customer=None)
    assert one_error(cli("invoices", "list", "--tenant", tenant, env=stripe_env)).endswith(
        "has no Stripe customer (tenant_config.stripe_customer_id)")


def test_show_has_lines_tax_totals_payments_attempts_and_links(cli, stripe_env, billing):
    taxed = billing["inv"]["taxed"]
    d = js(cli("invoices", "show", taxed["id"], "-f", "json", env=stripe_env))
    # lines 60.00 + 40.00 = 100.00 subtotal, tax 21.00, total 121.00
    assert [li["amount"] for li in d["lines"]] == [6000, 4000]
    assert (d["subtotal"], d["tax"], d["total"], d["amount_due"], d["amount_remaining"]) == (10_000, 2_100, 12_100, 12_100, 12_100)
    assert d["hosted_invoice_url"].startswith("https://") and d["invoice_pdf"]
    assert d["attempts"] == [] and d["case"] is None and d["tenant_name"] == "Globex"
    assert [p["status"] for p in d["payments"]] == ["open"]
    table = cli("invoices", "show", taxed["id"], env=stripe_env)
    assert table.exit_code == 0 and "$121.00" in table.stdout and "$21.00" in table.stdout
    assert "Stripe payments" in table.stdout and "no dunning case" in table.stderr


def test_show_unknown_or_malformed_invoice(cli, stripe_env, stripe_fake):
    assert one_error(cli("invoices", "show", "inv-42", env=stripe_env)) == "error: a Stripe invoice id looks like in_1AbC…, got 'inv-42'"
    message = one_error(cli("invoices", "show", "in_1Missing", env=stripe_env))
    assert message.startswith("error: could not read invoice in_1Missing: Stripe refused the request") and "No such invoice" in message


# -- pay -------------------------------------------------------------------------------------------


def test_pay_with_the_default_card_declines_then_another_card_pays(cli, stripe_env, billing, stripe_fake, engine):
    tenant, acme = billing["acme"]
    open_ = billing["inv"]["open"]
    declined = cli("invoices", "pay", open_["id"], "-f", "json", env=stripe_env)
    assert declined.exit_code == 1, declined.output
    out = json.loads(declined.stdout)
    default = acme["payment_methods"][0]
    assert (out["outcome"], out["reason"], out["payment_method"]) == ("declined", "card_declined/insufficient_funds", default)
    assert out["idempotency_key"] == f"pmfin:invoices:pay:{open_['id']}:1:{default}"
    assert declined.stderr.strip().startswith(f"error: invoice {open_['id']} was declined on visa •••• 9995")

    # A deliberate new try with the same card: Stripe's attempt_count did not move (manual
    # attempts after the first do not count), so pmfin makes the key new itself.
    again = cli("invoices", "pay", open_["id"], "-f", "json", env=stripe_env)
    assert again.exit_code == 1 and json.loads(again.stdout)["idempotency_key"] == f"pmfin:invoices:pay:{open_['id']}:1:{default}:2"

    visa = acme["payment_methods"][1]
    paid = js(cli("invoices", "pay", open_["id"], "--payment-method", visa, "-f", "json", env=stripe_env))
    assert paid["outcome"] == "succeeded" and paid["reason"] is None
    assert stripe_fake.billing.invoice(open_["id"])["status"] == "paid"
    assert [a["outcome"] for a in attempts(engine, open_["id"])] == ["declined", "declined", "succeeded"]
    assert [a["origin"] for a in attempts(engine, open_["id"])] == ["manual"] * 3
    # and now there is nothing to pay
    assert one_error(cli("invoices", "pay", open_["id"], env=stripe_env)) == f"error: invoice {open_['id']} is paid: nothing is due"


@pytest.mark.parametrize("which, message", [("paid", "is paid: nothing is due"), ("void", "is void: a void invoice cannot be paid"),
                                            ("draft", "is draft: finalize it first: a draft is not due yet")])
def test_pay_refuses_what_is_not_payable_before_any_charge(cli, stripe_env, billing, stripe_fake, which, message):
    inv = billing["inv"][which]
    assert one_error(cli("invoices", "pay", inv["id"], env=stripe_env)) == f"error: invoice {inv['id']} {message}"
    assert stripe_fake.requests_to("POST", r"/v1/invoices/.*/pay") == []


def test_pay_with_a_card_the_customer_does_not_have(cli, stripe_env, billing, stripe_fake):
    message = one_error(cli("invoices", "pay", billing["inv"]["open"]["id"], "--payment-method", "pm_1Stranger", env=stripe_env))
    assert message.startswith("error: pm_1Stranger is not a saved card of customer")
    assert one_error(cli("invoices", "pay", billing["inv"]["open"]["id"], "--payment-method", "visa", env=stripe_env)) == (
        "error: a Stripe payment method id looks like pm_1AbC…, got 'visa'")
    assert stripe_fake.requests_to("POST", r"/v1/invoices/.*/pay") == []


def test_a_rerun_after_a_lost_answer_gets_stripes_stored_answer(cli, stripe_env, billing, stripe_fake, engine):
    """Stripe charged, but every answer was lost (the SDK's retries too): the command fails saying a
    rerun is safe; the rerun sends the same key and Stripe replays the success — one charge."""
    _, acme = billing["acme"]
    open_, visa = billing["inv"]["open"], acme["payment_methods"][1]
    stripe_fake.inject("drop", after=True, method="POST", path=f"/v1/invoices/{open_['id']}/pay", times=3)
    lost = cli("invoices", "pay", open_["id"], "--payment-method", visa, env=stripe_env)
    assert "rerunning is safe" in one_error(lost)
    (pending,) = attempts(engine, open_["id"])
    assert pending["outcome"] is None
    rerun = js(cli("invoices", "pay", open_["id"], "--payment-method", visa, "-f", "json", env=stripe_env))
    assert rerun["outcome"] == "succeeded" and rerun["replayed"] is True and rerun["idempotency_key"] == pending["idempotency_key"]
    assert sum(c["status"] == "succeeded" for c in stripe_fake.billing.charges(open_["id"])) == 1
    assert {p.idempotency_key for p in stripe_fake.requests_to("POST", f"/v1/invoices/{open_['id']}/pay")} == {pending["idempotency_key"]}


def restricted_tenant(engine, stripe_fake, cli, stripe_env):
    """A tenant whose only card declines, restricted by dunning (day 0 2026-11-02, run on day 7)."""
    customer = stripe_fake.billing.add_customer(cards=(INSUFFICIENT,))
    invoice = stripe_fake.billing.add_invoice(customer["id"], 4900, attempt_count=1)
    tenant = add_tenant(engine, "Initech", customer=customer["id"])
    fail_payment(engine, tenant, invoice["id"], at("2026-11-02T10:00:00"))
    assert cli("dunning", "run", "--as-of", "2026-11-09T12:00:00Z", env=stripe_env).exit_code == 0
    assert billing_status(engine, tenant) == "restricted"
    return tenant, customer, invoice


def test_paying_closes_the_open_dunning_case_at_once_and_tells_the_tenant(cli, stripe_env, engine, stripe_fake, smtp):
    env = {**stripe_env, **smtp.env()}
    tenant, customer, open_ = restricted_tenant(engine, stripe_fake, cli, env)
    visa = stripe_fake.billing.add_card(customer["id"], VISA)  # the tenant saved a new card
    paid = js(cli("invoices", "pay", open_["id"], "--payment-method", visa["id"], "-f", "json", env=env))
    assert smtp.subjects()[-1] == f"Payment received: invoice {open_['number']} ($49.00)"  # sent at once
    assert paid["case_closed"] is True
    assert case_row(engine, open_["id"])["status"] == "recovered" and billing_status(engine, tenant) == "active"
    shown = js(cli("invoices", "show", open_["id"], "-f", "json", env=stripe_env))
    assert shown["case"]["status"] == "recovered" and [a["origin"] for a in shown["attempts"]][-1] == "manual"


# -- void ------------------------------------------------------------------------------------------


def test_void_asks_and_without_a_terminal_needs_yes(cli, stripe_env, billing, stripe_fake, engine):
    tenant, _, open_ = restricted_tenant(engine, stripe_fake, cli, stripe_env)
    refused = cli("invoices", "void", open_["id"], env=stripe_env)
    assert one_error(refused).endswith("not on a terminal, so pass --yes to confirm")
    assert stripe_fake.billing.invoice(open_["id"])["status"] == "open"
    done = js(cli("invoices", "void", open_["id"], "--yes", "-f", "json", env=stripe_env))
    assert done["status"] == "void" and done["case_closed"] is True
    assert case_row(engine, open_["id"])["close_reason"] == "voided" and billing_status(engine, tenant) == "active"
    (post,) = stripe_fake.requests_to("POST", f"/v1/invoices/{open_['id']}/void")
    assert post.idempotency_key == f"pmfin:invoices:void:{open_['id']}"
    again = cli("invoices", "void", billing["inv"]["paid"]["id"], "--yes", env=stripe_env)
    assert one_error(again).endswith("is paid: only an open or uncollectible invoice can be voided")


# -- pdf -------------------------------------------------------------------------------------------


def test_pdf_downloads_a_real_pdf(cli, stripe_env, billing, tmp_path):
    taxed = billing["inv"]["taxed"]
    out = js(cli("invoices", "pdf", taxed["id"], "-f", "json", env=stripe_env))
    path = Path(out["path"])
    assert path.name == f"{taxed['number']}.pdf" and path.exists()
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:] and out["bytes"] == len(data)
    chosen = tmp_path / "acme-nov.pdf"
    assert js(cli("invoices", "pdf", taxed["id"], "-o", str(chosen), "-f", "json", env=stripe_env))["path"] == str(chosen)
    assert chosen.read_bytes() == data
    assert one_error(cli("invoices", "pdf", taxed["id"], "-o", str(tmp_path / "no" / "x.pdf"), env=stripe_env)) == (
        f"error: the directory {tmp_path / 'no'} does not exist")
    assert one_error(cli("invoices", "pdf", billing["inv"]["draft"]["id"], env=stripe_env)).startswith(
        f"error: invoice {billing['inv']['draft']['id']} has no PDF yet")
