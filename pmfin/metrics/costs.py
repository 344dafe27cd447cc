"""Costs: the monthly cost history (``pmfin_costs``) and the variable costs pmfin computes itself.

Definitions (README "Finance metrics"):

- **Imported costs**: one amount per (month, category, kind, currency), imported from a CSV file
  with ``pmfin costs import``. The demo vocabulary: infrastructure, software, personnel, legal,
  insurance, operations (fixed); marketing, sales, customer_success (variable). Other categories
  are allowed; the row says whether it is fixed or variable. ``capex`` is read by the cash-flow
  projection as capital expenditure.
- **Payment processing** (variable, computed) = Σ ``payments.fee_cents`` of the payments created in
  the month; for a captured charge (succeeded, refunded, partially refunded, disputed) without a
  recorded fee, the fee model ``stripe_fee_percent`` % × amount + the currency's fixed fee. Stripe
  keeps its fee when a charge is refunded, so refunded charges still cost it. Summed exactly,
  rounded once per currency.
- **Email delivery** (variable, computed) = emails with ``sent_at`` in the month ×
  ``email_cost_cents`` (minor units of the configured currency per email), rounded once.
- **Sales & marketing** (for CAC) = categories marketing + sales.
- **Cost of revenue** (for gross margin) = payment processing + email delivery + infrastructure +
  customer_success.

Amounts in other currencies are converted to the reporting currency with the month's FX rate
(``pmfin_fx_rates``) or left out with a warning that says how much (``pmfin.metrics.amounts``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from pmfin import csvfile
from pmfin.db.bulk import copy_rows
from pmfin.db.own import missing as missing_own_tables
from pmfin.db.own import readable
from pmfin.errors import UsageError
from pmfin.metrics.amounts import Converter, ratio
from pmfin.money import is_currency_code, parse_amount, round_minor
from pmfin.months import Month
from pmfin.settings import Settings

FIXED_CATEGORIES = ("infrastructure", "software", "personnel", "legal", "insurance", "operations")
VARIABLE_CATEGORIES = ("marketing", "sales", "customer_success")
SALES_MARKETING = ("marketing", "sales")
COST_OF_REVENUE_CATEGORIES = ("infrastructure", "customer_success")
CAPEX = "capex"
# Computed from payments and emails; an import may not use these names (they would count twice).
PAYMENT_PROCESSING = "payment_processing"
EMAIL_DELIVERY = "email_delivery"
COMPUTED = (PAYMENT_PROCESSING, EMAIL_DELIVERY)
CAPTURED_STATUSES = ("succeeded", "refunded", "partially_refunded", "disputed")

CSV_COLUMNS = ("month", "category", "kind", "amount", "currency")
_CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# ---------------------------------------------------------------- import


@dataclass(frozen=True, slots=True)  # a file may hold hundreds of thousands
class CostRow:
    month: Month
    category: str
    kind: str
    amount: int  # minor units of currency
    currency: str
    line: int = 0

    @property
    def key(self) -> tuple[Month, str, str, str]:
        return (self.month, self.category, self.kind, self.currency)


@dataclass(frozen=True, slots=True)
class PlannedRow:
    month: Month
    category: str
    kind: str
    amount: int  # minor units of currency
    currency: str
    action: str  # insert | update | unchanged
    previous: int | None  # the stored amount it replaces


@dataclass(frozen=True)
class PlanSummary:
    """The plan of one currency, for a file too long to read row by row."""

    currency: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    first_month: Month
    last_month: Month
    amount: int  # Σ of the file's amounts


@dataclass
class ImportResult:
    source: str
    dry_run: bool
    rows: list[PlannedRow]

    def count(self, action: str) -> int:
        return sum(1 for r in self.rows if r.action == action)

    def summary(self) -> list[PlanSummary]:
        """Per currency: rows, what happens to them, the months they cover, their total (one pass)."""
        acc: dict[str, list] = {}
        for r in self.rows:
            a = acc.setdefault(r.currency, [0, {"insert": 0, "update": 0, "unchanged": 0}, r.month, r.month, 0])
            a[0] += 1
            a[1][r.action] += 1
            a[2], a[3] = min(a[2], r.month), max(a[3], r.month)
            a[4] += r.amount
        return [PlanSummary(cur, n, by["insert"], by["update"], by["unchanged"], first, last, total)
                for cur, (n, by, first, last, total) in sorted(acc.items())]

    @property
    def inserted(self) -> int:
        return self.count("insert")

    @property
    def updated(self) -> int:
        return self.count("update")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")


def read_costs_file(path: Path) -> list[CostRow]:
    """Read and validate a costs CSV; any problem rejects the whole file (``FILE, line N: reason``)."""
    return parse_costs_csv(csvfile.read_text(path), name=str(path))


def parse_costs_csv(content: str, *, name: str = "costs.csv") -> list[CostRow]:
    """Parse ``month,category,kind,amount,currency`` rows (header required, any column order).

    Validates everything before anything is written: a bad month, kind, amount or currency,
    a missing or unknown column, a computed category, or the same (month, category, kind,
    currency) twice is a UsageError that names the line the record starts on.
    """
    records = csvfile.records(content, name)
    try:
        _, header = next(records)
    except StopIteration:
        raise UsageError(f"{name}: the file is empty (expected a header: {','.join(CSV_COLUMNS)})") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in CSV_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or duplicated:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(repr(u) for u in unknown)}")
        if duplicated:
            problems.append(f"repeated column(s) {', '.join(duplicated)}")
        raise UsageError(f"{name}, line 1: {'; '.join(problems)} (expected {','.join(CSV_COLUMNS)})")
    index = {c: columns.index(c) for c in CSV_COLUMNS}

    rows: list[CostRow] = []
    seen: dict[tuple, int] = {}
    for line, record in records:
        if csvfile.is_blank(record):
            continue
        if len(record) != len(columns):
            raise UsageError(f"{name}, line {line}: expected {len(columns)} fields, got {len(record)}")
        row = _parse_record(record, index, f"{name}, line {line}", line)
        if row.key in seen:
            raise UsageError(
                f"{name}, line {line}: {row.month} {row.category} {row.kind} {row.currency.upper()} "
                f"is already on line {seen[row.key]}"
            )
        seen[row.key] = line
        rows.append(row)
    if not rows:
        raise UsageError(f"{name}: no cost rows after the header")
    return rows


def _parse_record(record: list[str], index: dict[str, int], where: str, line: int) -> CostRow:
    cell = {c: record[i].strip() for c, i in index.items()}
    try:
        month = Month.parse(cell["month"], flag="month")
    except UsageError:
        raise UsageError(f"{where}: month must be YYYY-MM, got {cell['month']!r}") from None
    category = cell["category"].lower()
    if not _CATEGORY_RE.match(category):
        raise UsageError(
            f"{where}: category must be a lowercase word like infrastructure or customer_success, got {cell['category']!r}"
        )
    if category in COMPUTED:
        raise UsageError(f"{where}: category {category!r} is computed by pmfin from payments and emails; do not import it")
    kind = cell["kind"].lower()
    if kind not in ("fixed", "variable"):
        raise UsageError(f"{where}: kind must be fixed or variable, got {cell['kind']!r}")
    currency = cell["currency"].lower()
    if not is_currency_code(currency):
        raise UsageError(f"{where}: currency must be a 3-letter ISO code like usd, got {cell['currency']!r}")
    try:
        amount = parse_amount(cell["amount"], currency, what="amount")
    except UsageError as exc:
        raise UsageError(f"{where}: {exc.message}") from None
    return CostRow(month, category, kind, amount, currency, line)


def import_costs(engine: Engine, rows: Sequence[CostRow], *, source: str, dry_run: bool = False) -> ImportResult:
    """Upsert ``rows`` into ``pmfin_costs`` in one transaction; ``dry_run`` plans without writing.

    The plan (insert / update / unchanged per row) is computed the same way for both; the real
    run then applies exactly that plan, with ``source`` and ``imported_at`` refreshed.
    """
    with engine.begin() as conn:
        if not dry_run:
            # Two imports at once: the second waits, then plans against what the first wrote.
            conn.execute(text("LOCK TABLE pmfin_costs IN SHARE ROW EXCLUSIVE MODE"))
        plan = _plan(conn, rows)
        if not dry_run and rows:
            # COPY into a scratch table, then one upsert: linear, however long the file
            conn.execute(text("CREATE TEMP TABLE pmfin_costs_import (LIKE pmfin_costs INCLUDING DEFAULTS) ON COMMIT DROP"))
            copy_rows(conn, "pmfin_costs_import", ("month", "category", "kind", "amount_cents", "currency", "source"),
                      ((r.month.first_day, r.category, r.kind, r.amount, r.currency, source) for r in rows))
            conn.execute(
                text(
                    "INSERT INTO pmfin_costs (month, category, kind, amount_cents, currency, source) "
                    "SELECT month, category, kind, amount_cents, currency, source FROM pmfin_costs_import "
                    "ON CONFLICT (month, category, kind, currency) DO UPDATE SET "
                    "amount_cents = EXCLUDED.amount_cents, source = EXCLUDED.source, imported_at = now()"
                )
            )
    return ImportResult(source=source, dry_run=dry_run, rows=plan)


def _plan(conn: Connection, rows: Sequence[CostRow]) -> list[PlannedRow]:
    months = sorted({r.month.first_day for r in rows})
    existing: dict[tuple, int] = {}
    if months:
        for m, cat, kind, cur, amount in conn.execute(
            text(
                "SELECT month, category, kind, currency, amount_cents FROM pmfin_costs "
                "WHERE month = ANY(:months)"
            ),
            {"months": months},
        ):
            existing[(Month.of(m), cat, kind, cur.strip())] = int(amount)
    plan = []
    for r in rows:
        previous = existing.get(r.key)
        action = "insert" if previous is None else ("unchanged" if previous == r.amount else "update")
        plan.append(PlannedRow(r.month, r.category, r.kind, r.amount, r.currency, action, previous))
    return plan


# ---------------------------------------------------------------- listing


@dataclass(frozen=True)
class CostEntry:
    month: str
    category: str
    kind: str
    amount: int  # minor units of currency
    currency: str
    source: str | None


def list_costs(conn: Connection, first: Month | None = None, last: Month | None = None) -> list[CostEntry]:
    """The imported cost rows, by month, kind (fixed first), category."""
    rows = conn.execute(
        text(
            "SELECT month, category, kind, amount_cents, currency, source FROM pmfin_costs "
            "WHERE (CAST(:first AS date) IS NULL OR month >= :first) "
            "AND (CAST(:last AS date) IS NULL OR month <= :last) "
            "ORDER BY month, kind, category, currency"
        ),
        {"first": first.first_day if first else None, "last": last.first_day if last else None},
    )
    return [CostEntry(str(Month.of(m)), c, k, int(a), cur.strip(), s) for m, c, k, a, cur, s in rows]


# ---------------------------------------------------------------- month structure


@dataclass(frozen=True)
class CostLine:
    category: str
    kind: str
    amount: int  # minor units of currency (the reporting currency)
    currency: str
    share: Decimal | None  # of the month's total costs
    computed: bool = False  # payment processing / email delivery


@dataclass
class MonthCosts:
    """Every cost of one month in the reporting currency, imported and computed."""

    month: str
    currency: str
    lines: list[CostLine]
    emails_sent: int
    warnings: list[str] = field(default_factory=list)
    has_imported: bool = False  # any pmfin_costs row for the month (in any currency)

    def amount(self, *categories: str) -> int:
        return sum(line.amount for line in self.lines if line.category in categories)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    @property
    def fixed(self) -> int:
        return sum(line.amount for line in self.lines if line.kind == "fixed")

    @property
    def variable(self) -> int:
        return sum(line.amount for line in self.lines if line.kind == "variable")

    @property
    def payment_processing(self) -> int:
        return self.amount(PAYMENT_PROCESSING)

    @property
    def email_delivery(self) -> int:
        return self.amount(EMAIL_DELIVERY)

    @property
    def sales_marketing(self) -> int:
        return self.amount(*SALES_MARKETING)

    @property
    def cost_of_revenue(self) -> int:
        return self.payment_processing + self.email_delivery + self.amount(*COST_OF_REVENUE_CATEGORIES)

    @property
    def capex(self) -> int:
        return self.amount(CAPEX)


def month_costs(conn: Connection, month: Month, currency: str, settings: Settings) -> MonthCosts:
    """The month's cost lines: imported rows by category and kind, plus the two computed lines."""
    fx = Converter(conn, month, currency)
    imported = conn.execute(
        readable(
            conn,
            "SELECT category, kind, currency, sum(amount_cents) FROM pmfin_costs "
            "WHERE month = :month GROUP BY category, kind, currency",
        ),
        {"month": month.first_day},
    ).all()
    by_line: dict[tuple[str, str], Decimal] = {}
    for category, kind, cur, amount in imported:
        converted = fx.convert(Decimal(amount), cur.strip(), what=f"{category} costs")
        if converted is not None:
            by_line[(category, kind)] = by_line.get((category, kind), Decimal(0)) + converted

    processing, fee_warnings = processing_cost(conn, month, settings)
    proc_total = Decimal(0)
    for cur, exact in processing.items():
        converted = fx.convert(exact, cur, what="payment processing fees")
        if converted is not None:
            proc_total += converted
    emails = emails_sent(conn, month)
    email_exact = fx.convert(Decimal(emails) * settings.email_cost_cents, settings.currency, what="email delivery cost")

    amounts: list[tuple[str, str, int, bool]] = [
        (cat, kind, round_minor(exact), False) for (cat, kind), exact in by_line.items()
    ]
    amounts.append((PAYMENT_PROCESSING, "variable", round_minor(proc_total), True))
    amounts.append((EMAIL_DELIVERY, "variable", round_minor(email_exact or 0), True))
    total = sum(a for _, _, a, _ in amounts)
    order = {c: i for i, c in enumerate(FIXED_CATEGORIES + VARIABLE_CATEGORIES + COMPUTED)}
    amounts.sort(key=lambda a: (a[1] != "fixed", order.get(a[0], len(order)), a[0]))
    lines = [CostLine(cat, kind, amount, currency, ratio(amount, total), computed) for cat, kind, amount, computed in amounts]
    warnings = [*fx.warnings, *fee_warnings]
    if "pmfin_costs" in missing_own_tables(conn):
        warnings.append("pmfin's own tables are missing here (run `pmfin db init`): no imported costs are counted")
    return MonthCosts(
        month=str(month), currency=currency, lines=lines, emails_sent=emails, warnings=warnings,
        has_imported=bool(imported),
    )


