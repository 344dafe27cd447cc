"""Settings: flags, then the environment, then a ``.env`` file.

Nothing is read at import time. ``Settings.load`` is called once per command invocation
(lazily, from ``pmfin.context.AppContext``) with the flag values the user gave; a ``.env``
file is read with python-dotenv but never written into ``os.environ``, so it can never
override the real environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pmfin.errors import ConfigError
from pmfin.money import is_currency_code

LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


def mask_secret(value: str | None) -> str:
    """``sk_test_51H…abcd`` → ``sk_test_…abcd``: enough to tell keys apart, never the key."""
    if not value:
        return "(not set)"
    prefix = ""
    for p in ("sk_live_", "rk_live_", "sk_test_", "rk_test_", "pk_live_", "pk_test_"):
        if value.startswith(p):
            prefix = p
            break
    tail = value[-4:] if len(value) > len(prefix) + 8 else ""
    return f"{prefix}…{tail}" if prefix else f"…{tail}" if tail else "…"


def key_mode(key: str) -> str:
    """'live', 'test' or 'unknown' for a Stripe secret or restricted key."""
    if key.startswith(LIVE_KEY_PREFIXES):
        return "live"
    if key.startswith(("sk_test_", "rk_test_")):
        return "test"
    return "unknown"


# -- parsers: the text of a setting → its value, or a ConfigError that names the variable ------
# Each takes (name, text): ``name`` says where the text came from (``PMFIN_EMAIL_COST_CENTS``, or
# ``PMFIN_EMAIL_COST_CENTS in ./.env``, or a flag), so a bad value is refused like a bad flag.


def text(name: str, value: str) -> str:
    return value


def boolean(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {value!r}")


def number(minimum: Decimal | int, maximum: Decimal | int, *, unit: str = "", above: bool = False):
    """A decimal number from ``minimum`` (excluded when ``above``) to ``maximum``."""
    low, high = Decimal(minimum), Decimal(maximum)
    span = f"{'above' if above else 'from'} {low} {'and at most' if above else 'to'} {high}{unit}"

    def parse(name: str, value: str) -> Decimal:
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ConfigError(f"{name} must be a number {span}, got {value!r}") from None
        if not value.strip().isascii() or not d.is_finite() or d > high or d < low or (above and d == low):
            raise ConfigError(f"{name} must be a number {span}, got {value!r}")
        return d

    return parse


def whole(minimum: int, maximum: int, *, unit: str = ""):
    """A whole number from ``minimum`` to ``maximum``."""

    def parse(name: str, value: str) -> int:
        v = value.strip()
        if not re.fullmatch(r"-?[0-9]+", v) or not minimum <= int(v) <= maximum:
            raise ConfigError(f"{name} must be a whole number from {minimum} to {maximum}{unit}, got {value!r}")
        return int(v)

    return parse


def currency_code(name: str, value: str) -> str:
    c = value.strip().lower()
    if not is_currency_code(c):
        raise ConfigError(f"{name} must be a 3-letter ISO currency code such as usd, got {value!r}")
    return c


def http_url(name: str, value: str) -> str:
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return url


def path(name: str, value: str) -> Path:
    return Path(value).expanduser()


MAX_FIXED_FEE = 1_000_000  # minor units; a fixed fee per charge above $10,000 is a typo


def fee_map(name: str, value: str) -> dict[str, int]:
    """``usd=30,eur=25`` → {'usd': 30, 'eur': 25}: Stripe's fixed fee per charge, in each
    currency's minor units (DESIGN §4: "configurable, per currency")."""
    fees: dict[str, int] = {}
    amount = whole(0, MAX_FIXED_FEE, unit=" minor units")
    for part in filter(None, (p.strip() for p in value.split(","))):
        code, sep, fee = part.partition("=")
        code = code.strip().lower()
        if not sep or not is_currency_code(code):
            raise ConfigError(f"{name} must look like usd=30,eur=25 (currency=minor units), got {part!r}")
        fees[code] = amount(f"{name} ({code})", fee)
    return fees


def email_address(name: str, value: str) -> str:
    v = value.strip()
    local, at, domain = v.rpartition("<")[2].rstrip(">").partition("@")
    if not at or not local or "." not in domain or " " in local + domain:
        raise ConfigError(f"{name} must be an email address such as billing@example.com, got {value!r}")
    return v


def day_list(name: str, value: str) -> tuple[int, ...]:
    """``1,3,5`` → (1, 3, 5): whole days after day 0, strictly increasing, each from 1 to 365."""
    day = whole(1, 365, unit=" days")
    days = tuple(day(name, p) for p in value.split(",") if p.strip())
    if not days or list(days) != sorted(set(days)):
        raise ConfigError(f"{name} must be strictly increasing days such as 1,3,5, got {value!r}")
    return days


def secret_list(name: str, value: str) -> tuple[str, ...]:
    """``whsec_a,whsec_b``: the webhook signing secrets (several while one is being rotated)."""
    secrets = tuple(p.strip() for p in value.split(",") if p.strip())
    if not secrets or any(not s.startswith("whsec_") or len(s) < 12 for s in secrets):
        raise ConfigError(f"{name} must be Stripe webhook signing secrets (whsec_…), separated by commas")
    return secrets


