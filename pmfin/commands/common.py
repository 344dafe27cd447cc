"""What several command modules share: the tenant option, the Stripe client, progress, confirmation.

Light on purpose (no stripe, no sqlalchemy at import): every command module imports it.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Callable, Optional

import typer

from pmfin.context import AppContext
from pmfin.errors import UsageError

TenantOption = Annotated[Optional[str], typer.Option("--tenant", "-t", help="Tenant id (UUID).", show_default=False)]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking (needed when not on a terminal).")]
QueueOption = Annotated[bool, typer.Option("--queue", help="If Stripe cannot be reached, queue the request in the outbox "
                                           "(`pmfin outbox flush` sends it, once, when Stripe answers) instead of failing.")]


def parse_tenant(value: str | None, *, required: bool = False) -> uuid.UUID | None:
    if value is None:
        if required:
            raise UsageError("--tenant is required")
        return None
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        raise UsageError(f"tenant id must be a UUID, got {value!r}") from None


def stripe_client(app_ctx: AppContext):
    """The invocation's Stripe client; with --verbose its configuration on stderr."""
    from pmfin.output import note

    client = app_ctx.stripe
    if app_ctx.verbose:
        note(client.describe())
    return client


def confirm(question: str, *, yes: bool) -> None:
    """Ask on a terminal; without one, only ``--yes`` goes ahead (a cron job never hangs on a prompt)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question.rstrip('?')}: not on a terminal, so pass --yes to confirm")
    if not typer.confirm(question, default=False, err=True):
        raise UsageError("not confirmed: nothing was changed")


@contextmanager
def progress(label: str, *, enabled: bool = True) -> Iterator[Callable[[Any, int, int], None]]:
    """A progress bar on stderr (only on a terminal); yields ``advance(item, done, total)``."""
    from pmfin.output import stderr_console

    console = stderr_console()
    if not enabled or not console.is_terminal:
        yield lambda item, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(item: Any, done: int, total: int) -> None:
            bar.update(task, total=total, completed=done)

        yield advance


def queue_instead(app_ctx: AppContext, err: Exception, kind: str, params: dict, key: str, *,
                  tenant_id: str | None, fmt) -> bool:
    """``--queue`` and Stripe could not be reached: put the request in the outbox, say so, and
    return True; any other error: False (the caller raises it)."""
    from pmfin.output import Col, note, render
    from pmfin.stripe_ops import outbox

    if not outbox.unreachable(err):
        return False
    item = outbox.queue(app_ctx.engine, kind, params, key, tenant_id=tenant_id, reason=getattr(err, "message", str(err)))
    outbox.banner_follows(app_ctx.engine, getattr(err, "message", str(err)))
    render({"queued": item.id, "kind": item.kind, "idempotency_key": item.idempotency_key, "new": item.new}, fmt,
           columns=[Col("queued", kind="int"), Col("kind"), Col("idempotency_key", "idempotency key"), Col("new", kind="bool")],
           title="Queued (Stripe cannot be reached)")
    note(f"Stripe cannot be reached, so the request waits in the outbox as #{item.id}"
         + ("" if item.new else " (queued before)") + ": `pmfin outbox flush` sends it once Stripe answers")
    return True
