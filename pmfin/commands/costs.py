"""``pmfin costs``: the monthly cost history that gross margin, CAC, break-even and cash flow use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pmfin.context import get_app
from pmfin.lazy import lazy_module
from pmfin.months import Month, month_range
from pmfin.output import Col, Format, FormatOption, note, render, render_sections

service = lazy_module("pmfin.metrics.costs")


app = typer.Typer(
    help="The monthly cost history (pmfin_costs): import it from CSV, list it.",
    no_args_is_help=True,
)

_ROW_COLUMNS = [
    Col("month"),
    Col("category"),
    Col("kind"),
    Col("amount", kind="money"),
    Col("currency"),
]
PLAN_COLUMNS = [*_ROW_COLUMNS, Col("action"), Col("previous", kind="money")]
SUMMARY_COLUMNS = [
    Col("currency"), Col("rows", kind="int"), Col("inserted", "new", kind="int"), Col("updated", "changed", kind="int"),
    Col("unchanged", kind="int"), Col("first_month", "from"), Col("last_month", "to"),
    Col("amount", "total", kind="money"),
]
TABLE_ROWS = 50  # a plan longer than this is summed up for people (not for --format csv|json)
FIRST_ROWS = 20
LIST_COLUMNS = [*_ROW_COLUMNS, Col("source")]


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with the columns month,category,kind,amount,currency.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be imported; write nothing.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Import monthly costs from a CSV file into pmfin_costs.

    Columns (header required, any order): month (YYYY-MM), category, kind (fixed|variable),
    amount (major units, e.g. 12500.00), currency (e.g. usd). Categories used by the reports:
    infrastructure, software, personnel, legal, insurance, operations (fixed); marketing, sales,
    customer_success (variable); capex (capital expenditure, for the cash-flow projection).
    Other categories are allowed. payment_processing and email_delivery are computed by pmfin
    from payments and emails and cannot be imported.

    A row replaces the stored amount of the same month, category, kind and currency (source =
    the file name). The file is checked whole before anything is written: one bad line rejects
    the file (exit 2, the line number in the message) and nothing is imported. A plan of more than
    50 rows is shown as a summary by currency and its first 20 rows (--format csv or json: every row).
    """
    rows = service.read_costs_file(file)
    result = service.import_costs(get_app(ctx).engine, rows, source=file.name, dry_run=dry_run)
    verb = "would import" if dry_run else "imported"
    title = f"{file.name}: {verb} {len(result.rows)} row(s)"
    if fmt is Format.table and len(result.rows) > TABLE_ROWS:
        # Too many rows to read in a terminal (and to lay out as one table): a summary and the first rows
        render_sections(
            [
                (f"{title}, by currency", result.summary(), SUMMARY_COLUMNS),
                (f"The first {FIRST_ROWS} of {len(result.rows):,} rows", result.rows[:FIRST_ROWS], PLAN_COLUMNS),
            ],
            fmt,
        )
        note(f"… and {len(result.rows) - FIRST_ROWS:,} more rows: all of them with --format csv or --format json")
    else:
        render(result.rows, fmt, columns=PLAN_COLUMNS, title=title)
    note(
        f"{verb} {len(result.rows)} row(s) from {file.name}: {result.inserted} new, {result.updated} changed, "
        f"{result.unchanged} unchanged" + (" (dry run: nothing written)" if dry_run else "")
    )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    first: Annotated[Optional[str], typer.Option("--from", help="First month (YYYY-MM).", show_default=False)] = None,
    last: Annotated[Optional[str], typer.Option("--to", help="Last month (YYYY-MM).", show_default=False)] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """The imported cost rows, by month (fixed before variable), in their own currencies."""
    first_m = Month.parse(first, flag="--from") if first else None
    last_m = Month.parse(last, flag="--to") if last else None
    if first_m and last_m:
        month_range(first_m, last_m)  # UsageError when --to is before --from
    with get_app(ctx).engine.connect() as conn:
        rows = service.list_costs(conn, first_m, last_m)
    render(rows, fmt, columns=LIST_COLUMNS, title="Costs")
