"""Stripe-shaped API errors raised by the fake's handlers."""

from __future__ import annotations


class StripeApiError(Exception):
    """Answered as ``{"error": {"type", "code", "message", "param"}}`` with ``status``.

    ``saved``: whether an idempotent request's result is stored for replay. Stripe stores the
    result once an endpoint has started executing (successes, card declines); it does not
    store requests that failed validation, so those can be retried with the same key.
    """

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        saved: bool | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.saved = status == 402 if saved is None else saved
        self.extra = extra or {}

    def body(self) -> dict:
        err = {"type": self.type, "message": self.message}
        if self.code is not None:
            err["code"] = self.code
        if self.param is not None:
            err["param"] = self.param
        err.update(self.extra)
        return {"error": err}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> StripeApiError:
    return StripeApiError(status, "invalid_request_error", message, code=code, param=param)


def missing_param(param: str) -> StripeApiError:
    return invalid_request(f"Missing required param: {param}.", param=param, code="parameter_missing")
