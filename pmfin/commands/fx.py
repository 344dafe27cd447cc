"""``pmfin fx`` (to be filled in)."""

import typer

app = typer.Typer(help="FX rates for reporting in one currency.", no_args_is_help=True)
