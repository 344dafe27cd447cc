"""Check each request's parameters against ``spec3-2022-04-12.json`` (loaded once per process).

The spec is older than the SDK (API version 2020-08-27), so a parameter it does not know is a
*warning* (collected on the fake); a value that is plainly malformed for the spec's type (a
non-integer ``limit``, a scalar where an object is expected, ``requested=maybe``) is an *error*.
Required parameters are left to the resource handlers, which answer ``parameter_missing`` as
Stripe does.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

def _spec_dir() -> Path:
    """PMFIN_STRIPE_OPENAPI_DIR, else ``shared/stripe-openapi`` beside the repository (where CI
    puts it: a fresh clone with ../shared next to it), else the workplace's /work/shared."""
    if os.environ.get("PMFIN_STRIPE_OPENAPI_DIR"):
        return Path(os.environ["PMFIN_STRIPE_OPENAPI_DIR"])
    beside = Path(__file__).resolve().parents[3] / "shared" / "stripe-openapi"
    return beside if beside.is_dir() else Path("/work/shared/stripe-openapi")


SPEC_DIR = _spec_dir()
SPEC_FILE = SPEC_DIR / "spec3-2022-04-12.json"
FIXTURES_FILE = SPEC_DIR / "fixtures3.json"

_INT = re.compile(r"^-?\d+$")
_NUM = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")


@functools.lru_cache(maxsize=1)
def load_spec() -> dict:
    with open(SPEC_FILE, encoding="utf-8") as fh:
        return json.load(fh)


@functools.lru_cache(maxsize=1)
def load_fixtures() -> dict:
    with open(FIXTURES_FILE, encoding="utf-8") as fh:
        return json.load(fh)["resources"]


@dataclass
class CheckResult:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: CheckResult) -> None:
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)


class SpecChecker:
    def __init__(self, spec: dict | None = None):
        self.spec = spec if spec is not None else load_spec()
        self._components = self.spec.get("components", {}).get("schemas", {})
        routes = []
        for template, ops in self.spec["paths"].items():
            n_vars = template.count("{")
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            routes.append((n_vars, re.compile(pattern), template, ops))
        routes.sort(key=lambda r: r[0])  # literal paths win over templated ones
        self._routes = routes

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        for _, pattern, template, ops in self._routes:
            if pattern.match(path) and method.lower() in ops:
                return template, ops[method.lower()]
        return None

    def check(self, method: str, path: str, params: dict) -> CheckResult:
        result = CheckResult()
        found = self.operation(method, path)
        template = sdk_template(method, path)
        if found is not None and template is not None and template != found[0] and template not in self.spec["paths"]:
            found = None  # a literal path newer than the spec (/v1/invoices/create_preview), not its {invoice}
        if found is None:
            result.warnings.append(f"{method} {path}: not in the 2022-04-12 spec")
            if template is not None:  # newer than the spec: the SDK's parameter types decide alone
                for name, _ in _leaves(params):
                    self._unknown(result, f"{method} {template}", name)
            return result
        template, op = found
        props: dict = {}
        for p in op.get("parameters", []):
            if p["in"] == "query":
                props[p["name"]] = p.get("schema", {})
        content = op.get("requestBody", {}).get("content", {})
        body = content.get("application/x-www-form-urlencoded") or content.get("multipart/form-data") or {}
        props.update(self._resolve(body.get("schema", {})).get("properties", {}))
        where = f"{method} {template}"
        for name, value in params.items():
            if name not in props:
                self._unknown(result, where, name)
                continue
            result.extend(self._check(props[name], value, name, where))
        return result

    @staticmethod
    def _unknown(result: CheckResult, where: str, name: str) -> None:
        """Not in the 2022 spec: newer than it (a warning) if the installed SDK knows the parameter,
        else a parameter Stripe does not have at all — a typo — answered as Stripe does (400)."""
        method, template = where.split(" ", 1)
        if sdk_knows(method, template, re.findall(r"[^\[\]]+", name)) is False:
            result.errors.append(f"{where}: unknown parameter {name!r} (not in the 2022 spec, nor in the SDK's current parameters)")
        else:
            result.warnings.append(f"{where}: parameter {name!r} not in the 2022-04-12 spec")

    def _resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            schema = self._components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def _check(self, schema: dict, value, name: str, where: str) -> CheckResult:
        schema = self._resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            results = [self._check(alt, value, name, where) for alt in alternatives]
            return min(results, key=lambda r: (len(r.errors), len(r.warnings)))
        result = CheckResult()
        kind = schema.get("type")
        bad = f"{where}: parameter {name!r}"
        if kind == "object" or (kind is None and "properties" in schema):
            if isinstance(value, list):  # {"0": …} keys were read as an array; an object is wanted
                value = {str(i): v for i, v in enumerate(value)}
            if not isinstance(value, dict):
                result.errors.append(f"{bad} must be an object (a[key]=…), got {value!r}")
                return result
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, sub in value.items():
                sub_name = f"{name}[{key}]"
                if key in props:
                    result.extend(self._check(props[key], sub, sub_name, where))
                elif isinstance(extra, dict):
                    result.extend(self._check(extra, sub, sub_name, where))
                elif extra is not True:
                    self._unknown(result, where, sub_name)
        elif kind == "array":
            if not isinstance(value, list):
                result.errors.append(f"{bad} must be an array (a[0]=…), got {value!r}")
                return result
            for i, item in enumerate(value):
                result.extend(self._check(schema.get("items", {}), item, f"{name}[{i}]", where))
        elif isinstance(value, (dict, list)) and kind in ("string", "integer", "number", "boolean"):
            result.errors.append(f"{bad} must be a {kind}, got a nested value {value!r}")
        elif kind == "integer" and not _INT.match(value):
            result.errors.append(f"{bad} must be an integer, got {value!r}")
        elif kind == "number" and not _NUM.match(value):
            result.errors.append(f"{bad} must be a number, got {value!r}")
        elif kind == "boolean" and value not in ("true", "false"):
            result.errors.append(f"{bad} must be true or false, got {value!r}")
        elif kind == "string" and "enum" in schema and value not in schema["enum"]:
            result.warnings.append(f"{bad}: value {value!r} not among {schema['enum']} in the 2022-04-12 spec")
        elif kind == "string" and schema.get("maxLength") and len(value) > schema["maxLength"]:
            result.errors.append(f"{bad} is longer than {schema['maxLength']} characters")
        return result