def rounding_mode(name: str, value: str) -> str:
    mode = value.strip().lower().replace("-", "_")
    if mode not in ("half_up", "half_even"):
        raise ConfigError(f"{name} must be half_up or half_even, got {value!r}")
    return mode


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    starttls: bool
    sender: str
    timeout: float


# -- the settings ------------------------------------------------------------------------------
# setting → (environment variables in order of precedence, default, parser). A setting without a
# parser is text. To add one: a line here and a field of ``Settings`` with the same name.
_ENV: dict[str, tuple] = {
    "database_url": (("PMFIN_DATABASE_URL", "DATABASE_URL"), None),
    "home": (("PMFIN_HOME",), None, path),
    "stripe_api_key": (("PMFIN_STRIPE_API_KEY", "STRIPE_API_KEY"), None),
    "stripe_api_base": (("PMFIN_STRIPE_API_BASE", "STRIPE_API_BASE"), None, http_url),
    "stripe_max_retries": (("PMFIN_STRIPE_MAX_RETRIES",), "3", whole(0, 10)),
    "stripe_timeout": (("PMFIN_STRIPE_TIMEOUT",), "30", number(0, 600, unit=" seconds", above=True)),
    "stripe_rate": (("PMFIN_STRIPE_RATE",), None, number(0, 10_000, unit=" requests per second", above=True)),
    "app_url": (("PMFIN_APP_URL", "APP_URL", "NEXT_PUBLIC_APP_URL"), "http://localhost:3000", http_url),
    "currency": (("PMFIN_CURRENCY",), "usd", currency_code),
    "stripe_fee_percent": (("PMFIN_STRIPE_FEE_PERCENT",), "2.9", number(0, 100, unit=" (percent)")),
    "stripe_fee_fixed": (("PMFIN_STRIPE_FEE_FIXED",), "usd=30,eur=25,gbp=20,cad=30,aud=30,chf=30", fee_map),
    "connect_platform_share": (("PMFIN_CONNECT_PLATFORM_SHARE",), "0.23", number(0, 1)),
    "email_cost_cents": (("PMFIN_EMAIL_COST_CENTS",), "0.05", number(0, 100, unit=" (cents per email)")),
    "live": (("PMFIN_LIVE",), "false", boolean),
    "cash": (("PMFIN_CASH",), None),  # major units as typed: parsed in the report's currency
    # notifications: email over SMTP (no host: dashboard alerts only)
    "smtp_host": (("PMFIN_SMTP_HOST",), None),
    "smtp_port": (("PMFIN_SMTP_PORT",), "25", whole(1, 65535)),
    "smtp_user": (("PMFIN_SMTP_USER",), None),
    "smtp_password": (("PMFIN_SMTP_PASSWORD",), None),
    "smtp_starttls": (("PMFIN_SMTP_STARTTLS",), "false", boolean),
    "smtp_from": (("PMFIN_SMTP_FROM",), None, email_address),
    "smtp_timeout": (("PMFIN_SMTP_TIMEOUT",), "10", number(0, 600, unit=" seconds", above=True)),
    "finance_email": (("PMFIN_FINANCE_EMAIL",), None, email_address),
    # dunning policy (DESIGN.md §4)
    "dunning_retry_days": (("PMFIN_DUNNING_RETRY_DAYS",), "1,3,5", day_list),
    "dunning_grace_days": (("PMFIN_DUNNING_GRACE_DAYS",), "7", whole(0, 365, unit=" days")),
    "dunning_suspend_days": (("PMFIN_DUNNING_SUSPEND_DAYS",), "14", whole(0, 365, unit=" days")),
    "dunning_lookback_days": (("PMFIN_DUNNING_LOOKBACK_DAYS",), "30", whole(1, 3650, unit=" days")),
    # Stripe events (pmfin webhooks serve): several secrets while one is rotated
    "webhook_secrets": (("PMFIN_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"), None, secret_list),
    # reconciliation (pmfin/fees.py)
    "fee_rounding": (("PMFIN_FEE_ROUNDING",), "half_up", rounding_mode),
    "reconcile_tolerance": (("PMFIN_RECONCILE_TOLERANCE",), "0", whole(0, 1_000_000, unit=" minor units")),
}


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("pmfin", appauthor=False))


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` file; a line python-dotenv cannot parse is a ConfigError naming
    the file and the line (python-dotenv itself would only log it and skip the setting)."""
    import io

    from dotenv import dotenv_values
    from dotenv.parser import parse_stream

    if not path.exists():
        raise ConfigError(f"env file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"env file is not a file: {path}")
    try:
        content = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read env file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 text") from None
    for binding in parse_stream(io.StringIO(content)):
        if binding.error:
            statement = binding.original.string.strip().splitlines()[0]
            hint = " (a quote is not closed)" if statement.count('"') % 2 or statement.count("'") % 2 else ""
            raise ConfigError(f"{path}, line {binding.original.line}: not a NAME=value line{hint}: {statement}")
    return {k: v for k, v in dotenv_values(stream=io.StringIO(content)).items() if v is not None}


def _lookup(name: str, env_names: tuple[str, ...], default: str | None, flags: Mapping[str, object],
            places) -> tuple[str | None, str, str]:
    """A setting's text: (the text, where it came from as a message names it, as ``sources`` names it)."""
    if name in flags:
        value = flags[name]
        text_ = str(value).lower() if isinstance(value, bool) else str(value).strip()
        return text_, "--" + name.replace("_", "-"), "flag"
    for label, mapping, suffix in places:
        hit = next((e for e in env_names if mapping.get(e) not in (None, "")), None)
        if hit is not None:  # stripped: "sk_live_… " pasted with a space is still live
            return mapping[hit].strip(), f"{hit}{suffix}", f"{label} {hit}"
    return default, env_names[0], "default"


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    home: Path
    stripe_api_key: str | None
    stripe_api_base: str | None
    stripe_max_retries: int
    stripe_timeout: Decimal
    stripe_rate: Decimal | None  # requests per second; None: by key mode (live 100, test 25)
    app_url: str
    currency: str
    stripe_fee_percent: Decimal
    stripe_fee_fixed: Mapping[str, int]  # currency → Stripe's fixed fee per card charge, minor units
    connect_platform_share: Decimal
    email_cost_cents: Decimal
    live: bool
    cash: str | None = None  # cash balance now, major units as typed (parsed in the report's currency)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str | None = None
    smtp_timeout: Decimal = Decimal(10)
    finance_email: str | None = None  # disputes are also told here
    dunning_retry_days: tuple[int, ...] = (1, 3, 5)
    dunning_grace_days: int = 7
    dunning_suspend_days: int = 14
    dunning_lookback_days: int = 30
    fee_rounding: str = "half_up"
    reconcile_tolerance: int = 0
    webhook_secrets: tuple[str, ...] | None = None  # STRIPE_WEBHOOK_SECRET
    verbose: bool = False
    sources: Mapping[str, str] | None = None  # setting → where it came from (flag/env NAME/.env NAME)

    def __post_init__(self) -> None:
        """Settings that only make sense together."""
        if self.smtp_host and not self.smtp_from:
            raise ConfigError("PMFIN_SMTP_FROM must be the sender's email address when PMFIN_SMTP_HOST is set")
        if bool(self.smtp_user) != bool(self.smtp_password):
            raise ConfigError("PMFIN_SMTP_USER and PMFIN_SMTP_PASSWORD go together: set both or neither")
        if self.dunning_suspend_days < self.dunning_grace_days:
            raise ConfigError(f"PMFIN_DUNNING_SUSPEND_DAYS ({self.dunning_suspend_days}) must not come before "
                              f"PMFIN_DUNNING_GRACE_DAYS ({self.dunning_grace_days})")

    @property
    def smtp(self) -> SmtpSettings | None:
        """The SMTP server for notifications; None: dashboard alerts only."""
        if not self.smtp_host:
            return None
        return SmtpSettings(self.smtp_host, self.smtp_port, self.smtp_user, self.smtp_password, self.smtp_starttls,
                            self.smtp_from or "", float(self.smtp_timeout))

    @classmethod
    def load(
        cls,
        flags: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = None,
    ) -> Settings:
        """Resolve every setting: ``flags`` (non-None values) > ``environ`` > ``.env``, each
        parsed and checked by its parser in ``_ENV`` (a bad value is a ConfigError naming it).

        ``env_file``: the .env to read; default ``PMFIN_ENV_FILE`` or ``./.env`` when present.
        """
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        environ = os.environ if environ is None else environ
        if env_file is None:
            env_file = environ.get("PMFIN_ENV_FILE") or (".env" if Path(".env").is_file() else None)
        dotenv = read_env_file(Path(env_file)) if env_file is not None else {}

        # where a value may come from: (source label, variables, how a message names the place)
        places = (("env", environ, ""), (".env", dotenv, f" in {env_file}"))
        values: dict[str, object] = {}
        sources: dict[str, str] = {}
        for name, (env_names, default, *parser) in _ENV.items():
            raw, where, sources[name] = _lookup(name, env_names, default, flags, places)
            values[name] = None if raw is None else (parser[0] if parser else text)(where, raw)
        if values["home"] is None:
            values["home"] = default_home()
        return cls(**values, verbose=bool(flags.get("verbose", False)), sources=sources)

    def fixed_fee(self, currency: str) -> int | None:
        """Stripe's fixed fee per card charge in ``currency`` (minor units); None when not configured."""
        return self.stripe_fee_fixed.get(currency.strip().lower())

    def require_stripe_key(self) -> str:
        """The Stripe secret key, after the live-key guard (DESIGN.md §5)."""
        key = self.stripe_api_key
        if not key:
            raise ConfigError("no Stripe API key: set STRIPE_API_KEY (a test-mode key sk_test_… for trying pmfin)")
        if key.startswith(LIVE_KEY_PREFIXES) and not self.live:
            raise ConfigError(
                f"refusing to use a live Stripe key ({mask_secret(key)}) without --live; "
                "use a test-mode key, or pass --live when you mean it"
            )
        return key
