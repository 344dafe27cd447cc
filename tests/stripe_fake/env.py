"""Settings and environment that point pmfin at a running fake."""

from __future__ import annotations

TEST_KEY = "sk_test_pmfinFAKE0000000000000000abcd"


def fake_env(fake, **overrides: str | None) -> dict[str, str | None]:
    """Environment for the pmfin CLI: the fake's URL, a test key, quick retries, no rate limit to speak of."""
    env: dict[str, str | None] = {
        "STRIPE_API_BASE": fake.url,
        "STRIPE_API_KEY": TEST_KEY,
        "PMFIN_STRIPE_MAX_RETRIES": "2",
        "PMFIN_STRIPE_TIMEOUT": "5",
        "PMFIN_STRIPE_RATE": "1000",
        "APP_URL": "https://app.penguinmails.example",
    }
    env.update(overrides)
    return env


def make_settings(fake, **overrides: str | None):
    """pmfin ``Settings`` for the fake, as the CLI would load them from ``fake_env``."""
    from pmfin.settings import Settings

    env = {k: v for k, v in fake_env(fake, PMFIN_HOME="/nonexistent-pmfin-home", **overrides).items() if v is not None}
    return Settings.load(environ=env, env_file=None)