def processing_cost(conn: Connection, month: Month, settings: Settings) -> tuple[dict[str, Decimal], list[str]]:
    """Exact payment-processing cost in minor units per payment currency (not yet rounded), and
    warnings. A charge without a recorded fee costs the fee model: ``stripe_fee_percent`` % of
    the amount + the fixed fee of its own currency (``PMFIN_STRIPE_FEE_FIXED``); a currency with
    no fixed fee configured gets the percentage only, and a warning says so."""
    rows = conn.execute(
        text(
            """
            SELECT currency,
                   coalesce(sum(fee_cents), 0) AS recorded,
                   coalesce(sum(amount_cents) FILTER (WHERE fee_cents IS NULL AND status = ANY(:captured)), 0)
                       AS modelled_amount,
                   count(*) FILTER (WHERE fee_cents IS NULL AND status = ANY(:captured)) AS modelled_charges
            FROM payments
            WHERE created_at >= :start AND created_at < :end
            GROUP BY currency
            """
        ),
        {"captured": list(CAPTURED_STATUSES), "start": month.start, "end": month.end},
    ).all()
    costs: dict[str, Decimal] = {}
    warnings: list[str] = []
    for cur, recorded, modelled_amount, modelled_charges in rows:
        cur = cur.strip().lower()
        fixed = settings.fixed_fee(cur)
        if modelled_charges and fixed is None:
            warnings.append(
                f"no fixed Stripe fee configured for {cur.upper()} (PMFIN_STRIPE_FEE_FIXED): "
                f"{modelled_charges} charge(s) without a recorded fee count only {settings.stripe_fee_percent}%"
            )
        exact = (
            Decimal(recorded)
            + Decimal(modelled_amount) * settings.stripe_fee_percent / 100
            + modelled_charges * (fixed or 0)
        )
        if exact:
            costs[cur] = exact
    return costs, warnings


