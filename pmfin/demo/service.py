"""``run_demo`` and ``reset_demo``: the service functions behind ``pmfin demo``.

Both take an Engine, return dataclasses, never print. Progress is reported through an optional
callback: ``progress(phase)`` when a phase of ``RUN_STEPS`` begins, ``progress(phase, rows)`` with
the rows it has written so far (the command shows it on stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from pmfin.db import migrate
from pmfin.demo import reset as demo_reset
from pmfin.demo.generator import Options, generate
from pmfin.demo.loader import load
from pmfin.errors import UsageError
from pmfin.months import Month, not_after_current
from pmfin.settings import Settings

MAX_TENANTS = 1_000_000
MIN_MONTHS, MAX_MONTHS = 2, 120
SEED_RANGE = (0, 2**63 - 1)  # stored in pmfin_demo_objects.seed (bigint)

Progress = Callable[..., None]  # (phase) or (phase, rows written so far)

# the steps run_demo reports, in order (the command sizes its progress bar from this)
RUN_STEPS = (
    "checking", "schema", "clearing previous demo data", "simulating", "plans and add-ons", "tenants",
    "tenant config", "tenant users", "subscriptions", "subscription addons", "payments", "campaigns",
    "ip allocations", "emails", "costs and FX rates", "bookkeeping", "committing", "summary",
)


@dataclass(frozen=True)
class DemoRequest:
    tenants: int
    months: int
    seed: int
    end: Month
    force: bool = False

    @property
    def first(self) -> Month:
        return self.end.add(1 - self.months)


@dataclass
class DemoResult:
    request: DemoRequest
    summary_month: Month
    written: dict[str, int]
    replaced: dict[str, int]  # rows of an earlier demo that this run cleared first
    skipped: dict[str, int]  # rows already present (foreign plans, imported costs) left as they were
    foreign_tenants: int
    summary: Any = None  # pmfin.metrics.mrr.MonthMetrics
    seconds: float = 0.0


@dataclass
class ResetResult:
    removed: dict[str, int] = field(default_factory=dict)
    foreign_tenants: int = 0


def validate(tenants: int, months: int, seed: int, end: Month, *, current: Month) -> None:
    """UsageError (exit 2) for values the demo refuses, before anything touches the database."""
    if not 1 <= tenants <= MAX_TENANTS:
        raise UsageError(f"--tenants must be between 1 and {MAX_TENANTS:,}, got {tenants}")
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise UsageError(f"--months must be between {MIN_MONTHS} and {MAX_MONTHS}, got {months}")
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise UsageError(f"--seed must be between 0 and {SEED_RANGE[1]}, got {seed}")
    not_after_current(end, "--end", current)
    if end.add(1 - months).year < 1970:
        raise UsageError(f"--end {end} with --months {months} starts the history before 1970")


def summary_month(end: Month, current: Month) -> Month:
    """The last complete month of the history: --end, or the month before when --end is still running."""
    return end.prev() if end >= current else end


def _refuse_foreign(foreign: int, force: bool) -> None:
    if foreign and not force:
        raise UsageError(
            f"the database holds {foreign:,} tenant{'s' if foreign != 1 else ''} that pmfin demo did not "
            "create; refusing to add demo data beside them (nothing written) — pass --force to add it anyway"
        )


def run_demo(
    engine: Engine,
    request: DemoRequest,
    settings: Settings,
    *,
    progress: Progress | None = None,
    current: Month | None = None,
) -> DemoResult:
    """Create the schema if needed, then (one transaction, under an advisory lock) refuse when
    foreign tenants exist (unless ``force``), clear an earlier demo, generate and write the
    history. Then compute the executive summary of the last complete month."""
    import time

    started = time.perf_counter()
    step = progress or (lambda _phase, _rows=None: None)
    current = current or Month.current()
    validate(request.tenants, request.months, request.seed, request.end, current=current)

    with demo_reset.exclusive(engine) as conn:
        step("checking")
        with conn.begin():  # before the schema is created: a refusal writes nothing at all
            _refuse_foreign(demo_reset.foreign_tenants(conn), request.force)
        step("schema")
        migrate.init(engine, app_schema=True)
        with conn.begin():
            foreign = demo_reset.foreign_tenants(conn)
            _refuse_foreign(foreign, request.force)  # again, under the transaction that writes
            step("clearing previous demo data")
            replaced = demo_reset.clear(conn)
            step("clearing previous demo data", sum(replaced.values()))
            step("simulating")
            data = generate(
                Options(
                    tenants=request.tenants,
                    months=request.months,
                    seed=request.seed,
                    end=request.end,
                    stripe_fee_percent=settings.stripe_fee_percent,
                    stripe_fee_fixed=settings.stripe_fee_fixed,
                    connect_platform_share=settings.connect_platform_share,
                    fee_rounding=settings.fee_rounding,
                )
            )
            written, skipped = load(conn, data, seed=request.seed, hist_end=request.end.end, step=step)
            step("committing")
    step("summary")
    month = summary_month(request.end, current)
    summary = compute_summary(engine, month, settings.currency)
    return DemoResult(
        request=request,
        summary_month=month,
        written=written,
        replaced=replaced,
        skipped=skipped,
        foreign_tenants=foreign,
        summary=summary,
        seconds=time.perf_counter() - started,
    )


def compute_summary(engine: Engine, month: Month, currency: str):
    """MRR, ARR, customers and movements of ``month`` from the metrics module (not our own SQL)."""
    from pmfin.metrics.mrr import month_metrics

    with engine.connect() as conn:
        return month_metrics(conn, month, currency)


def reset_demo(engine: Engine) -> ResetResult:
    """Remove only the demo's data (one transaction, under the demo's advisory lock)."""
    with demo_reset.exclusive(engine) as conn:
        with conn.begin():
            if not demo_reset.has_demo_objects(conn):  # nothing of the demo's here: touch nothing
                return ResetResult(removed={}, foreign_tenants=demo_reset.foreign_tenants(conn))
            removed = demo_reset.clear(conn)
            foreign = demo_reset.foreign_tenants(conn)
    return ResetResult(removed=removed, foreign_tenants=foreign)
