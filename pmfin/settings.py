"""Settings: flags, then the environment, then a ``.env`` file.

Nothing is read at import time. ``Settings.load`` is called once per command invocation
(lazily, from ``pmfin.context.AppContext``) with the flag values the user gave; a ``.env``
file is read with python-dotenv but never written into ``os.environ``, so it can never
override the real environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pmfin.errors import ConfigError

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


# (setting name, environment variables in order of precedence, default)
_ENV: dict[str, tuple[tuple[str, ...], str | None]] = {
    "database_url": (("PMFIN_DATABASE_URL", "DATABASE_URL"), None),
    "home": (("PMFIN_HOME",), None),
    "stripe_api_key": (("PMFIN_STRIPE_API_KEY", "STRIPE_API_KEY"), None),
    "stripe_api_base": (("PMFIN_STRIPE_API_BASE", "STRIPE_API_BASE"), None),
    "stripe_max_retries": (("PMFIN_STRIPE_MAX_RETRIES",), "3"),
    "stripe_timeout": (("PMFIN_STRIPE_TIMEOUT",), "30"),
    "stripe_rate": (("PMFIN_STRIPE_RATE",), None),
    "app_url": (("PMFIN_APP_URL", "APP_URL", "NEXT_PUBLIC_APP_URL"), "http://localhost:3000"),
    "currency": (("PMFIN_CURRENCY",), "usd"),
    "stripe_fee_percent": (("PMFIN_STRIPE_FEE_PERCENT",), "2.9"),
    "stripe_fee_fixed": (("PMFIN_STRIPE_FEE_FIXED",), "usd=30,eur=25,gbp=20,cad=30,aud=30,chf=30"),
    "connect_platform_share": (("PMFIN_CONNECT_PLATFORM_SHARE",), "0.23"),
    "email_cost_cents": (("PMFIN_EMAIL_COST_CENTS",), "0.05"),
    "live": (("PMFIN_LIVE",), "false"),
    "cash": (("PMFIN_CASH",), None),
}


def _truthy(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"expected true/false, got {value!r}")


def _decimal(name: str, value: str) -> Decimal:
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if not d.is_finite():
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    return d


def _int(name: str, value: str, *, minimum: int = 0) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {n}")
    return n


def _fee_map(name: str, value: str) -> dict[str, int]:
    """``usd=30,eur=25`` → {'usd': 30, 'eur': 25}: Stripe's fixed fee per charge, in each
    currency's minor units (DESIGN §4: "configurable, per currency")."""
    fees: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        currency, sep, amount = part.partition("=")
        currency = currency.strip().lower()
        if not sep or len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"{name} must look like usd=30,eur=25 (currency=minor units), got {part!r}")
        fees[currency] = _int(name, amount.strip())
    return fees


def default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("pmfin", appauthor=False))


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
    verbose: bool = False
    sources: Mapping[str, str] | None = None  # setting → where it came from (flag/env NAME/.env)

    @classmethod
    def load(
        cls,
        flags: Mapping[str, object] | None = None,
        environ: Mapping[str, str] | None = None,
        env_file: str | Path | None = None,
    ) -> Settings:
        """Resolve every setting: ``flags`` (non-None values) > ``environ`` > ``.env``.

        ``env_file``: the .env to read; default ``PMFIN_ENV_FILE`` or ``./.env`` when present.
        """
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        environ = os.environ if environ is None else environ
        if env_file is None:
            env_file = environ.get("PMFIN_ENV_FILE") or (".env" if Path(".env").is_file() else None)
        dotenv: dict[str, str] = {}
        if env_file is not None:
            path = Path(env_file)
            if not path.exists():
                raise ConfigError(f"env file not found: {path}")
            if not path.is_file():
                raise ConfigError(f"env file is not a file: {path}")
            from dotenv import dotenv_values

            try:
                dotenv = {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}
            except OSError as exc:
                raise ConfigError(f"cannot read env file {path}: {exc.strerror or exc}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"env file {path} is not UTF-8 text") from None

        raw: dict[str, str | None] = {}
        sources: dict[str, str] = {}
        for name, (env_names, default) in _ENV.items():
            if name in flags:
                raw[name] = str(flags[name]).strip() if not isinstance(flags[name], bool) else str(flags[name]).lower()
                sources[name] = "flag"
                continue
            for source_name, mapping in (("env", environ), (".env", dotenv)):
                hit = next((e for e in env_names if mapping.get(e) not in (None, "")), None)
                if hit is not None:
                    raw[name] = mapping[hit].strip()  # "sk_live_… " pasted with a space is still live
                    sources[name] = f"{source_name} {hit}"
                    break
            else:
                raw[name] = default
                sources[name] = "default"

        currency = (raw["currency"] or "usd").strip().lower()
        if len(currency) != 3 or not currency.isalpha():
            raise ConfigError(f"PMFIN_CURRENCY must be a 3-letter ISO currency code, got {raw['currency']!r}")
        share = _decimal("PMFIN_CONNECT_PLATFORM_SHARE", raw["connect_platform_share"] or "0")
        if not (0 <= share <= 1):
            raise ConfigError(f"PMFIN_CONNECT_PLATFORM_SHARE must be between 0 and 1, got {share}")
        home = Path(raw["home"]).expanduser() if raw["home"] else default_home()
        return cls(
            database_url=raw["database_url"],
            home=home,
            stripe_api_key=raw["stripe_api_key"],
            stripe_api_base=(raw["stripe_api_base"] or None),
            stripe_max_retries=_int("PMFIN_STRIPE_MAX_RETRIES", raw["stripe_max_retries"] or "0"),
            stripe_timeout=_decimal("PMFIN_STRIPE_TIMEOUT", raw["stripe_timeout"] or "30"),
            stripe_rate=_decimal("PMFIN_STRIPE_RATE", raw["stripe_rate"]) if raw["stripe_rate"] else None,
            app_url=(raw["app_url"] or "").rstrip("/"),
            currency=currency,
            stripe_fee_percent=_decimal("PMFIN_STRIPE_FEE_PERCENT", raw["stripe_fee_percent"] or "0"),
            stripe_fee_fixed=_fee_map("PMFIN_STRIPE_FEE_FIXED", raw["stripe_fee_fixed"] or ""),
            connect_platform_share=share,
            email_cost_cents=_decimal("PMFIN_EMAIL_COST_CENTS", raw["email_cost_cents"] or "0"),
            live=_truthy(raw["live"] or "false"),
            cash=raw["cash"] or None,
            verbose=bool(flags.get("verbose", False)),
            sources=sources,
        )

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
