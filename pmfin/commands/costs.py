"""`pmfin costs` (to be filled in)."""

import typer

app = typer.Typer(help="costs commands.", no_args_is_help=True)
