"""Telling "Stripe cannot be reached at all" apart from "Stripe refused this one request".

Every attempt pmfin's Stripe client makes (retries included, from any thread) reports to the
client's ``Outage``: an HTTP answer of any kind — even a 4xx or a 500 — shows that Stripe can be
reached; no answer at all (connection refused, a failed DNS lookup, a timeout, a dropped
connection, a failed TLS handshake) counts towards an outage. When ``threshold`` attempts in a row
got no answer, with no answer in between, Stripe is taken to be unreachable for the rest of the
run: the client stops retrying and sends nothing more (a further request fails at once), and a
sweep over many items — ``connect sync``, a dunning run — stops with ``StripeUnreachable`` (exit 2,
one line) instead of failing item after item. The threshold is at least one request's attempts
(``PMFIN_STRIPE_MAX_RETRIES`` + 1), so a single command still makes all of its attempts.

In a sweep::

    try:
        account = client.v1.accounts.retrieve(account_id)
    except stripe.StripeError:
        if client.outage.down:
            ...  # stop the sweep: raise client.outage.error("connect sync after 12 of 238 accounts")
        ...      # else a failure of this item only
"""

from __future__ import annotations

import threading

from pmfin.errors import PmfinError

MIN_THRESHOLD = 3


class StripeUnreachable(PmfinError):
    """Stripe could not be reached at all: a sweep stopped (exit 2, one line; rerunning is safe)."""

    exit_code = 2


def describe(err: BaseException) -> str:
    """A few words for why an attempt got no answer (from the requests exception behind the SDK's)."""
    cause = err.__cause__ or err.__context__ or err
    name = type(cause).__name__
    text = str(cause)
    if name == "ConnectTimeout" or "ConnectTimeoutError" in text:
        return "connecting timed out"
    if name in ("ReadTimeout", "Timeout"):
        return "no answer within the timeout"
    if name == "SSLError":
        return "the TLS handshake failed"
    if "NameResolutionError" in text or "Name or service not known" in text or "nodename nor servname" in text:
        return "the DNS lookup failed"
    if "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset by peer" in text:
        return "the connection was dropped"
    return "no connection" if name == "ConnectionError" else name


class Outage:
    """Thread-safe: counts attempts in a row without an answer; ``down`` once ``threshold`` is reached."""

    def __init__(self, threshold: int, api_base: str):
        self.threshold = max(MIN_THRESHOLD, threshold)
        self.api_base = api_base
        self.reason: str | None = None  # the last attempt's, e.g. "connection refused"
        self.down = False
        self._streak = 0
        self._lock = threading.Lock()

    def answered(self) -> None:
        with self._lock:
            self._streak = 0

    def no_answer(self, reason: str) -> None:
        with self._lock:
            self._streak += 1
            self.reason = reason
            if self._streak >= self.threshold:
                self.down = True

    def error(self, stopped: str) -> StripeUnreachable:
        """The one line for a sweep that stops: ``stopped`` says what stopped where."""
        return StripeUnreachable(
            f"Stripe cannot be reached ({self.reason} at {self.api_base}; {self.threshold} attempts in a row "
            f"got no answer): stopped {stopped}; rerunning is safe"
        )
