"""``pmfin plans list|compare``: the catalog as a feature matrix, and a tenant's plan beside another
(database only: no Stripe)."""

from __future__ import annotations


import pytest
from sqlalchemy import text

from tenant_billing_fixtures import Catalog, documented, js


@pytest.fixture
def cat(engine):
    return Catalog(engine)  # no Stripe: plans have no Stripe price here


def test_list_is_a_feature_matrix(cli, cat, engine):
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, name, tier, billing_cycle, price_cents, currency, active) "
                          "VALUES ('legacy', 'Legacy', 'professional', 'month', 2900, 'usd', false)"))
    d = js(cli("plans", "list", "-f", "json"))
    assert [p["id"] for p in d["plans"]] == ["freemium", "professional", "professional_annual", "enterprise", "enterprise_annual"]
    pro_year = d["plans"][2]
    assert (pro_year["price"], pro_year["monthly_price"], pro_year["currency"], pro_year["email_limit"], pro_year["ip_limit"],
            pro_year["seat_limit"]) == (49000, 4083, "usd", 50_000, 1, 5)  # 49000 / 12 = 4083.33 → 4083
    assert (pro_year["premium_support"], pro_year["premium_support_price"], pro_year["premium_support_cycle"]) == (
        "add-on", 199_000, "year")
    assert [a["id"] for a in d["addons"]] == ["dedicated_ip", "premium_support"]
    assert d["addons"][1]["monthly_price"] == 16583  # 199000 / 12 = 16583.33
    assert "legacy" in [p["id"] for p in js(cli("plans", "list", "--all", "-f", "json"))["plans"]]
    text_ = documented("plans list")
    assert [k for k in [*d["plans"][0], *d["addons"][0]] if k not in text_] == []
    table = cli("plans", "list")
    assert table.exit_code == 0
    for text_ in ("$490.00", "$40.83", "500,000", "add-on, $1,990.00 / year", "Add-ons", "$165.83"):
        assert text_ in table.stdout, text_
    assert "legacy" not in table.stdout and "--all" in table.stderr
    csv = cli("plans", "list", "-f", "csv").stdout
    assert csv.startswith("# Plans\nid,name,tier,billing_cycle,price,monthly_price,currency,") and "\n# Add-ons\n" in csv


def test_compare_shows_what_the_tenant_would_lose(cli, cat, engine):
    t = cat.tenant("Acme", "enterprise", seats=7, ips=2, quantity=1)
    d = js(cli("plans", "compare", "--tenant", t.id, "--to", "professional", "-f", "json"))
    assert (d["direction"], d["mrr"]) == ("downgrade", {"current": 9900, "new": 4900, "change": -5000, "currency": "usd"})
    assert (d["usage"]["seats"], d["usage"]["ips"]) == (7, 2)
    assert d["losses"] == [
        "email limit 500,000 → 50,000 emails a month", "IP limit 5 → 1 IPs", "seat limit 25 → 5 seats",
        "7 seats in use, professional allows 5: remove 2 first", "2 IPs allocated, professional allows 1: release 1 first",
    ]
    assert d["blockers"] == d["losses"][3:]
    table = cli("plans", "compare", "--tenant", t.id, "--to", "professional")
    assert table.exit_code == 0
    assert "7 of 25" in table.stdout and "7 of 5" in table.stdout and "over the new limit by 2" in table.stdout
    assert "BLOCKS THE CHANGE: 7 seats in use" in table.stderr
    up = js(cli("plans", "compare", "--tenant", t.id, "--to", "enterprise_annual", "-f", "json"))
    assert (up["direction"], up["mrr"]["new"], up["losses"]) == ("downgrade", 8250, [])  # annual: 99000 / 12 = 8250 a month


@pytest.mark.parametrize("args, message", [
    (["--to", "enterprise"], "is already on plan enterprise"),
    (["--to", "gold"], "error: no plan 'gold'; the plans are: "),
    ([], "error: --to must be a plan id"),
])
def test_compare_bad_input(cli, cat, args, message):
    t = cat.tenant("Acme", "enterprise")
    result = cli("plans", "compare", "--tenant", t.id, *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.stderr.strip() and len(result.stderr.strip().splitlines()) == 1


def test_compare_a_tenant_without_a_subscription(cli, cat):
    t = cat.tenant("Bare", None, stripe=False)
    result = cli("plans", "compare", "--tenant", t.id, "--to", "enterprise")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: tenant {t.id} (Bare) has no current subscription to change"
