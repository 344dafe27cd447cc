"""Money arithmetic, the one rounding rule, and the one renderer."""

import json
from decimal import Decimal

import pytest

from pmfin.errors import UsageError
from pmfin.money import Money, format_money, parse_amount, round_minor
from pmfin.output import Col, Format, render


@pytest.mark.parametrize(
    "value,expected",
    [("0.5", 0), ("1.5", 2), ("2.5", 2), ("-0.5", 0), ("-1.5", -2), ("166.6666", 167), ("83.3333", 83)],
)
def test_round_minor_is_half_even(value, expected):
    assert round_minor(Decimal(value)) == expected


def test_format_money():
    assert format_money(123456, "usd") == "$1,234.56"
    assert format_money(-5, "usd") == "-$0.05"
    assert format_money(1000, "jpy") == "¥1,000"  # zero-decimal currency
    assert format_money(1234567, "kwd") == "1,234.567 KWD"  # three-decimal currency
    assert format_money(99900, "chf") == "999.00 CHF"


def test_parse_amount():
    assert parse_amount("25000", "usd") == 2_500_000
    assert parse_amount("$25,000.50", "usd") == 2_500_050
    assert parse_amount("25000 USD", "usd") == parse_amount("usd 25000", "usd") == 2_500_000
    assert parse_amount("2500€", "eur") == parse_amount("€ 2500", "eur") == 250_000
    assert parse_amount("CA$100", "cad") == 10_000
    assert parse_amount("1000", "jpy") == 1000
    with pytest.raises(UsageError, match="more decimals"):
        parse_amount("1.005", "usd")
    with pytest.raises(UsageError, match="amount like"):
        parse_amount("lots", "usd", what="--starting-cash")
    with pytest.raises(UsageError, match="negative"):
        parse_amount("-5", "usd")
    assert parse_amount("-5", "usd", allow_negative=True) == -500


def test_money_refuses_mixed_currencies_and_floats():
    assert Money(100, "USD") + Money(50, "usd") == Money(150, "usd")
    with pytest.raises(ValueError, match="cannot combine USD with EUR"):
        Money(100, "usd") + Money(1, "eur")
    with pytest.raises(TypeError):
        Money(1.5, "usd")  # type: ignore[arg-type]


ROWS = [
    {"tenant": "a", "mrr": 9900, "currency": "usd", "share": Decimal("0.25")},
    {"tenant": "b", "mrr": 123456, "currency": "eur", "share": Decimal("0.75")},
]
COLS = [Col("tenant"), Col("mrr", "MRR", kind="money"), Col("currency"), Col("share", kind="ratio")]


def test_render_json_keeps_minor_units(capsys):
    render(ROWS, Format.json, columns=COLS)
    data = json.loads(capsys.readouterr().out)
    assert data == [
        {"tenant": "a", "mrr": 9900, "currency": "usd", "share": 0.25},
        {"tenant": "b", "mrr": 123456, "currency": "eur", "share": 0.75},
    ]


def test_render_csv(capsys):
    render(ROWS, "csv", columns=COLS)
    assert capsys.readouterr().out == "tenant,mrr,currency,share\na,9900,usd,0.25\nb,123456,eur,0.75\n"


def test_render_table_formats_money_per_row_currency(capsys):
    render(ROWS, "table", columns=COLS)
    out = capsys.readouterr().out
    assert "$99.00" in out and "€1,234.56" in out and "25.0%" in out


def test_render_single_object(capsys):
    render({"mrr": 500, "currency": "usd"}, "json")
    assert json.loads(capsys.readouterr().out) == {"mrr": 500, "currency": "usd"}
    render({"mrr": 500, "currency": "usd"}, "csv")
    assert capsys.readouterr().out == "mrr,currency\n500,usd\n"


def test_table_never_elides_figures_when_piped(capsys):
    # Not a terminal (a pipe, a file, cron mail): the table is as wide as it needs to be.
    rows = [{"month": "2026-10", **{f"metric_{i}": 50_444_062 + i for i in range(10)}, "currency": "usd"}]
    cols = [Col("month")] + [Col(f"metric_{i}", kind="money") for i in range(10)]
    render(rows, "table", columns=cols)
    out = capsys.readouterr().out
    assert out.count("$504,4") == 10 and "…" not in out and "2026-10" in out


def test_data_is_text_not_markup(capsys):
    render([{"name": "Acme [/x] Ltd", "note": "[bold]x[/bold]"}], "table")
    out = capsys.readouterr().out
    assert "Acme [/x] Ltd" in out and "[bold]x[/bold]" in out
    render({"name": "[/b]"}, "table", title="tenant [/i]")
    out = capsys.readouterr().out
    assert "[/b]" in out and "tenant [/i]" in out


def test_parse_amount_refuses_implausible_amounts():
    with pytest.raises(UsageError, match="implausibly large"):
        parse_amount("99999999999999999999999", "usd")
    assert parse_amount("9999999999999.99", "usd") == 999_999_999_999_999  # just under the limit


@pytest.mark.parametrize(
    "text, currency, message",
    [
        ("€2500000", "usd", "--cash is in EUR ('€2500000'), not in USD: give the amount in USD"),
        ("2500000 EUR", "usd", "--cash is in EUR ('2500000 EUR'), not in USD: give the amount in USD"),
        ("$100", "cad", "--cash is in USD ('$100'), not in CAD: give the amount in CAD"),
        ("£1", "eur", "--cash is in GBP ('£1'), not in EUR: give the amount in EUR"),
        ("２５", "usd", "--cash must be an amount like 25000 or 25000.50, got '２５'"),  # ASCII digits only
        ("1e5", "usd", "--cash must be an amount like 25000 or 25000.50, got '1e5'"),
        ("100 dollars", "usd", "--cash must be an amount like 25000 or 25000.50, got '100 dollars'"),
        ("$-5", "usd", "--cash must be an amount like 25000 or 25000.50, got '$-5'"),
    ],
)
def test_parse_amount_refuses_another_currency_and_odd_text(text, currency, message):
    with pytest.raises(UsageError) as exc:
        parse_amount(text, currency, what="--cash")
    assert exc.value.message == message
