"""The fake's resources. Each module registers handlers on ``ROUTES`` and may add a helper
class to ``HELPERS`` (available on the fake as ``fake.<name>``)."""

from __future__ import annotations

from ..server import Router

ROUTES = Router()
HELPERS: dict[str, type] = {}

from . import accounts  # noqa: E402,F401  (registers its routes)
