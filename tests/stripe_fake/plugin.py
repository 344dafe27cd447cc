"""Pytest fixtures for the Stripe fake.

- ``stripe_fake_server`` (session): one server for the whole session (per xdist worker).
- ``stripe_fake`` (test): that server, reset before the test; after the test, a request whose
  parameters were malformed for the spec fails the test (``fake.spec_errors``) unless the
  test cleared the list. Warnings (parameters newer than the 2022 spec) stay on ``spec_warnings``.
- ``stripe_env``: the environment that points the pmfin CLI at the fake.
- ``stripe_client``: a real ``StripeClient`` (pmfin's ``build_client``) talking to the fake.
"""

from __future__ import annotations

import pytest

from .env import fake_env, make_settings
from .server import StripeFake


@pytest.fixture(scope="session")
def stripe_fake_server():
    fake = StripeFake().start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_fake(stripe_fake_server: StripeFake):
    fake = stripe_fake_server
    if fake._server is None:  # a test stopped it: start it again (new port)
        fake.start()
    fake.reset()
    yield fake
    errors = list(fake.spec_errors)
    fake.reset()
    if errors:
        pytest.fail("requests malformed for the Stripe spec:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def stripe_env(stripe_fake: StripeFake) -> dict[str, str]:
    """Environment for ``cli(..., env=stripe_env)``: the fake, a test key, fast retries."""
    return fake_env(stripe_fake)


@pytest.fixture
def stripe_client(stripe_fake: StripeFake):
    from pmfin.stripe_ops.client import build_client

    return build_client(make_settings(stripe_fake), backoff_initial=0.05)


__all__ = ["stripe_client", "stripe_env", "stripe_fake", "stripe_fake_server"]
