"""The Stripe webhook receiver (``pmfin webhooks serve``): an ASGI app (Starlette) on uvicorn.

``POST /api/webhooks/stripe``
  - a body over 1 MiB: 413 (read in chunks; never held whole beyond the limit);
  - the ``Stripe-Signature`` header verified with the SDK's own ``WebhookSignature.verify_header``
    against each secret of ``STRIPE_WEBHOOK_SECRET`` (several during a rotation; a header with
    several ``v1=`` signatures passes on any match), tolerance 300 s: a bad or stale signature is
    a 400;
  - a body that is not a JSON Stripe event: 400;
  - the event stored in ``pmfin_events`` *before* anything acts on it, then 200 at once
    (``{"received": true, "duplicate": …}``): handling happens afterwards, in a worker thread
    that takes stored events one at a time. A database that cannot store it: 503, and Stripe
    retries. Never a traceback in a response.
``GET /healthz`` for the load balancer: 200 when the database answers, else 503.

Shutdown (SIGTERM, SIGINT): uvicorn stops accepting, lets requests in flight finish, then the
worker finishes the event in hand and stops. An event answered 200 is stored, so none is lost;
one not yet handled is handled at the next start (or by ``pmfin events replay``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from pmfin.settings import Settings

MAX_BODY = 1 << 20  # 1 MiB; Stripe's events are far smaller
TOLERANCE = 300  # seconds between the signature's timestamp and now
PATH = "/api/webhooks/stripe"
log = logging.getLogger("pmfin.webhooks")


def verified(payload: str, header: str | None, secrets: tuple[str, ...]) -> bool:
    """Whether ``header`` signs ``payload`` with any of ``secrets`` (the SDK's own check)."""
    import stripe

    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=TOLERANCE)
            return True
        except stripe.SignatureVerificationError:
            continue
    return False


class Worker:
    """Handles stored events in a thread: woken by each new delivery, and every few seconds."""

    def __init__(self, engine: Engine, client_factory: Callable, settings: Settings, *, idle: float = 5.0):
        self.engine, self.client_factory, self.settings, self.idle = engine, client_factory, settings, idle
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None

    def client(self):
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pmfin-webhooks-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        from pmfin.stripe_ops.events import process_pending

        while not self._stop.is_set():
            self._wake.clear()
            try:
                while not self._stop.is_set():  # one event at a time, so a stop waits for one at most
                    report = process_pending(self.engine, self.client, self.settings, limit=1)
                    for h in report.handled:
                        log.info("event %s %s: %s", h.event_id, h.type, h.error or h.result)
                    if not report.handled or report.stopped:
                        break
            except Exception as exc:  # the receiver goes on; the event stays pending
                log.error("handling stored events failed: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._wake.wait(self.idle)


def create_app(engine: Engine, settings: Settings, client_factory: Callable, *, process: bool = True):
    """The receiver's ASGI app. ``process``: run the worker (False: only store events)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    # Load the event pipeline now, in this thread: the command module registered it lazily, and the
    # standard library's LazyLoader must not run for the first time in two threads at once (the
    # request handlers' pool and the worker).
    from pmfin.stripe_ops import events
    from pmfin.stripe_ops.events import ingest, process_pending  # noqa: F401

    assert events.ingest is ingest
    secrets = tuple(settings.webhook_secrets or ())
    worker = Worker(engine, client_factory, settings)

    def refuse(status: int, error: str) -> JSONResponse:
        return JSONResponse({"error": error}, status_code=status)

    def store(event: dict, payload: str) -> bool:
        from pmfin.stripe_ops.events import ingest

        with engine.begin() as conn:
            return ingest(conn, event, source="webhook", raw=payload)

    async def receive(request: Request) -> JSONResponse:
        try:
            declared = int(request.headers.get("content-length") or 0)
        except ValueError:
            return refuse(400, "bad Content-Length")
        if declared > MAX_BODY:
            return refuse(413, f"body over {MAX_BODY} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY:
                return refuse(413, f"body over {MAX_BODY} bytes")
        try:
            payload = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return refuse(400, "the body is not UTF-8")
        if not await run_in_threadpool(verified, payload, request.headers.get("stripe-signature"), secrets):
            return refuse(400, "no valid Stripe-Signature (wrong secret, tampered body, or older than 300 s)")
        try:
            event = json.loads(payload)
        except ValueError:
            return refuse(400, "the body is not JSON")
        if not isinstance(event, dict) or not str(event.get("id", "")).startswith("evt_") or not event.get("type"):
            return refuse(400, "not a Stripe event")
        try:
            new = await run_in_threadpool(store, event, payload)
        except Exception as exc:  # the database refused or is down: Stripe retries a 5xx
            log.error("could not store event %s: %s", event.get("id"), str(exc).splitlines()[0] if str(exc) else exc)
            return refuse(503, "could not store the event; retry later")
        if process:
            worker.wake()
        return JSONResponse({"received": True, "duplicate": not new})

    async def healthz(request: Request) -> JSONResponse:
        from sqlalchemy import text

        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc) -> JSONResponse:
        return refuse(404, "not found")

    async def server_error(request: Request, exc) -> JSONResponse:  # never a traceback in a response
        log.error("error answering %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return refuse(500, "internal error")

    @asynccontextmanager
    async def lifespan(app):
        if process:
            worker.start()
        try:
            yield
        finally:
            worker.stop()

    return Starlette(
        routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        exception_handlers={404: not_found, 500: server_error},
        lifespan=lifespan,
    )


def serve(engine: Engine, settings: Settings, client_factory: Callable, *, host: str, port: int,
          process: bool = True) -> None:
    """Run the receiver until SIGTERM/SIGINT (uvicorn's graceful shutdown)."""
    import uvicorn

    app = create_app(engine, settings, client_factory, process=process)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30, server_header=False,
                proxy_headers=True)
