"""Events: every state change the fake makes — through the API or a test helper — is recorded as
a Stripe ``event``; ``GET /v1/events`` and ``GET /v1/events/{id}`` serve them, and ``fake.events``
reads them, injects more and signs webhook deliveries.

    fake.events.all(type=None) -> list[dict]
        Every event newest first (the platform's and connected accounts'), each as the API
        renders it; ``type`` filters (``invoice.*`` works as at Stripe).
    fake.events.get(event_id) -> dict
    fake.events.emit(type, obj, *, created=None, previous_attributes=None, account=None) -> dict
        Records an event about ``obj`` (a dict, e.g. a helper's result) as the fake's own are:
        dated ``created`` (default now), with ``request`` {id: null} (automatic).
    fake.events.recording = False
        Stops recording (the default is True): seeding a benchmark's 100,000 charges is then
        about twice as fast and takes a fifth less memory. ``emit`` records regardless.
    fake.events.signed_delivery(event, secret, *, timestamp=None) -> (body_bytes, headers)
        The POST Stripe would send a webhook endpoint: the event's JSON and a real
        ``Stripe-Signature`` header (``t=<timestamp>,v1=<HMAC-SHA256 of "t.body" with the
        secret>``), which the SDK's ``Webhook.construct_event`` verifies. ``event``: a dict or
        an id; ``timestamp`` defaults to now (a stale one tests the tolerance).

Stripe behaviour kept (API 2026-10-28):

- An event carries ``data.object`` as the object was after the change (rendered as the API
  renders it: ``charge.refunds`` only when expanded, an invoice's first 10 lines) and, for
  updates, ``data.previous_attributes``: the changed fields' earlier values (nested objects
  only with their changed keys, a changed list whole). ``request`` is {id, idempotency_key} of
  the API request that caused it — the ``Request-Id`` the answer carried — or nulls when it
  was automatic (a helper stands for Stripe or the outside world). ``api_version`` is the
  SDK's, ``pending_webhooks`` 0.
- Events about a connected account's objects — ``account.updated``, ``capability.updated``, and
  anything made with ``Stripe-Account`` — belong to that account: they carry ``account`` and
  are listed with the ``Stripe-Account`` header (as a Connect webhook endpoint receives them),
  not in the platform's own ``GET /v1/events``.
- Lists are newest first; ``created`` (gt/gte/lt/lte), ``type`` (one name, ``*`` a wildcard) or
  ``types[]`` (up to 20; not both), ``starting_after``/``ending_before`` (towards newer events).
  Stripe keeps events for 30 days: older ones are neither listed nor retrievable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import marshal
import re
import time
import zlib

from ..errors import StripeApiError, invalid_request
from ..objects import changed, new_id, now  # noqa: F401  (changed: re-exported)
from ..server import FakeRequest
from . import HELPERS, ROUTES

RETENTION_SECONDS = 30 * 86400
MAX_TYPES = 20


def api_version() -> str:
    import stripe

    return stripe.api_version


def _type_matcher(pattern: str):
    regex = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
    return lambda name: regex.match(name) is not None


class EventLog:
    """``fake.events``: see the module's docstring."""

    def __init__(self, fake):
        self.fake = fake
        self.recording = True  # False: state changes record no events (seeding 100,000 charges for a benchmark)

    # -- recording (the fake's engines call this) ----------------------------------------------
    def record(self, type: str, obj: dict, *, owner: str | None = None, previous: dict | None = None,
               created: int | None = None) -> dict | None:
        """Store an event about ``obj`` (as the API renders it; serialized at once, so the caller's
        object may change afterwards). Returns the stored record (its id, type, created)."""
        if not self.recording:
            return None
        context = getattr(self.fake, "request_context", None) or {}
        event = {
            "id": new_id("evt"),
            "object": "event",
            **({"account": owner} if owner else {}),
            "api_version": api_version(),
            "created": created if created is not None else now(),
            "data": {"object": obj, **({"previous_attributes": previous} if previous is not None else {})},
            "livemode": False,
            "pending_webhooks": 0,
            "request": {"id": context.get("id"), "idempotency_key": context.get("idempotency_key")},
            "type": type,
        }
        # Kept marshalled and compressed (≈1.3 KB for a charge's event, 30 µs): the events of 100,000
        # charges stay small and quick to make.
        stored = {"id": event["id"], "object": "event", "created": event["created"], "type": type,
                  "_body": zlib.compress(marshal.dumps(event), 1)}
        return self.fake.store.put(stored, owner)

    @staticmethod
    def render(stored: dict) -> dict:
        return marshal.loads(zlib.decompress(stored["_body"]))

    # -- test helpers --------------------------------------------------------------------------
    def emit(self, type: str, obj: dict, *, created: int | None = None, previous_attributes: dict | None = None,
             account: str | None = None) -> dict:
        with self.fake.lock:
            saved, self.fake.request_context = getattr(self.fake, "request_context", None), None
            recording, self.recording = self.recording, True
            try:
                return self.render(self.record(type, obj, owner=account, previous=previous_attributes, created=created))
            finally:
                self.fake.request_context, self.recording = saved, recording

    def all(self, type: str | None = None) -> list[dict]:
        with self.fake.lock:
            stored = [
                e for (owner, kind), objects in list(self.fake.store._objects.items()) if kind == "event"
                for e in self.fake.store.newest_first("event", owner)
            ]
        matches = _type_matcher(type) if type else (lambda name: True)
        events = [self.render(e) for e in stored if matches(e["type"])]
        events.sort(key=lambda e: e["created"], reverse=True)  # stable: same second keeps the store's order
        return events

    def get(self, event_id: str) -> dict:
        with self.fake.lock:
            found = self.fake.store.find("event", event_id)
        if found is None:
            raise KeyError(event_id)
        return self.render(found[1])

    def signed_delivery(self, event: dict | str, secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict]:
        if isinstance(event, str):
            event = self.get(event)
        body = json.dumps(event, indent=2).encode("utf-8")
        ts = int(time.time()) if timestamp is None else int(timestamp)
        signature = hmac.new(secret.encode("utf-8"), f"{ts}.".encode("utf-8") + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={ts},v1={signature}",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        return body, headers


HELPERS["events"] = EventLog


# -- the API ---------------------------------------------------------------------------------------


def _visible(stored: dict) -> bool:
    return stored["created"] >= now() - RETENTION_SECONDS


@ROUTES.route("GET", "/v1/events")
def list_events(req: FakeRequest) -> dict:
    p = req.params
    if p.get("type") and p.get("types"):
        raise invalid_request("You may only specify one of these parameters: type, types.")
    types = p.get("types")
    if types is not None:
        if not isinstance(types, list):
            raise invalid_request("Invalid array", param="types")
        if len(types) > MAX_TYPES:
            raise invalid_request(f"You may pass at most {MAX_TYPES} types.", param="types")
    delivered = p.get("delivery_success")
    if delivered not in (None, "true", "false"):
        raise invalid_request(f"Invalid boolean: {delivered}", param="delivery_success")
    if delivered == "false":  # nothing here has a webhook endpoint that could have failed
        return {"object": "list", "data": [], "has_more": False, "url": "/v1/events"}
    if p.get("type"):
        matches = _type_matcher(p["type"])
    elif types:
        wanted = set(types)
        matches = wanted.__contains__
    else:
        matches = None
    page = req.store.page("event", req.stripe_account, p, "/v1/events",
                          match=(lambda e: matches(e["type"])) if matches else None,
                          floor=now() - RETENTION_SECONDS)
    page["data"] = [EventLog.render(e) for e in page["data"]]
    return page


@ROUTES.route("GET", "/v1/events/{id}")
def retrieve_event(req: FakeRequest) -> dict:
    stored = req.store.get("event", req.path_params["id"], req.stripe_account)
    if stored is None or not _visible(stored):
        raise StripeApiError(404, "invalid_request_error", f"No such event: '{req.path_params['id']}'",
                             code="resource_missing", param="id")
    return EventLog.render(stored)
