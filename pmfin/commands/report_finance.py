"""``pmfin report`` commands for unit economics, cash flow, revenue, costs and the summary."""

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``pmfin report`` app."""
