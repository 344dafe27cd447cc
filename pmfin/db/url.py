"""Database URLs as a Postgres user would paste them → a SQLAlchemy URL on the psycopg 3 driver."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pmfin.errors import ConfigError

_POSTGRES_SCHEMES = ("postgres", "postgresql")


def normalize(raw: str) -> URL:
    """``postgres://…``, ``postgresql://…``, ``postgresql+psycopg2://…``, ``?host=/socket/dir``
    → ``postgresql+psycopg://…``. Anything else is a ConfigError (exit 2)."""
    text = raw.strip()
    if not text:
        raise ConfigError("the database URL is empty")
    scheme, sep, _ = text.partition("://")
    if not sep:
        raise ConfigError(f"malformed database URL (expected postgresql://user:pass@host/db): {mask(text)}")
    base = scheme.split("+", 1)[0].lower()
    if base not in _POSTGRES_SCHEMES:
        raise ConfigError(f"not a PostgreSQL URL (scheme {scheme!r}); pmfin needs postgres:// or postgresql://")
    rest = text.split("://", 1)[1]
    authority = re.split(r"[/?]", rest, maxsplit=1)[0]
    if authority.count("@") > 1:
        raise ConfigError(
            "the database URL has more than one '@' before the host: percent-encode an '@' in the "
            "password or user name as %40"  # no URL here: its masking would show part of the password
        )
    _check_with_libpq("postgresql://" + rest, text)
    try:
        url = make_url("postgresql+psycopg://" + rest)
        _ = url.port  # a non-numeric port raises here
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"malformed database URL {mask(text)}: {exc}") from None
    return url


def _check_with_libpq(conninfo: str, raw: str) -> None:
    """libpq's own parser: an option it does not know (``?schema=public`` from a Prisma
    ``.env``, say) is a ConfigError now, not a failure at connect time."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(conninfo)
    except ProgrammingError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"the database URL is not one libpq accepts ({reason}): {mask(raw)}") from None


def mask(raw: str | URL) -> str:
    """The URL with its password hidden, for messages and ``db status``."""
    if isinstance(raw, URL):
        return raw.render_as_string(hide_password=True)
    try:
        scheme, rest = raw.split("://", 1)
        url = make_url("postgresql://" + rest)
        return scheme + "://" + url.render_as_string(hide_password=True).split("://", 1)[1]
    except Exception:
        # Unparseable: hide anything between ':' and '@' in the authority.
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", raw)


def display(url: URL) -> str:
    """Masked, unescaped, in the plain ``postgresql://`` form a person would paste into psql."""
    auth = ""
    if url.username:
        auth = url.username + (":***" if url.password else "") + "@"
    elif url.password:
        auth = ":***@"
    host = url.host or ""
    if url.port:
        host += f":{url.port}"
    query = "&".join(
        f"{k}={v}" if isinstance(v, str) else "&".join(f"{k}={x}" for x in v) for k, v in sorted(url.query.items())
    )
    return f"postgresql://{auth}{host}/{url.database or ''}" + (f"?{query}" if query else "")
