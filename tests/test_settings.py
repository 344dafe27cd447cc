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
        ("PMFIN_CONNECT_PLATFORM_SHARE", "1.5", "from 0 to 1"),
        ("PMFIN_LIVE", "maybe", "PMFIN_LIVE must be true or false"),
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


# -- through the real CLI: a bad setting is refused like a bad flag (exit 2, one line naming it) --


def cli_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "name, value, line",
    [
        ("PMFIN_EMAIL_COST_CENTS", "-1",
         "error: PMFIN_EMAIL_COST_CENTS must be a number from 0 to 100 (cents per email), got '-1'"),
        ("PMFIN_EMAIL_COST_CENTS", "1e300",
         "error: PMFIN_EMAIL_COST_CENTS must be a number from 0 to 100 (cents per email), got '1e300'"),
        ("PMFIN_EMAIL_COST_CENTS", "NaN",
         "error: PMFIN_EMAIL_COST_CENTS must be a number from 0 to 100 (cents per email), got 'NaN'"),
        ("PMFIN_LIVE", "garbage", "error: PMFIN_LIVE must be true or false (1/0, yes/no, on/off), got 'garbage'"),
        ("PMFIN_CURRENCY", "dollars", "error: PMFIN_CURRENCY must be a 3-letter ISO currency code such as usd, got 'dollars'"),
        ("PMFIN_CURRENCY", "ééé", "error: PMFIN_CURRENCY must be a 3-letter ISO currency code such as usd, got 'ééé'"),
        ("PMFIN_STRIPE_FEE_PERCENT", "250", "error: PMFIN_STRIPE_FEE_PERCENT must be a number from 0 to 100 (percent), got '250'"),
        ("PMFIN_STRIPE_FEE_FIXED", "usd=-30",
         "error: PMFIN_STRIPE_FEE_FIXED (usd) must be a whole number from 0 to 1000000 minor units, got '-30'"),
        ("PMFIN_STRIPE_MAX_RETRIES", "1000", "error: PMFIN_STRIPE_MAX_RETRIES must be a whole number from 0 to 10, got '1000'"),
        ("PMFIN_STRIPE_TIMEOUT", "-5", "error: PMFIN_STRIPE_TIMEOUT must be a number above 0 and at most 600 seconds, got '-5'"),
        ("APP_URL", "app.penguinmails.example", "error: APP_URL must be an http(s) URL, got 'app.penguinmails.example'"),
    ],
)
def test_a_bad_setting_is_refused_like_a_bad_flag(cli, name, value, line):
    result = cli("report", "mrr", "--month", "2025-01", env={name: value})
    assert cli_error(result) == line


def test_a_bad_setting_in_dotenv_names_the_file(cli, tmp_path):
    (tmp_path / ".env").write_text("PMFIN_EMAIL_COST_CENTS=-1\n")
    line = cli_error(cli("report", "mrr", "--month", "2025-01"))
    assert line == "error: PMFIN_EMAIL_COST_CENTS in .env must be a number from 0 to 100 (cents per email), got '-1'"


def test_a_malformed_dotenv_line_is_one_error_naming_file_and_line(cli, tmp_path):
    """python-dotenv would log its own message and skip the setting: a USD report, exit 0."""
    env_file = tmp_path / "pmfin.env"
    env_file.write_text('# settings\nPMFIN_CASH=100000\nPMFIN_CURRENCY="eur\nAPP_URL=https://app.example\n')
    result = cli("--env-file", str(env_file), "report", "mrr", "--month", "2025-01")
    assert cli_error(result) == f'error: {env_file}, line 3: not a NAME=value line (a quote is not closed): PMFIN_CURRENCY="eur'
    assert result.stdout == ""
    (tmp_path / ".env").write_text("A=1\nthis is not a setting\n")
    assert cli_error(cli("report", "mrr")) == "error: .env, line 2: not a NAME=value line: this is not a setting"


def test_a_dotenv_that_is_not_utf8_names_the_line(cli, tmp_path):
    (tmp_path / ".env").write_bytes(b"A=1\nPMFIN_CURRENCY=\xe9ur\n")
    assert cli_error(cli("report", "mrr")) == "error: .env, line 2: not UTF-8 text"


def test_good_settings_still_work_from_dotenv(cli, tmp_path):
    (tmp_path / ".env").write_text("export PMFIN_CURRENCY=eur\nPMFIN_LIVE=no # comment\n\nPMFIN_EMAIL_COST_CENTS=0.01\n")
    result = cli("report", "mrr", "--month", "2025-01", "--format", "json")
    assert result.exit_code == 0, result.output
    assert '"currency": "eur"' in result.stdout