def emails_sent(conn: Connection, month: Month) -> int:
    return int(
        conn.execute(
            text("SELECT count(*) FROM emails WHERE sent_at >= :start AND sent_at < :end"),
            {"start": month.start, "end": month.end},
        ).scalar_one()
    )


# ---------------------------------------------------------------- report costs


@dataclass(frozen=True)
class TrendRow:
    month: str
    currency: str
    fixed: int
    variable: int
    total: int
    change: Decimal | None  # total vs the month before


@dataclass
class CostReport:
    month: str
    currency: str
    total: int
    fixed: int
    variable: int
    emails_sent: int
    lines: list[CostLine]
    trend: list[TrendRow]
    warnings: list[str]


def cost_report(conn: Connection, month: Month, currency: str, settings: Settings, *, trend: int = 6) -> CostReport:
    """Cost structure of ``month`` and the totals of the ``trend`` months ending with it."""
    if trend < 1:
        raise UsageError(f"--trend must be at least 1, got {trend}")
    history = [month_costs(conn, month.add(-i), currency, settings) for i in range(trend, -1, -1)]
    current = history[-1]
    rows = []
    for prev, cur in zip(history, history[1:]):
        change = ratio(cur.total - prev.total, prev.total)
        rows.append(TrendRow(cur.month, currency, cur.fixed, cur.variable, cur.total, change))
    warnings = list(dict.fromkeys(w for mc in history[1:] for w in mc.warnings))
    if not current.has_imported:
        warnings.append(f"no costs imported for {month}: only the computed lines are shown (pmfin costs import)")
    return CostReport(
        month=str(month), currency=currency, total=current.total, fixed=current.fixed,
        variable=current.variable, emails_sent=current.emails_sent, lines=current.lines,
        trend=rows, warnings=warnings,
    )
