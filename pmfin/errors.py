"""Errors that pmfin expects, each with the exit code it ends the process with.

Raise these anywhere below the CLI; the one place that turns them into an exit is
``pmfin.cli.PmfinGroup.invoke``. A person never sees a traceback for one of them.

Exit codes: 0 success, 1 the job ran and found problems, 2 bad input or configuration.
"""

from __future__ import annotations


class PmfinError(Exception):
    """Base class. ``str(err)`` is the one line shown on stderr."""

    exit_code: int = 2

    def __init__(self, message: str, *, detail: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail  # extra lines shown only with --verbose
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(PmfinError):
    """Bad input: a flag value, a file, an id that does not exist (exit 2)."""

    exit_code = 2


class ConfigError(PmfinError):
    """Bad or missing configuration: database URL, Stripe key, live-key guard (exit 2)."""

    exit_code = 2


class DatabaseError(PmfinError):
    """The database is unreachable, or a table pmfin needs is missing (exit 2)."""

    exit_code = 2


class ProblemsFound(PmfinError):
    """The command ran to the end and found problems (reconciliation differences, failed retries): exit 1."""

    exit_code = 1
