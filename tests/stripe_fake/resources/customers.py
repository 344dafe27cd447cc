"""Customers and their payment methods: ``/v1/customers`` (create, retrieve, update, list, list
payment methods), ``/v1/payment_methods`` (attach, detach, retrieve, list)."""

from __future__ import annotations

import re

from ..errors import StripeApiError, invalid_request, missing_param
from ..objects import json_copy, range_filter
from ..server import FakeRequest
from . import ROUTES
from .accounts import _check_email
from .billing import billing_for, expand_of, list_page, not_implemented, param_int

CUSTOMER_FIELDS = ("email", "name", "description", "phone")
# Parameters stored as given ('' unsets an address or shipping; an address gets every key).
CUSTOMER_PLAIN = (
    "address", "shipping", "preferred_locales", "tax_exempt", "balance", "next_invoice_sequence", "business_name",
    "individual_name",
)


def _metadata(target: dict, updates) -> None:
    if updates == "":
        target.clear()
        return
    if not isinstance(updates, dict):
        raise invalid_request("Invalid object", param="metadata")
    for key, value in updates.items():
        if value == "":
            target.pop(key, None)
        else:
            target[key] = value


def _plain(customer: dict, params: dict) -> None:
    for name in CUSTOMER_PLAIN + ("invoice_prefix",):
        if name not in params:
            continue
        value = params[name]
        if name in ("balance", "next_invoice_sequence"):
            value = param_int(params, name)
        elif name in ("address", "shipping"):
            if value == "":
                value = None
            elif name == "address":
                value = {**dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state")), **value}
        customer[name] = value


def _check_prefix(params: dict) -> None:
    prefix = params.get("invoice_prefix")
    if prefix is not None and not re.fullmatch(r"[A-Z0-9]{3,12}", prefix):
        raise invalid_request(
            "Invoice prefix must be between 3 and 12 uppercase letters or digits.", param="invoice_prefix"
        )


@ROUTES.route("POST", "/v1/customers")
def create_customer(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    _check_email(p)
    _check_prefix(p)
    not_implemented(p, ("source", "tax_id_data", "test_clock", "cash_balance", "coupon", "promotion_code"), "POST /v1/customers")
    settings = p.get("invoice_settings") or {}
    default = settings.get("default_payment_method") if isinstance(settings, dict) else None
    attach = p.get("payment_method")
    # Validate before creating anything: a failed create leaves no customer behind.
    if attach:
        b.check_attachable(attach, None, param="payment_method")
    if default and default != attach:
        b.get("payment_method", default, param="invoice_settings[default_payment_method]")
        raise invalid_request(
            f"The customer does not have a payment method with the ID {default}. The payment method must be "
            "attached to the customer.",
            param="invoice_settings[default_payment_method]",
            code="resource_missing",
        )
    customer = b.create_customer(
        **{k: p.get(k) for k in CUSTOMER_FIELDS}, metadata=p.get("metadata") if isinstance(p.get("metadata"), dict) else None,
        emit=False,
    )
    _plain(customer, p)
    pm = None
    if attach:
        pm = b.attach(attach, customer, param="payment_method", emit=False)
        if default:
            customer["invoice_settings"]["default_payment_method"] = pm["id"]
    _settings(customer, settings)
    b.emit("customer.created", customer)  # the customer as made, then what was attached to it
    if pm is not None:
        b.emit("payment_method.attached", pm)
    return b.expand(customer, expand_of(req))


def _settings(customer: dict, settings) -> None:
    if not isinstance(settings, dict):
        return
    for key in ("footer", "custom_fields", "rendering_options"):
        if key in settings:
            customer["invoice_settings"][key] = settings[key] or None


@ROUTES.route("GET", "/v1/customers/{customer}")
def retrieve_customer(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.expand(b.get("customer", req.path_params["customer"]), expand_of(req))


@ROUTES.route("POST", "/v1/customers/{customer}")
def update_customer(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    customer = b.get("customer", req.path_params["customer"])
    before = json_copy(customer)
    _check_email(p)
    _check_prefix(p)
    not_implemented(
        p,
        ("source", "default_source", "coupon", "promotion_code", "tax", "cash_balance", "bank_account", "card",
         "default_alipay_account", "default_bank_account", "default_card", "trial_end"),
        "POST /v1/customers/{customer}",
    )
    settings = p.get("invoice_settings")
    if settings == "":
        settings = {"default_payment_method": "", "footer": "", "custom_fields": "", "rendering_options": ""}
    if isinstance(settings, dict) and "default_payment_method" in settings:
        b.set_default_payment_method(
            customer, settings["default_payment_method"], param="invoice_settings[default_payment_method]"
        )
    _settings(customer, settings)
    for name in CUSTOMER_FIELDS:
        if name in p:
            customer[name] = p[name] or None
    if "metadata" in p:
        _metadata(customer["metadata"], p["metadata"])
    _plain(customer, p)
    b.emit_if_changed("customer.updated", customer, before)
    return b.expand(customer, expand_of(req))


@ROUTES.route("GET", "/v1/customers")
def list_customers(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    customers = b.newest_first(req.store.all("customer", req.stripe_account))
    if "email" in p:
        customers = [c for c in customers if c["email"] == p["email"]]
    customers = range_filter(customers, p, "created")
    return list_page(customers, p, "/v1/customers", b)


@ROUTES.route("GET", "/v1/customers/{customer}/payment_methods")
def list_customer_payment_methods(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    customer = b.get("customer", req.path_params["customer"])
    methods = b.payment_methods_of(customer["id"])
    if p.get("type"):
        methods = [m for m in methods if m["type"] == p["type"]]
    return list_page(methods, p, f"/v1/customers/{customer['id']}/payment_methods", b)


@ROUTES.route("GET", "/v1/customers/{customer}/payment_methods/{payment_method}")
def retrieve_customer_payment_method(req: FakeRequest) -> dict:
    b = billing_for(req)
    customer = b.get("customer", req.path_params["customer"])
    pm = b.get("payment_method", req.path_params["payment_method"])
    if pm["customer"] != customer["id"]:
        raise StripeApiError(
            404, "invalid_request_error", f"No such PaymentMethod: '{pm['id']}'", code="resource_missing", param="payment_method"
        )
    return b.expand(pm, expand_of(req))


@ROUTES.route("POST", "/v1/payment_methods/{payment_method}/attach")
def attach_payment_method(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    if not p.get("customer"):
        raise missing_param("customer")
    customer = b.get("customer", p["customer"], param="customer")
    return b.expand(b.attach(req.path_params["payment_method"], customer), expand_of(req))


@ROUTES.route("POST", "/v1/payment_methods/{payment_method}/detach")
def detach_payment_method(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.expand(b.detach(b.get("payment_method", req.path_params["payment_method"])), expand_of(req))


@ROUTES.route("GET", "/v1/payment_methods/{payment_method}")
def retrieve_payment_method(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.expand(b.get("payment_method", req.path_params["payment_method"]), expand_of(req))


@ROUTES.route("GET", "/v1/payment_methods")
def list_payment_methods(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    if p.get("customer"):
        methods = b.payment_methods_of(b.get("customer", p["customer"], param="customer")["id"])
    else:
        methods = b.newest_first(req.store.all("payment_method", req.stripe_account))
    if p.get("type"):
        methods = [m for m in methods if m["type"] == p["type"]]
    return list_page(methods, p, "/v1/payment_methods", b)
