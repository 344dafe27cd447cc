"""Months a report accepts: ASCII ``YYYY-MM``, never after the current month (there is no data yet)."""

from __future__ import annotations

import pytest

from pmfin.months import Month

FUTURE = str(Month.current().add(1))


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and result.stdout == "", result.output
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("report", "mrr", "--month", FUTURE),
        ("report", "movements", "--to", FUTURE),
        ("report", "churn", "--month", FUTURE),
        ("report", "retention", "--month", FUTURE),
        ("report", "cohorts", "--to", FUTURE),
        ("report", "revenue", "--month", FUTURE),
        ("report", "costs", "--month", FUTURE),
        ("report", "ltv", "--month", FUTURE),
        ("report", "cac", "--month", FUTURE),
        ("report", "breakeven", "--month", FUTURE),
        ("report", "summary", "--month", FUTURE),
    ],
)
def test_a_month_after_the_current_one_is_refused(cli, args):
    flag = args[2]
    assert one_line(cli(*args)) == (
        f"error: {flag} must not be after the current month ({Month.current()}), got '{FUTURE}'"
    )


def test_the_issue_example(cli):
    assert one_line(cli("report", "mrr", "--month", "2030-01")).startswith(
        "error: --month must not be after the current month")


def test_the_current_month_is_still_a_month(cli):
    assert cli("report", "mrr", "--month", str(Month.current())).exit_code == 0


@pytest.mark.parametrize("text", ["２０２５-０１", "٢٠٢٥-٠١", "2025-1", "25-01", "2025-01-01"])
def test_only_ascii_digits_are_months(cli, text):
    assert one_line(cli("report", "mrr", "--month", text)) == f"error: --month must be YYYY-MM, got {text!r}"


def test_cashflow_projects_from_at_most_the_month_after_this_one(cli):
    nxt = Month.current().next()
    assert one_line(cli("report", "cashflow", "--from", str(nxt.next()), "--starting-cash", "1000")) == (
        f"error: --from must not be after the month after the current one ({nxt}), got '{nxt.next()}'")
    ok = cli("report", "cashflow", "--from", str(nxt), "--starting-cash", "1000", "--months", "1", "--format", "json")
    assert ok.exit_code == 0, ok.output


def test_movements_over_a_century_is_linear_in_the_months(cli, engine, monkeypatch):
    """`report movements --from 1900-01 --to 2999-12` ran 6 min 50 s (Month.prev called 4.4
    million times, and a correlated lookup per month in SQL); --to is now at most the current
    month, so the longest range starts in 1900. With a tenant billed in EUR and no rates (a
    warning for every month since) the work per month is constant: counted, not timed."""
    import json
    import time

    from metrics_fixtures import Ledger

    with Ledger(engine) as led:
        led.sub(led.tenant("usd"), "2020-01", price=10_000)
        led.sub(led.tenant("eur"), "2021-06", price=5_000, currency="eur")
    calls = {"add": 0}
    real_add = Month.add

    def counting_add(self, months):
        calls["add"] += 1
        return real_add(self, months)

    monkeypatch.setattr(Month, "add", counting_add)
    started = time.monotonic()
    last = Month.last_complete()
    result = cli("report", "movements", "--from", "1900-01", "--to", str(last), "--format", "json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.stderr[-500:]
    rows = json.loads(result.stdout)
    months = real_add(last, 0) - Month(1900, 1) + 1
    assert len(rows) == months and rows[-1]["month"] == str(last) and rows[-1]["mrr"] == 10_000
    assert calls["add"] < 10 * months, calls  # was months × warnings
    assert "warning: no FX rate EUR→USD for" in result.stderr and result.stderr.count("\n") <= 5
    assert elapsed < 60, elapsed  # generous: it takes seconds; it took minutes
