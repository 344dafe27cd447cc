"""``pmfin fx``: monthly FX rates for reporting every amount in one currency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pmfin.context import get_app
from pmfin.lazy import lazy_module
from pmfin.months import Month
from pmfin.output import Col, Format, FormatOption, render

service = lazy_module("pmfin.metrics.fx")


app = typer.Typer(
    help="FX rates for reporting in one currency: amounts in other currencies are converted with the "
    "rate of the month being reported (a direct C→R rate, else the inverse of R→C); without a rate "
    "they are left out of the report, with a warning saying how much.",
    no_args_is_help=True,
)

RATE_COLUMNS = [
    Col("month"),
    Col("base"),
    Col("quote"),
    Col("rate"),
    Col("source"),
    Col("imported_at", "imported at"),
]


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the header month,base,quote,rate.", show_default=False)],
    fmt: FormatOption = Format.table,
) -> None:
    """Import monthly FX rates from a CSV file (upsert by month, base, quote).

    Each line says: in MONTH (YYYY-MM), 1 BASE = RATE QUOTE, in major units (e.g.
    "2025-01,eur,usd,1.0342": one euro was 1.0342 dollars). Rates have at most 10 decimals.
    The whole file is checked first: a malformed line rejects the file (exit 2, the line number
    in the message) and nothing is imported. A rate for a month/pair that exists replaces it.
    """
    result = service.import_file(get_app(ctx).engine, file)
    render(
        result,
        fmt,
        columns=[Col("file"), Col("rows", kind="int"), Col("inserted", kind="int"), Col("updated", kind="int")],
        title="pmfin fx import",
    )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    month: Annotated[Optional[str], typer.Option("--month", help="Only this month (YYYY-MM).", show_default=False)] = None,
    currency: Annotated[
        Optional[str], typer.Option("--currency", help="Only rates with this currency as base or quote.", show_default=False)
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List the stored FX rates, newest month first (1 base = rate quote, major units)."""
    m = Month.parse(month, flag="--month") if month is not None else None
    rates = service.list_rates(get_app(ctx).engine, month=m, currency=currency)
    render([r.as_row() for r in rates], fmt, columns=RATE_COLUMNS, title="FX rates")
