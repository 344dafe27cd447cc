"""Connect: ``/v1/accounts`` (create, retrieve, update, delete, list), ``/v1/account``,
``/v1/account_links``; and ``fake.accounts`` to move an account through onboarding."""

from __future__ import annotations

import copy
import secrets
from urllib.parse import urlsplit

from ..errors import StripeApiError, invalid_request, missing_param
from ..objects import changed, deep_merge, from_fixture, json_copy, new_id, now, paginate
from ..server import FakeRequest
from . import HELPERS, ROUTES

LINK_LIFETIME_SECONDS = 300  # Stripe's account links expire after a few minutes

# Countries where Stripe Connect accounts can be created, with their default currency.
COUNTRY_CURRENCY = {
    "US": "usd", "CA": "cad", "GB": "gbp", "AU": "aud", "NZ": "nzd", "JP": "jpy", "SG": "sgd",
    "HK": "hkd", "CH": "chf", "NO": "nok", "SE": "sek", "DK": "dkk", "PL": "pln", "CZ": "czk",
    "MX": "mxn", "BR": "brl", "IN": "inr", "AE": "aed", "TH": "thb", "MY": "myr",
    **{c: "eur" for c in "AT BE CY DE EE ES FI FR GR HR IE IT LT LU LV MT NL PT SI SK".split()},
}
REQUIREMENTS_AT_START = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]


def _bool(value: str | None) -> bool:
    return value == "true"


def account_events(fake, account: dict, before: dict, *, created: int | None = None) -> None:
    """``account.updated`` (and ``capability.updated`` per capability whose status moved) on the
    connected account, as Stripe sends them to Connect endpoints."""
    previous = changed(before, account)
    if not previous:
        return
    fake.events.record("account.updated", account, owner=account["id"], previous=previous, created=created)
    requirements = account.get("requirements") or {}
    for name, status in account["capabilities"].items():
        old = (before.get("capabilities") or {}).get(name)
        if old == status:
            continue
        capability = {
            "account": account["id"],
            "future_requirements": {"alternatives": [], "current_deadline": None, "currently_due": [],
                                    "disabled_reason": None, "errors": [], "eventually_due": [], "past_due": [],
                                    "pending_verification": []},
            "id": name,
            "object": "capability",
            "requested": True,
            "requested_at": account.get("created"),
            "requirements": {
                "alternatives": [], "current_deadline": requirements.get("current_deadline"),
                "currently_due": list(requirements.get("currently_due") or []),
                "disabled_reason": None if status == "active" else requirements.get("disabled_reason"),
                "errors": [], "eventually_due": list(requirements.get("eventually_due") or []),
                "past_due": list(requirements.get("past_due") or []), "pending_verification": [],
            },
            "status": status,
        }
        fake.events.record("capability.updated", capability, owner=account["id"], previous={"status": old},
                           created=created)


def _check_email(params: dict) -> None:
    email = params.get("email")
    if email is not None and ("@" not in email or email.startswith("@") or email.endswith("@")):
        raise invalid_request(f"Invalid email address: {email}", param="email", code="email_invalid")


@ROUTES.route("POST", "/v1/accounts")
def create_account(req: FakeRequest) -> dict:
    if req.stripe_account:
        raise invalid_request("You cannot create connected accounts on behalf of a connected account.")
    p = req.params
    account_type = p.get("type")
    if account_type is None and "controller" not in p:
        raise missing_param("type")
    if account_type is not None and account_type not in ("custom", "express", "standard"):
        raise invalid_request(
            "Invalid type: must be one of custom, express, or standard", param="type", code="parameter_invalid_string"
        )
    country = p.get("country", req.fake.accounts.platform_country)
    if country.upper() not in COUNTRY_CURRENCY:
        raise invalid_request(f"Country '{country}' is unknown. Try using a 2-character alphanumeric country code instead, such as 'US', 'EG', or 'GB'.", param="country", code="country_unsupported")
    _check_email(p)
    caps = p.get("capabilities") or {}
    requested = [name for name, v in caps.items() if isinstance(v, dict) and _bool(v.get("requested"))]
    if account_type in ("express", "custom") and not requested:
        raise invalid_request(
            "You must request at least one capability (e.g. capabilities[transfers][requested]=true) "
            f"when creating {account_type} accounts.",
            param="capabilities",
        )
    account_id = new_id("acct", 16)
    account = from_fixture(
        "account",
        id=account_id,
        created=now(),
        type=account_type or "custom",
        country=country.upper(),
        default_currency=p.get("default_currency") or COUNTRY_CURRENCY[country.upper()],
        email=p.get("email"),
        metadata=dict(p.get("metadata") or {}),
        capabilities={name: "inactive" for name in requested},
        controller={"type": "application", "is_controller": True} if account_type != "standard" else {"type": "account"},
        charges_enabled=False,
        payouts_enabled=False,
        details_submitted=False,
    )
    account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
    account["requirements"].update(
        currently_due=list(REQUIREMENTS_AT_START),
        eventually_due=list(REQUIREMENTS_AT_START),
        past_due=list(REQUIREMENTS_AT_START),
        disabled_reason="requirements.past_due",
        current_deadline=None,
    )
    for key in ("business_profile", "settings", "tos_acceptance"):
        if isinstance(p.get(key), dict):
            deep_merge(account[key], p[key])
    return req.store.put(account)