# The SDK's own (current) parameter types of the endpoints the fake serves: later resources add theirs.
SDK_PARAMS = {
    ("POST", "/v1/accounts"): "AccountCreateParams",
    ("POST", "/v1/accounts/{account}"): "AccountUpdateParams",
    ("GET", "/v1/accounts"): "AccountListParams",
    ("GET", "/v1/accounts/{account}"): "AccountRetrieveParams",
    ("POST", "/v1/account_links"): "AccountLinkCreateParams",
    ("POST", "/v1/customers"): "CustomerCreateParams",
    ("GET", "/v1/customers"): "CustomerListParams",
    ("GET", "/v1/customers/{customer}"): "CustomerRetrieveParams",
    ("POST", "/v1/customers/{customer}"): "CustomerUpdateParams",
    ("GET", "/v1/customers/{customer}/payment_methods"): "CustomerPaymentMethodListParams",
    ("GET", "/v1/payment_methods"): "PaymentMethodListParams",
    ("GET", "/v1/payment_methods/{payment_method}"): "PaymentMethodRetrieveParams",
    ("POST", "/v1/payment_methods/{payment_method}/attach"): "PaymentMethodAttachParams",
    ("POST", "/v1/payment_methods/{payment_method}/detach"): "PaymentMethodDetachParams",
    ("POST", "/v1/invoiceitems"): "InvoiceItemCreateParams",
    ("POST", "/v1/invoices"): "InvoiceCreateParams",
    ("GET", "/v1/invoices"): "InvoiceListParams",
    ("GET", "/v1/invoices/{invoice}"): "InvoiceRetrieveParams",
    ("GET", "/v1/invoices/{invoice}/lines"): "InvoiceLineItemListParams",
    ("POST", "/v1/invoices/{invoice}/finalize"): "InvoiceFinalizeInvoiceParams",
    ("POST", "/v1/invoices/{invoice}/pay"): "InvoicePayParams",
    ("POST", "/v1/invoices/{invoice}/void"): "InvoiceVoidInvoiceParams",
    ("POST", "/v1/invoices/{invoice}/mark_uncollectible"): "InvoiceMarkUncollectibleParams",
    ("GET", "/v1/charges"): "ChargeListParams",
    ("GET", "/v1/charges/{charge}"): "ChargeRetrieveParams",
    ("GET", "/v1/balance_transactions"): "BalanceTransactionListParams",
    ("GET", "/v1/balance_transactions/{id}"): "BalanceTransactionRetrieveParams",
    ("GET", "/v1/transfers"): "TransferListParams",
    ("GET", "/v1/transfers/{transfer}"): "TransferRetrieveParams",
    ("GET", "/v1/application_fees"): "ApplicationFeeListParams",
    ("GET", "/v1/application_fees/{id}"): "ApplicationFeeRetrieveParams",
    ("GET", "/v1/refunds"): "RefundListParams",
    ("GET", "/v1/refunds/{refund}"): "RefundRetrieveParams",
    ("GET", "/v1/payment_intents/{intent}"): "PaymentIntentRetrieveParams",
    ("GET", "/v1/disputes"): "DisputeListParams",
    ("GET", "/v1/disputes/{dispute}"): "DisputeRetrieveParams",
    ("POST", "/v1/disputes/{dispute}"): "DisputeUpdateParams",
    ("POST", "/v1/disputes/{dispute}/close"): "DisputeCloseParams",
    ("POST", "/v1/files"): "FileCreateParams",
    ("GET", "/v1/files"): "FileListParams",
    ("GET", "/v1/files/{file}"): "FileRetrieveParams",
    ("POST", "/v1/products"): "ProductCreateParams",
    ("GET", "/v1/products"): "ProductListParams",
    ("GET", "/v1/products/{id}"): "ProductRetrieveParams",
    ("POST", "/v1/prices"): "PriceCreateParams",
    ("GET", "/v1/prices"): "PriceListParams",
    ("GET", "/v1/prices/{price}"): "PriceRetrieveParams",
    ("GET", "/v1/subscriptions"): "SubscriptionListParams",
    ("GET", "/v1/subscriptions/{subscription_exposed_id}"): "SubscriptionRetrieveParams",
    ("POST", "/v1/subscriptions/{subscription_exposed_id}"): "SubscriptionUpdateParams",
    ("POST", "/v1/invoices/create_preview"): "InvoiceCreatePreviewParams",
    ("GET", "/v1/events"): "EventListParams",
    ("GET", "/v1/events/{id}"): "EventRetrieveParams",
}


