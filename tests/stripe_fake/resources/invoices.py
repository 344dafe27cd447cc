"""Invoice items and invoices: ``/v1/invoiceitems`` (create), ``/v1/invoices`` (create, retrieve,
list, lines, finalize, pay, void, mark_uncollectible), and the invoice PDF the fake serves at
``invoice_pdf`` (``GET /invoice/{id}/pdf``: no key, like Stripe's file links)."""

from __future__ import annotations

import time

from ..errors import StripeApiError, invalid_request, missing_param
from ..objects import paginate, range_filter
from ..pdf import text_pdf
from ..server import FakeRequest, RawResponse
from . import FILES, ROUTES
from .billing import (
    INVOICE_STATUSES,
    billing_for,
    expand_list_paths,
    expand_of,
    format_amount,
    not_implemented,
    param_bool,
    param_int,
)

COLLECTION_METHODS = ("charge_automatically", "send_invoice")


def _currency(params: dict) -> str | None:
    currency = params.get("currency")
    if currency is None:
        return None
    if len(currency) != 3 or not currency.isalpha():
        raise invalid_request(f"Invalid currency: {currency}.", param="currency")
    return currency.lower()


# -- invoice items -------------------------------------------------------------------------------


@ROUTES.route("POST", "/v1/invoiceitems")
def create_invoice_item(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    not_implemented(
        p, ("price", "price_data", "pricing", "unit_amount", "unit_amount_decimal", "discounts", "tax_rates", "quantity_decimal"),
        "POST /v1/invoiceitems",
    )
    if not p.get("customer"):
        raise missing_param("customer")
    customer = b.get("customer", p["customer"], param="customer")
    if "amount" not in p:
        raise missing_param("amount")
    currency = _currency(p) or customer["currency"]
    if currency is None:
        raise missing_param("currency")
    quantity = param_int(p, "quantity")
    if quantity not in (None, 1):
        raise invalid_request("You cannot specify `quantity` together with `amount`: give the total as `amount`.", param="quantity")
    invoice = None
    if p.get("invoice"):
        invoice = b.get("invoice", p["invoice"], param="invoice")
        if invoice["status"] != "draft":
            raise invalid_request("You can only add invoice items to draft invoices.", param="invoice")
        if invoice["customer"] != customer["id"]:
            raise invalid_request("The invoice belongs to another customer.", param="invoice")
        if invoice["currency"] != currency:
            raise invalid_request(
                f"The currency of the invoice item ({currency}) must match the invoice's ({invoice['currency']}).", param="currency"
            )
    if p.get("subscription"):
        b.get("subscription", p["subscription"], param="subscription")
    item = b.create_item(
        customer,
        amount=param_int(p, "amount"),
        currency=currency,
        description=p.get("description"),
        metadata=p.get("metadata") if isinstance(p.get("metadata"), dict) else None,
        period=p.get("period") if isinstance(p.get("period"), dict) else None,
    )
    if invoice is not None:
        b.add_line(invoice, item)
    return b.expand(item, expand_of(req))


# -- invoices ------------------------------------------------------------------------------------


@ROUTES.route("POST", "/v1/invoices")
def create_invoice(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    not_implemented(
        p,
        ("discounts", "default_tax_rates", "from_invoice", "shipping_cost", "shipping_details", "transfer_data",
         "application_fee_amount", "on_behalf_of", "account_tax_ids", "customer_account", "effective_at", "issuer",
         "default_source", "custom_fields", "rendering", "payment_settings", "automatically_finalizes_at"),
        "POST /v1/invoices",
    )
    if (p.get("automatic_tax") or {}).get("enabled") == "true":
        raise invalid_request("The Stripe fake does not implement automatic tax.", param="automatic_tax[enabled]")
    if not p.get("customer"):
        raise missing_param("customer")
    customer = b.get("customer", p["customer"], param="customer")
    if p.get("subscription"):  # the fake has no subscriptions (test helpers can set one)
        b.get("subscription", p["subscription"], param="subscription")
    method = p.get("collection_method", "charge_automatically")
    if method not in COLLECTION_METHODS:
        raise invalid_request(
            "Invalid collection_method: must be one of charge_automatically or send_invoice", param="collection_method"
        )
    behaviour = p.get("pending_invoice_items_behavior", "exclude")
    if behaviour not in ("include", "exclude"):
        raise invalid_request(
            "Invalid pending_invoice_items_behavior: must be one of exclude or include", param="pending_invoice_items_behavior"
        )
    days, due = param_int(p, "days_until_due"), param_int(p, "due_date")
    if method != "send_invoice" and (days is not None or due is not None):
        name = "days_until_due" if days is not None else "due_date"
        raise invalid_request(f"`{name}` can only be set when `collection_method` is `send_invoice`.", param=name)
    if p.get("default_payment_method"):
        b.require_attached(customer, p["default_payment_method"], param="default_payment_method")
    if p.get("number") and any(i["number"] == p["number"] for i in req.store.all("invoice", req.stripe_account)):
        raise invalid_request(f"Invoice number {p['number']} is already in use.", param="number")
    invoice = b.create_invoice(
        customer,
        collection_method=method,
        auto_advance=bool(param_bool(p, "auto_advance")),
        include_pending=behaviour == "include",
        description=p.get("description"),
        metadata=p.get("metadata") if isinstance(p.get("metadata"), dict) else None,
        currency=_currency(p),
        default_payment_method=p.get("default_payment_method") or None,
        days_until_due=days,
        due_date=due,
        footer=p.get("footer"),
        statement_descriptor=p.get("statement_descriptor"),
    )
    if p.get("number"):
        invoice["number"] = p["number"]
    return b.render_invoice(invoice, expand_of(req))


@ROUTES.route("GET", "/v1/invoices/{invoice}")
def retrieve_invoice(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.render_invoice(b.get("invoice", req.path_params["invoice"]), expand_of(req))


@ROUTES.route("GET", "/v1/invoices")
def list_invoices(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    invoices = b.newest_first(req.store.all("invoice", req.stripe_account))
    if p.get("customer"):
        invoices = [i for i in invoices if i["customer"] == p["customer"]]
    if "status" in p:
        if p["status"] not in INVOICE_STATUSES:
            raise invalid_request(
                "Invalid status: must be one of draft, open, paid, uncollectible, or void", param="status"
            )
        invoices = [i for i in invoices if i["status"] == p["status"]]
    if "collection_method" in p:
        invoices = [i for i in invoices if i["collection_method"] == p["collection_method"]]
    if p.get("subscription"):
        invoices = [i for i in invoices if ((i["parent"] or {}).get("subscription_details") or {}).get("subscription") == p["subscription"]]
    invoices = range_filter(range_filter(invoices, p, "created"), p, "due_date")
    paths = expand_list_paths(p)
    page = paginate(invoices, p, "/v1/invoices")
    page["data"] = [b.render_invoice(i, paths) for i in page["data"]]
    return page


@ROUTES.route("GET", "/v1/invoices/{invoice}/lines")
def list_invoice_lines(req: FakeRequest) -> dict:
    b = billing_for(req)
    invoice = b.get("invoice", req.path_params["invoice"])
    return paginate(invoice["lines"]["data"], req.params, f"/v1/invoices/{invoice['id']}/lines")


@ROUTES.route("POST", "/v1/invoices/{invoice}/finalize")
def finalize_invoice(req: FakeRequest) -> dict:
    b = billing_for(req)
    invoice = b.get("invoice", req.path_params["invoice"])
    return b.render_invoice(b.finalize(invoice, auto_advance=param_bool(req.params, "auto_advance")), expand_of(req))


@ROUTES.route("POST", "/v1/invoices/{invoice}/pay")
def pay_invoice(req: FakeRequest) -> dict:
    p, b = req.params, billing_for(req)
    not_implemented(p, ("source", "mandate"), "POST /v1/invoices/{invoice}/pay")
    if param_bool(p, "paid_out_of_band"):
        raise invalid_request("The Stripe fake does not implement `paid_out_of_band`.", param="paid_out_of_band")
    param_bool(p, "off_session")  # accepted: every pay here is off-session, nothing needs the customer
    param_bool(p, "forgive")
    invoice = b.get("invoice", req.path_params["invoice"])
    return b.render_invoice(b.pay(invoice, p.get("payment_method") or None), expand_of(req))


@ROUTES.route("POST", "/v1/invoices/{invoice}/void")
def void_invoice(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.render_invoice(b.void(b.get("invoice", req.path_params["invoice"])), expand_of(req))


@ROUTES.route("POST", "/v1/invoices/{invoice}/mark_uncollectible")
def mark_invoice_uncollectible(req: FakeRequest) -> dict:
    b = billing_for(req)
    return b.render_invoice(b.mark_uncollectible(b.get("invoice", req.path_params["invoice"])), expand_of(req))


# -- the PDF -------------------------------------------------------------------------------------


@FILES.route("GET", "/invoice/{invoice}/pdf")
def invoice_pdf(req: FakeRequest) -> RawResponse:
    found = req.store.find("invoice", req.path_params["invoice"])
    if found is None or found[1]["status"] == "draft":  # drafts have no PDF yet
        raise StripeApiError(404, "invalid_request_error", "Not Found")
    owner, invoice = found
    customer = req.store.get("customer", invoice["customer"], owner) or {}
    lines = [
        f"Invoice {invoice['number']}",
        f"Status: {invoice['status']}",
        f"Date: {time.strftime('%Y-%m-%d', time.gmtime(invoice['status_transitions']['finalized_at'] or invoice['created']))}",
        f"Bill to: {customer.get('name') or ''} {customer.get('email') or ''}".rstrip(),
        "",
    ]
    currency = invoice["currency"]
    for line in invoice["lines"]["data"]:
        lines.append(f"{line['description'] or 'Item'}    {format_amount(line['amount'], currency)}")
    lines += [
        "",
        f"Subtotal: {format_amount(invoice['subtotal'], currency)}",
        f"Tax: {format_amount(invoice['total'] - invoice['subtotal'], currency)}",
        f"Total: {format_amount(invoice['total'], currency)}",
        f"Amount paid: {format_amount(invoice['amount_paid'], currency)}",
        f"Amount due: {format_amount(invoice['amount_due'], currency)}",
        f"Amount remaining: {format_amount(invoice['amount_remaining'], currency)}",
    ]
    return RawResponse(text_pdf(lines, title=f"Invoice {invoice['number']}"), "application/pdf")
