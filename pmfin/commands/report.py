"""``pmfin report``: revenue metrics and reports (DESIGN.md §3)."""

import typer

app = typer.Typer(help="Revenue metrics and reports.", no_args_is_help=True)


def _register_finance() -> None:
    # Unit economics, cash flow, revenue/costs and the executive summary live in their own module.
    from pmfin.commands import report_finance

    report_finance.register(app)


_register_finance()
