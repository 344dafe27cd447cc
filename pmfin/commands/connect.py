"""`pmfin connect` (to be filled in)."""

import typer

app = typer.Typer(help="connect commands.", no_args_is_help=True)
