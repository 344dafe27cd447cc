"""``pmfin demo`` (to be filled in)."""

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Fill the database with a realistic, deterministic PenguinMails history."""
        raise typer.Exit(0)
