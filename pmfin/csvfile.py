"""Reading an import file (``pmfin costs import``, ``pmfin fx import``): one error style for all.

Every problem is a UsageError of the form ``FILE: reason`` (the file as a whole) or
``FILE, line N: reason``, where FILE is the path as the user gave it and N the line a record
*starts* on (a quoted field may span lines). Python's own texts ("'utf-8' codec can't decode…",
"[Errno 21] Is a directory") never reach the user.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from pmfin.errors import UsageError


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark is allowed), or a UsageError saying why not."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, expected a CSV file") from None
    except PermissionError:
        raise UsageError(f"{name}: permission denied") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UsageError(f"{name}, line {line}: not UTF-8 text") from None


def records(content: str, name: str) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its fields) for every record of a CSV text, blank lines
    included (as an empty or all-blank list); malformed CSV is a UsageError naming the line."""
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    start = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = {
                "unexpected end of data": "a quoted field is not closed",
                "',' expected after '\"'": "a quoted field is followed by more text before the comma",
            }.get(str(exc), f"not valid CSV ({exc})")
            raise UsageError(f"{name}, line {start}: {reason}") from None
        yield start, record
        start = reader.line_num + 1


def is_blank(record: list[str]) -> bool:
    return not any(field.strip() for field in record)
