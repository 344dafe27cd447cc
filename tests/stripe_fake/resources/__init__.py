"""The fake's resources. Each module registers handlers on ``ROUTES`` (the API) or ``FILES``
(files served outside the API, answered without a key) and may add a helper class to
``HELPERS`` (available on the fake as ``fake.<name>``)."""

from __future__ import annotations

from ..server import Router

ROUTES = Router()
FILES = Router()
HELPERS: dict[str, type] = {}

from . import accounts  # noqa: E402,F401  (registers its routes)
from . import billing_helpers  # noqa: E402,F401  (fake.billing)
from . import customers  # noqa: E402,F401
from . import invoices  # noqa: E402,F401
from . import payments  # noqa: E402,F401  (charges, balance transactions, transfers, application fees, refunds)
from . import disputes  # noqa: E402,F401
from . import files  # noqa: E402,F401  (fake.uploads)
from . import payments_helpers  # noqa: E402,F401  (fake.payments)
from . import subscriptions  # noqa: E402,F401  (products, prices, subscriptions, create_preview)
from . import subscriptions_helpers  # noqa: E402,F401  (fake.subscriptions)
from . import events  # noqa: E402,F401  (GET /v1/events, fake.events)
