"""The one place that renders results: ``--format table|json|csv``.

Services return plain data (dicts or dataclasses). Commands call ``render`` with a column
spec that says which fields are money; tables show money as a person reads it
(``$1,234.56``), JSON and CSV keep it as integer minor units with the currency alongside.
Data goes to stdout; warnings and errors go to stderr (``warn``).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import enum
import errno
import io
import json
import os
import sys
import textwrap
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pmfin.money import format_money
from pmfin.months import Month


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Output format: 'table' for people; 'json' or 'csv' for programs "
        "(money as integer minor units with the currency alongside).",
    ),
]


@dataclass(frozen=True)
class Col:
    """One output column. ``kind``: text, int, money, ratio (0.05 → 5.0%), decimal, bool."""

    key: str
    header: str | None = None
    kind: str = "text"
    currency_key: str = "currency"  # where a money column finds its currency in the row
    currency: str | None = None  # or a fixed currency for the whole column

    @property
    def title(self) -> str:
        return self.header or self.key.replace("_", " ")


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def to_plain(obj: Any) -> Any:
    """Dataclasses, enums, Decimals, months, dates and UUIDs → JSON-ready Python values.
    A month is always ``"YYYY-MM"``."""
    if type(obj) in _PLAIN_TYPES:  # most values: checked first, for large outputs
        return obj
    if isinstance(obj, Month):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Decimal):
        # Ratios and rates: a JSON number. Money is never a Decimal here (it is int).
        if obj == obj.to_integral_value() and abs(obj) < 2**53:
            return int(obj) if obj.as_tuple().exponent >= 0 else float(obj)
        return float(obj)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    return obj


def dumps_json(obj: Any) -> str:
    return json.dumps(to_plain(obj), indent=2, ensure_ascii=False)


def _cell(value: Any, col: Col, row: Mapping[str, Any]) -> str:
    if value is None:
        return "—"
    if col.kind == "money":
        currency = col.currency or row.get(col.currency_key) or "usd"
        return format_money(int(value), str(currency))
    if col.kind == "ratio":
        return f"{Decimal(str(value)) * 100:.1f}%"
    if col.kind == "int":
        return f"{int(value):,}"
    if col.kind == "decimal":
        return f"{Decimal(str(value)):,.2f}"
    if col.kind == "bool":
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    plain = to_plain(value)
    return str(plain)


def _columns_for(rows: Sequence[Mapping[str, Any]], columns: Sequence[Col] | None) -> list[Col]:
    if columns:
        return list(columns)
    keys: list[str] = []
    for row in rows:
        for k in row:
            if k not in keys:
                keys.append(k)
    return [Col(k) for k in keys]


class _Console(Console):
    """rich's Console, except that a closed pipe raises BrokenPipeError for ``pmfin.cli`` to handle
    (rich itself would exit 1, which is pmfin's "found problems")."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def stdout_console(**kwargs: Any) -> Console:
    return _Console(file=kwargs.pop("file", None) or sys.stdout, **kwargs)


def stderr_console() -> Console:
    return _Console(file=sys.stderr, soft_wrap=True)


@contextlib.contextmanager
def terminal_progress(*columns: Any) -> Iterator[Any]:
    """A live rich ``Progress`` on stderr while stderr is a terminal, gone when done (it leaves no
    line behind); None elsewhere (cron mail, a log file, a pipe), where a bar is only noise."""
    console = stderr_console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


class Phases:
    """The progress of a run that goes through named phases, on stderr.

    Call it with ``(phase)`` when a phase begins and ``(phase, rows)`` with the rows it has
    written so far. On a terminal: one live line (phase, bar, rows, time), gone at the end. Elsewhere
    (cron mail, a log, a pipe): a line for each phase when it is done, ``pmfin demo: emails:
    1,001,957 rows (12.3 s)``. A phase that ends in an error gets no line: the error says it.
    """

    def __init__(self, label: str, phases: Sequence[str]):
        self.label = label
        self.phases = list(phases)
        self._bar: Any = None
        self._current: str | None = None
        self._rows: int | None = None
        self._since = 0.0

    def __enter__(self) -> Phases:
        console = stderr_console()
        if console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn(f"{self.label} {{task.description}}"), BarColumn(),
                                 TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), console=console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task("", total=len(self.phases), rows="")
        return self

    def __call__(self, phase: str, rows: int | None = None) -> None:
        import time

        if phase != self._current:
            self._done()
            self._current, self._rows, self._since = phase, None, time.perf_counter()
            if self._bar is not None:
                self._bar.update(self._task, description=f"{phase:<28}", completed=self._index(phase), rows="")
        if rows is not None:
            self._rows = rows
            if self._bar is not None:
                self._bar.update(self._task, rows=f"{rows:,} rows")

    def _index(self, phase: str) -> int:
        return self.phases.index(phase) if phase in self.phases else 0

    def _done(self) -> None:
        import time

        if self._current is None or self._bar is not None:
            return
        rows = f": {self._rows:,} rows" if self._rows is not None else ""
        note(f"{self.label}: {self._current}{rows} ({time.perf_counter() - self._since:.1f} s)")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._done()
        if self._bar is not None:
            self._bar.stop()


