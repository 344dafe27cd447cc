"""`pmfin report` (to be filled in)."""

import typer

app = typer.Typer(help="report commands.", no_args_is_help=True)
