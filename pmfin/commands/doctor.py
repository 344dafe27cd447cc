"""``pmfin doctor``: every check with a line and a verdict; exit 0 only when nothing fails."""

from __future__ import annotations

import typer

from pmfin.context import get_app
from pmfin.errors import ProblemsFound
from pmfin.output import Col, Format, FormatOption, render

HELP = (
    "Check the installation: database reachable and migrated, contract tables present, Stripe key present "
    "(and its mode), accepted and reachable, clock skew against Stripe's Date header (signatures need a correct "
    "clock), webhook secret, SMTP reachable (when configured), the last dunning run, the events sync cursor's "
    "age, failed events, the outbox. Each check has a line and a verdict (ok, warn, fail); exit 0 only when none "
    "fails, 1 when some do."
)


def register(app: typer.Typer) -> None:
    @app.command("doctor", help=HELP)
    def doctor(ctx: typer.Context, fmt: FormatOption = Format.table) -> None:
        from pmfin import doctor as service

        app_ctx = get_app(ctx)
        checks = service.run(app_ctx.settings, engine_factory=lambda: app_ctx.engine, client_factory=lambda: app_ctx.stripe)
        render(checks, fmt, columns=[Col("name", "check"), Col("verdict"), Col("detail")], title="pmfin doctor")
        failed = [c.name for c in checks if c.verdict == "fail"]
        if failed:
            raise ProblemsFound(f"{len(failed)} check(s) failed: {', '.join(failed)}")