def warn(message: str) -> None:
    """A warning for a person, on stderr (never mixed into JSON/CSV on stdout). The message is
    plain text: brackets in it (Stripe's "[param]", a tenant's name) are printed as they are."""
    stderr_console().print(Text.assemble(("warning: ", "yellow"), message), highlight=False)


def note(message: str) -> None:
    """A progress or info line on stderr (plain text)."""
    stderr_console().print(Text(message), highlight=False)


def render(
    data: Any,
    fmt: Format | str = Format.table,
    *,
    columns: Sequence[Col] | None = None,
    title: str | None = None,
    out: io.TextIOBase | None = None,
) -> None:
    """Render one object (a mapping/dataclass) or a list of them.

    One object: a two-column key/value table, a JSON object, a one-row CSV.
    A list: a table with a row each, a JSON array, a CSV with a header.
    """
    fmt = Format(fmt)
    if columns and fmt is not Format.table and not _is_one(data):
        _stream_rows(data, fmt, columns, out or sys.stdout)
        return
    plain = to_plain(data)
    single = isinstance(plain, Mapping)
    rows: list[Mapping[str, Any]] = [plain] if single else list(plain)
    cols = _columns_for(rows, columns)
    stream = out or sys.stdout

    if fmt is Format.json:
        if columns:
            picked = [{c.key: r.get(c.key) for c in cols} for r in rows]
            payload: Any = picked[0] if single else picked
        else:
            payload = plain
        stream.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        return

    if fmt is Format.csv:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([c.key for c in cols])
        for r in rows:
            writer.writerow([_csv_value(r.get(c.key)) for c in cols])
        return

    if single:
        table = Table(title=Text(title) if title else None, show_header=False, title_justify="left")
        table.add_column("field", style="bold")
        table.add_column("value")
        for c in cols:
            table.add_row(Text(c.title), Text(_cell(rows[0].get(c.key), c, rows[0])))
    else:
        table = Table(title=Text(title) if title else None, title_justify="left")
        cells = [[_cell(r.get(c.key), c, r) for c in cols] for r in rows]
        for i, c in enumerate(cols):
            if c.kind in ("money", "int", "ratio", "decimal"):
                # A figure is never cut to "$156…": its column is as wide as its widest value
                # (the header may wrap instead).
                widest = max((len(row[i]) for row in cells), default=1)
                table.add_column(c.title, justify="right", no_wrap=True, min_width=widest)
            else:  # short labels (months, ids, names) stay whole too; long text may wrap
                widest = max((len(row[i]) for row in cells), default=1)
                table.add_column(c.title, justify="left", min_width=min(widest, 12), no_wrap=widest <= 12)
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))  # data is text, never rich markup
        if not rows:
            table.caption = "(no rows)"
    print_table(table, out)


def _is_one(data: Any) -> bool:
    return isinstance(data, Mapping) or (dataclasses.is_dataclass(data) and not isinstance(data, type))


def _stream_rows(rows: Iterable[Any], fmt: Format, columns: Sequence[Col], stream: Any) -> None:
    """A list as JSON or CSV, one row at a time: time and memory stay linear in the rows, however
    many (the same text as rendering the whole list at once)."""
    keys = [c.key for c in columns]
    if fmt is Format.csv:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(keys)
        for row in rows:
            plain = to_plain(row)
            writer.writerow([_csv_value(plain.get(k)) for k in keys])
        return
    first = True
    for row in rows:
        plain = to_plain(row)
        item = json.dumps({k: plain.get(k) for k in keys}, indent=2, ensure_ascii=False)
        stream.write(("[\n" if first else ",\n") + textwrap.indent(item, "  "))
        first = False
    stream.write("[]\n" if first else "\n]\n")


def print_table(renderable: Any, out: Any = None) -> None:
    """Print a rich renderable to stdout (or ``out``). Not on a terminal (a pipe, a file, cron
    mail) the width is what the table needs, so nothing is cut to fit 80 columns."""
    console = stdout_console(file=out, soft_wrap=False)
    if not console.is_terminal:
        wide = Console(file=io.StringIO(), width=1000)
        width = wide.measure(renderable).maximum
        console = stdout_console(file=out, soft_wrap=False, width=max(80, width))
    console.print(renderable)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def render_sections(
    sections: Iterable[tuple[str, Any, Sequence[Col] | None]],
    fmt: Format | str,
    *,
    document: Any = None,
) -> None:
    """Several titled tables for people; for programs, ``document`` (or the sections as one object).

    ``sections``: (name, data, columns). JSON gives ``document`` when given, else
    ``{name: data}``; CSV gives one block per section, separated by a blank line, each
    headed by a ``# name`` line.
    """
    fmt = Format(fmt)
    sections = list(sections)
    if fmt is Format.json:
        payload = document if document is not None else {name: data for name, data, _ in sections}
        sys.stdout.write(dumps_json(payload) + "\n")
        return
    for i, (name, data, cols) in enumerate(sections):
        if fmt is Format.csv:
            if i:
                sys.stdout.write("\n")
            sys.stdout.write(f"# {name}\n")
            render(data, fmt, columns=cols)
        else:
            render(data, fmt, columns=cols, title=name)
