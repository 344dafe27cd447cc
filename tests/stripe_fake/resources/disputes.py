"""Disputes: ``GET /v1/disputes`` (``created`` range, ``charge``, ``payment_intent``, pagination,
``expand[]=data.charge``), ``GET /v1/disputes/{id}``, ``POST /v1/disputes/{id}`` (stage evidence
with ``submit=false``, submit it — ``submit`` defaults to true when evidence is given, as at
Stripe — and ``metadata``) and ``POST /v1/disputes/{id}/close`` (accept: lost). The dispute
engine is ``payments.Payments``; ``fake.payments`` opens and decides disputes in tests."""

from __future__ import annotations

from ..server import FakeRequest
from . import ROUTES
from .billing import expand_of
from .payments import lister, retriever, payments_for

ROUTES.route("GET", "/v1/disputes")(lister("dispute", "/v1/disputes", {"charge": "charge", "payment_intent": "payment_intent"}))
ROUTES.route("GET", "/v1/disputes/{dispute}")(retriever("dispute", "dispute"))


@ROUTES.route("POST", "/v1/disputes/{dispute}")
def update_dispute(req: FakeRequest) -> dict:
    pay = payments_for(req)
    dispute = pay.get("dispute", req.path_params["dispute"])
    return pay.render(pay.update_dispute(dispute, req.params), expand_of(req))


@ROUTES.route("POST", "/v1/disputes/{dispute}/close")
def close_dispute(req: FakeRequest) -> dict:
    pay = payments_for(req)
    dispute = pay.get("dispute", req.path_params["dispute"])
    return pay.render(pay.accept_dispute(dispute), expand_of(req))
