"""The Stripe fake: a stateful HTTP server on loopback that the real SDK talks to.

Extending it: add a module under ``stripe_fake/resources/`` whose handlers are registered on
``resources.ROUTES`` (``@ROUTES.route("POST", "/v1/invoices/{invoice}/pay")``), import it in
``resources/__init__.py``; test-side helpers (e.g. ``fake.accounts.onboard``) are classes in
``resources.HELPERS``. The server core (auth, ``Stripe-Account``, idempotency, faults, the
request log and the spec check) is shared by every resource and never needs changing.

Files Stripe serves outside the API (an invoice's PDF) are handlers on ``resources.FILES`` that
return a ``RawResponse``: like Stripe's file links they need no key, and they are neither spec
checked nor idempotent; faults and the request log apply to them as to any request.

Events: a resource that changes state records it with its engine's ``emit(type, obj, before)``
(``resources/billing.py``; ``before`` — a copy from before the change — gives
``previous_attributes``), or ``fake.events.record`` directly. While a handler runs,
``fake.request_context`` names the request (its ``Request-Id``, which ``handle`` returns among the
extra headers, and its ``Idempotency-Key``), so its events carry ``request``; a helper's events
are automatic (``request`` nulls). A replayed idempotent request runs no handler: no new events.
A new endpoint also adds its SDK params class to ``spec.SDK_PARAMS``.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .errors import StripeApiError
from .forms import MalformedParams, decode_multipart, decode_query, flatten
from .objects import ObjectStore
from .spec import SpecChecker

Handler = Callable[["FakeRequest"], "dict | RawResponse"]


@dataclass
class RawResponse:
    """A non-JSON answer (a file), from a handler on ``resources.FILES``."""

    body: bytes
    content_type: str
    status: int = 200


@dataclass
class FakeRequest:
    """What a resource handler sees."""

    fake: StripeFake
    method: str
    path: str
    params: dict
    path_params: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    stripe_account: str | None

    @property
    def store(self) -> ObjectStore:
        return self.fake.store


@dataclass
class RecordedRequest:
    """One request as the fake received it (for assertions)."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    params: dict
    stripe_account: str | None
    idempotency_key: str | None
    status: int | None = None  # None: the connection was dropped before an answer
    replayed: bool = False
    fault: str | None = None
    request_id: str | None = None  # the Request-Id header of the answer (events name it)


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests matching ``method`` and ``path``.

    kind: ``status`` (answer ``status`` with a Stripe error body, ``Retry-After`` when given),
    ``delay`` (sleep ``seconds``, then answer normally), ``drop`` (close the connection without
    an answer; with ``after=True`` the request is processed first and only the answer is lost).
    """

    kind: str
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    after: bool = False
    method: str | None = None
    path: str | None = None  # a regular expression matched against the whole path
    times: int = 1
    error_type: str = "api_error"
    message: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or re.fullmatch(self.path, path) is not None
        )

    def describe(self) -> str:
        return {"status": f"status {self.status}", "delay": f"delay {self.seconds}s"}.get(self.kind, self.kind)


class Router:
    """(method, path template) → handler; ``{name}`` segments become ``path_params``."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, str, Handler]] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), pattern, template, handler))
            # literal paths win over templated ones (/v1/accounts/search vs /v1/accounts/{account})
            self._routes.sort(key=lambda r: r[2].count("{"))
            return handler

        return register

    def knows(self, path: str) -> bool:
        return any(pattern.match(path) for _, pattern, _, _ in self._routes)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_known = False
        for m, pattern, _, handler in self._routes:
            match = pattern.match(path)
            if match:
                path_known = True
                if m == method:
                    return handler, match.groupdict()
        if path_known:
            raise StripeApiError(405, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")
        raise StripeApiError(
            404,
            "invalid_request_error",
            f"Unrecognized request URL ({method}: {path}). The Stripe fake does not implement it: "
            "add a handler under tests/stripe_fake/resources/.",
        )


def _default_key_ok(key: str) -> bool:
    return key.startswith(("sk_test_", "rk_test_", "sk_live_", "rk_live_")) and len(key) > 12


class StripeFake:
    """A fake Stripe API on ``127.0.0.1:<port>``. Start with ``start()``, stop with ``stop()``."""

    def __init__(self, *, router: Router | None = None, check_spec: bool = True):
        from . import resources

        self.router = router or resources.ROUTES
        self.files = resources.FILES
        self._helper_classes = resources.HELPERS
        self.checker = SpecChecker() if check_spec else None
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> StripeFake:
        fake = self

        class _Handler(_RequestHandler):
            pass

        _Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the Stripe fake is not running"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget every object, request, fault, idempotent result and spec finding."""
        with self.lock:
            self.store = ObjectStore()
            self.requests: list[RecordedRequest] = []
            self.faults: list[Fault] = []
            self.spec_warnings: list[str] = []
            self.spec_errors: list[str] = []
            self.idempotent_results: dict[tuple[str, str | None, str], tuple[tuple, int, dict]] = {}
            self.accepted_keys: set[str] | None = None  # None: any sk_/rk_ test or live key
            self.request_context: dict | None = None  # the API request being handled (for events)
            for name, cls in self._helper_classes.items():
                setattr(self, name, cls(self))

    # -- test controls -----------------------------------------------------------------------
    def inject(self, kind: str = "status", **kwargs) -> Fault:
        """Queue a fault, e.g. ``fake.inject("status", status=429, retry_after=1, path="/v1/accounts")``."""
        fault = Fault(kind=kind, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, filtered by method and path (a regular expression)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper()) and (path is None or re.fullmatch(path, r.path))
            ]

    # -- request handling --------------------------------------------------------------------
    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict | RawResponse, dict[str, str]] | None:
        """One request → (status, JSON body or file, extra headers), or None to drop the connection.
        The extra headers carry the answer's ``Request-Id`` (the one events name)."""
        request_id = "req_" + secrets.token_hex(7)
        result = self._handle(method, raw_path, headers, body, request_id)
        if result is None:
            return None
        status, payload, extra = result
        return status, payload, {"Request-Id": request_id, **extra}

    def _handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, request_id: str):
        parts = urlsplit(raw_path)
        path = parts.path
        stripe_account = headers.get("stripe-account")
        idem_key = headers.get("idempotency-key")
        record = RecordedRequest(method, path, headers, {}, stripe_account, idem_key, request_id=request_id)
        with self.lock:
            self.requests.append(record)
        try:
            content_type = headers.get("content-type", "")
            if method == "POST" and content_type.startswith("multipart/form-data"):  # a file upload
                params = decode_multipart(body, content_type)
            else:
                params = decode_query(parts.query if method in ("GET", "DELETE") else body.decode("utf-8"))
        except (MalformedParams, UnicodeDecodeError) as exc:
            message = f"{method} {path}: {exc}"
            with self.lock:
                self.spec_errors.append(message)
            record.params = {"_raw": body.decode("utf-8", "replace") or parts.query}
            return self._answer(record, StripeApiError(400, "invalid_request_error", message, param=getattr(exc, "param", None)))
        record.params = params

        fault = self._take_fault(method, path)
        if fault is not None:
            record.fault = fault.describe()
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind == "drop" and not fault.after:
                return None
            elif fault.kind == "status":
                err = StripeApiError(fault.status, fault.error_type, fault.message or f"Injected fault: HTTP {fault.status}.")
                extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                return self._answer(record, err, extra)

        with self.lock:
            if not path.startswith("/v1/") and self.files.knows(path):
                result = self._serve_file(method, path, params, headers, record)
            else:
                result = self._dispatch(method, path, params, headers, stripe_account, idem_key, record)
        if fault is not None and fault.kind == "drop":
            return None
        return result

    def _answer(self, record: RecordedRequest, err: StripeApiError, extra: dict | None = None):
        record.status = err.status
        return err.status, err.body(), dict(extra or {})

    def _dispatch(self, method, path, params, headers, stripe_account, idem_key, record):
        auth = headers.get("authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not key:
            return self._answer(record, StripeApiError(401, "invalid_request_error", "You did not provide an API key."))
        if not (_default_key_ok(key) if self.accepted_keys is None else key in self.accepted_keys):
            masked = key[:8] + "*" * 12 + key[-4:]
            return self._answer(record, StripeApiError(401, "invalid_request_error", f"Invalid API Key provided: {masked}"))

        if self.checker is not None:
            found = self.checker.check(method, path, params)
            self.spec_warnings.extend(w for w in found.warnings if w not in self.spec_warnings)
            if found.errors:
                self.spec_errors.extend(found.errors)
                return self._answer(record, StripeApiError(400, "invalid_request_error", "; ".join(found.errors)))

        scope = (key, stripe_account, idem_key) if idem_key and method == "POST" else None
        fingerprint = (method, path, tuple(sorted(flatten(params), key=lambda kv: kv[0])))
        if scope is not None and scope in self.idempotent_results:
            saved_fingerprint, status, body = self.idempotent_results[scope]
            if saved_fingerprint != fingerprint:
                return self._answer(
                    record,
                    StripeApiError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{idem_key}' if you meant to execute a different request.",
                    ),
                )
            record.status, record.replayed = status, True
            return status, body, {"Idempotent-Replayed": "true"}

        try:
            if stripe_account is not None and self.store.get("account", stripe_account) is None:
                raise StripeApiError(
                    403,
                    "invalid_request_error",
                    f"The provided key does not have access to account '{stripe_account}' (or that account does "
                    "not exist). Application access may have been revoked.",
                    code="account_invalid",
                )
            handler, path_params = self.router.resolve(method, path)
            request = FakeRequest(self, method, path, params, path_params, headers, stripe_account)
            self.request_context = {"id": record.request_id, "idempotency_key": idem_key}
            status, body, saved = 200, handler(request), True
        except StripeApiError as err:
            status, body, saved = err.status, err.body(), err.saved
        finally:
            self.request_context = None  # events a handler records name this request; helpers' none
        record.status = status
        if scope is not None and saved:
            self.idempotent_results[scope] = (fingerprint, status, body)
        return status, body, {}

    def _serve_file(self, method, path, params, headers, record):
        """A file route: no key, no spec check, no idempotency; errors are Stripe-shaped JSON."""
        try:
            handler, path_params = self.files.resolve(method, path)
            answer = handler(FakeRequest(self, method, path, params, path_params, headers, None))
        except StripeApiError as err:
            return self._answer(record, err)
        record.status = answer.status
        return answer.status, answer, {}


class _RequestHandler(BaseHTTPRequestHandler):
    fake: StripeFake
    server_version = "stripe-fake/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        result = self.fake.handle(self.command, self.path, headers, body)
        if result is None:  # dropped connection
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        status, payload, extra = result
        if isinstance(payload, RawResponse):
            data, content_type = payload.body, payload.content_type
        else:
            data, content_type = json.dumps(payload, indent=2).encode("utf-8"), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", extra.pop("Request-Id", None) or "req_" + secrets.token_hex(7))
        if "idempotency-key" in headers:
            self.send_header("Idempotency-Key", headers["idempotency-key"])
        if "stripe-version" in headers:
            self.send_header("Stripe-Version", headers["stripe-version"])
        for name, value in extra.items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): as on a real network
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _serve
