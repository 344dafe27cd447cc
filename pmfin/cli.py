"""The ``pmfin`` command: mounts one Typer app per module of ``pmfin.commands``.

Errors: ``PmfinGroup.invoke`` is the one place where an expected error (``PmfinError``, or a
database error pmfin knows how to explain) becomes one line on stderr and an exit code. Output
that cannot be written (a full disk, a closed pipe) is handled there and in ``PmfinGroup.main``,
which flushes stdout before the process ends.
"""

from __future__ import annotations

import errno
import os
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


# stdout cannot take the output: the disk is full (or the file too big, or the device failing)
_WRITE_FAILED = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}
CLOSED_PIPE_EXIT = 141  # what a shell reports for `cat` killed by SIGPIPE (128 + 13)


def _output_failed(exc: OSError) -> int:
    """The exit code for output that could not be written: a closed pipe (``pmfin … | head -1``)
    ends quietly; anything else is one error line. Later writes go nowhere, so Python's own flush at
    exit has nothing left to complain about."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture stdout)
        pass
    if exc.errno == errno.EPIPE:
        return CLOSED_PIPE_EXIT
    print(f"error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
    return 2


def _is_output_error(exc: OSError) -> bool:
    return exc.errno == errno.EPIPE or exc.errno in _WRITE_FAILED


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
        except OSError as exc:  # help (or an error message) that could not be written
            if not _is_output_error(exc):
                raise
            sys.exit(_output_failed(exc))
        try:
            sys.stdout.flush()  # a full disk shows here when the output fitted in the buffer
        except OSError as exc:
            if not _is_output_error(exc):
                raise
            sys.exit(_output_failed(exc))
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except PmfinError as err:
            verbose = isinstance(ctx.obj, AppContext) and ctx.obj.verbose
            _report_error(err, verbose)
            raise typer.Exit(err.exit_code) from None
        except OSError as exc:  # writing the output failed (typer would exit 1 for a closed pipe)
            if not _is_output_error(exc):
                raise
            raise typer.Exit(_output_failed(exc)) from None
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
    "Stripe Connect accounts, tenant billing (plans, plan changes with prorations, cards), invoices and cron-run "
    "dunning with notifications, and a realistic demo history.\n\n"
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
    from pmfin.commands import (
        billing,
        connect,
        costs,
        db,
        demo,
        disputes,
        doctor,
        dunning,
        events,
        fx,
        invoices,
        notifications,
        outbox,
        payment_methods,
        plans,
        reconcile,
        report,
        subscription,
        usage,
    )

    app.add_typer(db.app, name="db")
    app.add_typer(report.app, name="report")
    app.add_typer(costs.app, name="costs")
    app.add_typer(fx.app, name="fx")
    app.add_typer(connect.app, name="connect")
    app.add_typer(invoices.app, name="invoices")
    app.add_typer(dunning.app, name="dunning")
    app.add_typer(notifications.app, name="notifications")
    app.add_typer(reconcile.app, name="reconcile")
    app.add_typer(disputes.app, name="disputes")
    app.add_typer(events.app, name="events")
    app.add_typer(events.webhooks_app, name="webhooks")
    app.add_typer(outbox.app, name="outbox")
    app.add_typer(billing.app, name="billing")
    app.add_typer(plans.app, name="plans")
    app.add_typer(subscription.app, name="subscription")
    app.add_typer(payment_methods.app, name="payment-methods")
    app.add_typer(usage.app, name="usage")
    demo.register(app)
    doctor.register(app)


_mount()


def main() -> None:
    app(prog_name="pmfin")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
