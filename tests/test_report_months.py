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
