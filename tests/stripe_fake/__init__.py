"""A stateful Stripe fake for tests: real HTTP on loopback, driven through the real SDK.

See ``server.py`` for the core and how to extend it, ``plugin.py`` for the pytest fixtures.
"""

from .errors import StripeApiError
from .server import Fault, RecordedRequest, StripeFake

__all__ = ["Fault", "RecordedRequest", "StripeApiError", "StripeFake"]
