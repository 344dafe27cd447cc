"""The ``pmfin`` command: mounts one Typer app per module of ``pmfin.commands``.

Errors: ``PmfinGroup.invoke`` is the one place where an expected error (``PmfinError``, or a
database error pmfin knows how to explain) becomes one line on stderr and an exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from pmfin import __version__, typer_compat
from pmfin.context import AppContext
from pmfin.errors import PmfinError

typer_compat.apply()


def _report_error(err: PmfinError, verbose: bool) -> None:
    from pmfin.output import stderr_console

    from rich.text import Text

    console = stderr_console()
    # The message is plain text: it may quote user input or Stripe's "[param]".
    console.print(Text.assemble(("error: ", "bold red"), err.message), highlight=False)
    if verbose and err.detail:
        console.print(err.detail, highlight=False, markup=False)


try:  # typer >= 0.2x vendors click
    from typer import _click as click
except ImportError:  # pragma: no cover - older typer depends on click itself
    import click  # type: ignore[no-redef]


class PmfinGroup(TyperGroup):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Usage errors (a bad flag value, an unknown option) as one line on stderr, exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.ClickException as exc:
            if type(exc).__name__ != "NoArgsIsHelpError":  # help was already shown
                ctx = getattr(exc, "ctx", None)
                hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
                message = " ".join(exc.format_message().replace("Value error, ", "").split())
                print(f"error: {message}{hint}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:  # typer re-exports the Abort its click raises
            print("aborted", file=sys.stderr)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except PmfinError as err:
            verbose = isinstance(ctx.obj, AppContext) and ctx.obj.verbose
            _report_error(err, verbose)
            raise typer.Exit(err.exit_code) from None
        except Exception as exc:  # database errors pmfin can explain; anything else is a bug
            if "sqlalchemy" not in sys.modules:  # --help, click's own exits: nothing from a database
                raise
            from pmfin.db.errors import translate

            translated = translate(exc)
            if translated is None:
                raise
            verbose = isinstance(ctx.obj, AppContext) and ctx.obj.verbose
            _report_error(translated, verbose)
            raise typer.Exit(translated.exit_code) from None


app = typer.Typer(
    cls=PmfinGroup,
    name="pmfin",
    help="Finance operations for PenguinMails: revenue metrics and reports from the platform's Postgres, "
    "Stripe Connect accounts, and a realistic demo history.\n\n"
    "Exit codes: 0 success · 1 the command found problems · 2 bad input or configuration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Markdown: help paragraphs reflow to the terminal (typer keeps a docstring's line breaks
    # otherwise), and "- " lists render as lists.
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pmfin {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        Optional[str],
        typer.Option(
            "--database-url",
            help="Postgres URL (postgres://, postgresql://, ?host=/socket/dir). "
            "Default: PMFIN_DATABASE_URL, DATABASE_URL, else the embedded server under PMFIN_HOME.",
            show_default=False,
        ),
    ] = None,
    home: Annotated[
        Optional[Path],
        typer.Option("--home", help="Data directory (PMFIN_HOME). Default: the user data directory.", show_default=False),
    ] = None,
    env_file: Annotated[
        Optional[Path],
        typer.Option("--env-file", help="Read settings from this .env file (default: ./.env when present).", show_default=False),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Allow a live Stripe key (sk_live_/rk_live_). Refused without it.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail on errors and progress.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    flags = {
        "database_url": database_url,
        "home": str(home) if home else None,
        "live": True if live else None,
        "verbose": verbose,
    }
    ctx.obj = AppContext(flags, env_file=env_file)


def _mount() -> None:
    from pmfin.commands import connect, costs, db, demo, fx, report

    app.add_typer(db.app, name="db")
    app.add_typer(report.app, name="report")
    app.add_typer(costs.app, name="costs")
    app.add_typer(fx.app, name="fx")
    app.add_typer(connect.app, name="connect")
    demo.register(app)


_mount()


def main() -> None:
    app(prog_name="pmfin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
