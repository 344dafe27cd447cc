"""Settings precedence: flags > environment > .env, and .env never overrides the environment."""

from decimal import Decimal
from pathlib import Path

import pytest

from pmfin.errors import ConfigError
from pmfin.settings import Settings, key_mode, mask_secret


def write_env(tmp_path: Path, text: str) -> Path:
    p = tmp_path / ".env"
    p.write_text(text)
    return p


def test_flag_beats_env_beats_dotenv(tmp_path):
    env_file = write_env(tmp_path, "DATABASE_URL=postgres://dotenv/db\nPMFIN_CURRENCY=eur\nAPP_URL=https://dotenv.example\n")
    environ = {"DATABASE_URL": "postgres://env/db", "APP_URL": "https://env.example/"}
    s = Settings.load({"database_url": "postgres://flag/db"}, environ=environ, env_file=env_file)
    assert s.database_url == "postgres://flag/db"
    assert s.sources["database_url"] == "flag"
    s = Settings.load({}, environ=environ, env_file=env_file)
    assert s.database_url == "postgres://env/db"  # .env does not override the real environment
    assert s.sources["database_url"] == "env DATABASE_URL"
    assert s.app_url == "https://env.example"  # trailing slash dropped
    assert s.currency == "eur"  # only in .env: taken from there
    assert s.sources["currency"] == ".env PMFIN_CURRENCY"


def test_pmfin_prefixed_variable_wins_over_generic(tmp_path):
    s = Settings.load({}, environ={"DATABASE_URL": "postgres://a/x", "PMFIN_DATABASE_URL": "postgres://b/y"}, env_file=None)
    assert s.database_url == "postgres://b/y"


def test_dotenv_in_working_directory_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_env(tmp_path, "STRIPE_API_KEY=sk_test_fromdotenv1234\n")
    s = Settings.load({}, environ={})
    assert s.stripe_api_key == "sk_test_fromdotenv1234"


def test_missing_env_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="env file not found"):
        Settings.load({}, environ={}, env_file=tmp_path / "nope.env")


def test_defaults(tmp_path):
    s = Settings.load({}, environ={"PMFIN_HOME": str(tmp_path)}, env_file=None)
    assert s.database_url is None
    assert s.home == tmp_path
    assert s.currency == "usd"
    assert s.stripe_fee_percent == Decimal("2.9") and s.fixed_fee("usd") == 30 and s.fixed_fee("EUR") == 25
    assert s.fixed_fee("jpy") is None
    assert s.connect_platform_share == Decimal("0.23")
    assert s.live is False


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("PMFIN_CURRENCY", "dollars", "3-letter ISO currency"),
        ("PMFIN_STRIPE_FEE_PERCENT", "abc", "must be a number"),
        ("PMFIN_STRIPE_FEE_FIXED", "usd=1.5", "whole number"),
        ("PMFIN_STRIPE_FEE_FIXED", "usd:30", "must look like usd=30,eur=25"),
        ("PMFIN_CONNECT_PLATFORM_SHARE", "1.5", "between 0 and 1"),
        ("PMFIN_LIVE", "maybe", "true/false"),
    ],
)
def test_bad_values_are_config_errors(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.load({}, environ={name: value}, env_file=None)


def test_live_key_guard():
    s = Settings.load({}, environ={"STRIPE_API_KEY": "sk_live_abcdefghijklmnop1234"}, env_file=None)
    with pytest.raises(ConfigError) as exc:
        s.require_stripe_key()
    assert "without --live" in str(exc.value)
    assert "abcdefghijklmnop" not in str(exc.value)  # the key is masked
    assert "sk_live_…1234" in str(exc.value)
    live = Settings.load({"live": True}, environ={"STRIPE_API_KEY": "sk_live_abcdefghijklmnop1234"}, env_file=None)
    assert live.require_stripe_key() == "sk_live_abcdefghijklmnop1234"
    restricted = Settings.load({}, environ={"STRIPE_API_KEY": "rk_live_abcdefghijklmnop1234"}, env_file=None)
    with pytest.raises(ConfigError):
        restricted.require_stripe_key()
    with pytest.raises(ConfigError, match="no Stripe API key"):
        Settings.load({}, environ={}, env_file=None).require_stripe_key()


def test_mask_and_mode():
    assert mask_secret("sk_test_51Habcdefghijklmnopqrstuv9876") == "sk_test_…9876"
    assert mask_secret("short") == "…"
    assert mask_secret(None) == "(not set)"
    assert key_mode("sk_test_x") == "test" and key_mode("rk_live_x") == "live" and key_mode("foo") == "unknown"


def test_live_key_with_surrounding_space_is_still_live():
    s = Settings.load({}, environ={"STRIPE_API_KEY": " sk_live_abcdefghijklmnop1234\n"}, env_file=None)
    assert s.stripe_api_key == "sk_live_abcdefghijklmnop1234"
    with pytest.raises(ConfigError, match="without --live"):
        s.require_stripe_key()