def sdk_template(method: str, path: str) -> str | None:
    """The ``SDK_PARAMS`` template matching a concrete path (``/v1/disputes/dp_1`` → ``…/{dispute}``)."""
    candidates = sorted((t for m, t in SDK_PARAMS if m == method.upper()), key=lambda t: t.count("{"))
    for template in candidates:  # literal paths first (/v1/invoices/create_preview before /v1/invoices/{invoice})
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path):
            return template
    return None


def _leaves(params, prefix: str = ""):
    """``[('a[b][0]', value), …]``: every leaf parameter name (an empty dict or list is a leaf)."""
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)) and value:
            yield from _leaves(value, name)
        else:
            yield name, value


def sdk_knows(method: str, template: str, parts: list[str]) -> bool | None:
    """Whether the installed SDK's parameter types have ``a[b][c]``; None for an endpoint not mapped."""
    import stripe.params

    name = SDK_PARAMS.get((method.upper(), template))
    if name is None:
        return None
    cls = getattr(stripe.params, name)
    return _knows(cls, parts, sys.modules[cls.__module__])


def _candidates(tp, module) -> list:
    import typing

    if isinstance(tp, typing.ForwardRef):
        tp = tp.__forward_arg__
    if isinstance(tp, str):  # a forward reference: a class of the module, or an expression of types
        text = tp
        tp = getattr(module, text, None)
        if tp is None:
            try:
                tp = eval(text, vars(module))  # noqa: S307 - the SDK's own annotations
            except Exception:  # e.g. a name the module imports only for type checking
                tp = typing.Dict[str, typing.Any] if "Dict[" in text else None
    if tp is None:
        return []
    origin = typing.get_origin(tp)
    if origin is not None and origin not in (list, dict):
        return [c for arg in typing.get_args(tp) for c in _candidates(arg, module)]
    return [tp]


def _knows(tp, parts: list[str], module) -> bool:
    import typing

    if not parts:
        return True
    key, rest = parts[0], parts[1:]
    for cand in _candidates(tp, module):
        origin = typing.get_origin(cand)
        if origin is dict:
            return True  # metadata and other free-form maps take any key
        if origin is list and key.isdigit():
            args = typing.get_args(cand)
            if not args or _knows(args[0], rest, module):
                return True
        annotations = getattr(cand, "__annotations__", None)
        if isinstance(annotations, dict) and key in annotations and _knows(annotations[key], rest, module):
            return True
    return False