def _connected(req: FakeRequest, account_id: str, *, param: str | None = None) -> dict:
    if req.stripe_account not in (None, account_id):
        raise StripeApiError(403, "invalid_request_error", "Only the platform can manage other connected accounts.")
    if param is None and req.store.get("account", account_id) is None:
        # Stripe answers a connected account the platform cannot reach — deleted, or its access
        # revoked — with 403 account_invalid, not 404 (the SDK raises PermissionError).
        raise StripeApiError(
            403,
            "invalid_request_error",
            f"The provided key does not have access to account '{account_id}' (or that account does not "
            "exist). Application access may have been revoked.",
            code="account_invalid",
        )
    return req.store.require("account", account_id, param=param)


@ROUTES.route("GET", "/v1/accounts/{account}")
def retrieve_account(req: FakeRequest) -> dict:
    return _connected(req, req.path_params["account"])


@ROUTES.route("POST", "/v1/accounts/{account}")
def update_account(req: FakeRequest) -> dict:
    account = _connected(req, req.path_params["account"])
    before = json_copy(account)
    _check_email(req.params)
    updates = {k: v for k, v in req.params.items() if k != "expand"}
    if "metadata" in updates and isinstance(updates["metadata"], dict):
        metadata = account["metadata"]
        for k, v in updates.pop("metadata").items():
            if v == "":
                metadata.pop(k, None)
            else:
                metadata[k] = v
    deep_merge(account, updates)
    account_events(req.fake, account, before)
    return account


@ROUTES.route("DELETE", "/v1/accounts/{account}")
def delete_account(req: FakeRequest) -> dict:
    account = _connected(req, req.path_params["account"])
    req.store.remove("account", account["id"])
    return {"id": account["id"], "object": "account", "deleted": True}


@ROUTES.route("GET", "/v1/accounts")
def list_accounts(req: FakeRequest) -> dict:
    if req.stripe_account:
        raise StripeApiError(403, "invalid_request_error", "Only the platform can list connected accounts.")
    return paginate(req.store.all("account"), req.params, "/v1/accounts")


@ROUTES.route("GET", "/v1/account")
def retrieve_own_account(req: FakeRequest) -> dict:
    if req.stripe_account:
        return req.store.require("account", req.stripe_account)
    return req.fake.accounts.platform


@ROUTES.route("POST", "/v1/account_links")
def create_account_link(req: FakeRequest) -> dict:
    p = req.params
    for name in ("account", "type"):
        if not p.get(name):
            raise missing_param(name)
    account = req.store.require("account", p["account"], param="account")
    if p["type"] not in ("account_onboarding", "account_update"):
        raise invalid_request("Invalid type: must be one of account_onboarding or account_update", param="type")
    if p["type"] == "account_update" and account["type"] != "custom":
        raise invalid_request("You cannot create `account_update` type Account Links for Express or Standard accounts.", param="type")
    for name in ("refresh_url", "return_url"):
        if name not in p:
            raise missing_param(name)
        url = urlsplit(p[name])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise invalid_request("Not a valid URL", param=name, code="url_invalid")
    created = now()
    link = from_fixture(
        "account_link",
        created=created,
        expires_at=created + LINK_LIFETIME_SECONDS,
        url=f"https://connect.stripe.com/setup/e/{account['id']}/{secrets.token_urlsafe(9)}",
    )
    req.fake.accounts.links.append({**link, "account": account["id"], "refresh_url": p["refresh_url"], "return_url": p["return_url"]})
    return link


class AccountHelpers:
    """``fake.accounts``: test-side controls for Connect accounts."""

    platform_country = "US"

    def __init__(self, fake):
        self.fake = fake
        self.links: list[dict] = []  # every account link handed out, with its account and URLs
        self.platform = from_fixture(
            "account", id=new_id("acct", 16), type="standard", charges_enabled=True, payouts_enabled=True,
            details_submitted=True, email="finance@penguinmails.example",
        )

    def get(self, account_id: str) -> dict:
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.require("account", account_id))

    def all(self) -> list[dict]:
        with self.fake.lock:
            return copy.deepcopy(self.fake.store.all("account"))

    def add(self, **fields) -> dict:
        """An Express account put straight into the store (no request logged); fields override."""
        with self.fake.lock:
            account_id = new_id("acct", 16)
            account = from_fixture(
                "account", id=account_id, created=now(), type="express", charges_enabled=False,
                payouts_enabled=False, details_submitted=False, metadata={},
                capabilities={"card_payments": "inactive", "transfers": "inactive"},
            )
            account["external_accounts"]["url"] = f"/v1/accounts/{account_id}/external_accounts"
            account.update(fields)
            return copy.deepcopy(self.fake.store.put(account))

    def onboard(
        self,
        account_id: str,
        *,
        details_submitted: bool = True,
        charges_enabled: bool = True,
        payouts_enabled: bool = True,
        currently_due: list[str] | tuple = (),
        past_due: list[str] | tuple = (),
        eventually_due: list[str] | tuple | None = None,
        disabled_reason: str | None = None,
    ) -> dict:
        """Move an account through onboarding; the defaults mean 'finished, fully enabled'.
        Records ``account.updated`` and ``capability.updated`` events on the account."""
        with self.fake.lock:
            account = self.fake.store.require("account", account_id)
            before = json_copy(account)
            account.update(
                details_submitted=details_submitted, charges_enabled=charges_enabled, payouts_enabled=payouts_enabled
            )
            account["requirements"].update(
                currently_due=list(currently_due),
                past_due=list(past_due),
                eventually_due=list(eventually_due if eventually_due is not None else currently_due),
                disabled_reason=disabled_reason,
            )
            if details_submitted:
                account["tos_acceptance"].update(date=now(), ip="127.0.0.1")
            status = "active" if charges_enabled else "inactive"
            account["capabilities"] = {name: status for name in account["capabilities"]}
            account_events(self.fake, account, before)
            return copy.deepcopy(account)


HELPERS["accounts"] = AccountHelpers
