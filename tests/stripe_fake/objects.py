"""Object storage, ids, fixture-shaped objects and Stripe-style pagination for the fake."""

from __future__ import annotations

import copy
import secrets
import string
import time
from collections import defaultdict

from .errors import StripeApiError, invalid_request
from .spec import load_fixtures

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """``acct_1Qx…``: Stripe-looking ids (prefix, a '1', random alphanumerics)."""
    return f"{prefix}_1" + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))


def now() -> int:
    return int(time.time())


def from_fixture(resource: str, **overrides) -> dict:
    """A deep copy of ``fixtures3.json``'s object for ``resource``, with top-level overrides."""
    obj = copy.deepcopy(load_fixtures()[resource])
    obj.update(overrides)
    return obj


def deep_merge(target: dict, updates: dict) -> dict:
    """Merge decoded form params into an object the way Stripe updates do ('' unsets)."""
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        elif value == "" and key in target and isinstance(target[key], dict):
            target[key] = {}
        else:
            target[key] = value
    return target


class ObjectStore:
    """Objects by (owner, object type), in creation order. ``owner`` is the connected account
    named by the ``Stripe-Account`` header, or None for the platform."""

    def __init__(self) -> None:
        self._objects: dict[tuple[str | None, str], dict[str, dict]] = defaultdict(dict)

    def put(self, obj: dict, owner: str | None = None) -> dict:
        self._objects[(owner, obj["object"])][obj["id"]] = obj
        return obj

    def remove(self, object_type: str, obj_id: str, owner: str | None = None) -> None:
        self._objects[(owner, object_type)].pop(obj_id, None)

    def get(self, object_type: str, obj_id: str, owner: str | None = None) -> dict | None:
        return self._objects[(owner, object_type)].get(obj_id)

    def require(self, object_type: str, obj_id: str, owner: str | None = None, *, param: str | None = None) -> dict:
        obj = self.get(object_type, obj_id, owner)
        if obj is None:
            raise StripeApiError(
                404 if param is None else 400,
                "invalid_request_error",
                f"No such {object_type}: '{obj_id}'",
                code="resource_missing",
                param=param or "id",
            )
        return obj

    def all(self, object_type: str, owner: str | None = None) -> list[dict]:
        """Newest first, as Stripe lists."""
        return list(reversed(self._objects[(owner, object_type)].values()))

    def find(self, object_type: str, obj_id: str) -> tuple[str | None, dict] | None:
        """(owner, object) for an id under any owner (for URLs that name no account)."""
        for (owner, kind), objects in list(self._objects.items()):
            if kind == object_type and obj_id in objects:
                return owner, objects[obj_id]
        return None


def paginate(items: list[dict], params: dict, url: str) -> dict:
    """A Stripe list object from ``items`` (newest first) and limit/starting_after/ending_before."""
    raw_limit = params.get("limit", "10")
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        raise invalid_request(f"Invalid integer: {raw_limit}", param="limit") from None
    if not 1 <= limit <= 100:
        raise invalid_request("This value must be between 1 and 100 (inclusive).", param="limit")
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid_request("You may only specify one of these parameters: ending_before, starting_after.")
    ids = [o["id"] for o in items]
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor and cursor not in ids:
            object_type = items[0]["object"] if items else "object"
            raise StripeApiError(
                400, "invalid_request_error", f"No such {object_type}: '{cursor}'", code="resource_missing", param=name
            )
    if after:
        rest = items[ids.index(after) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        rest = items[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def expand_paths(obj: dict, paths: list[str], lookup) -> None:
    """Expand ``paths`` (``a.b.c``) in ``obj`` in place, as Stripe's ``expand[]`` does: an id
    string on the way is replaced by a deep copy of ``lookup(id)``, ``data`` walks a list's items,
    a null stays null. A path through anything else is Stripe's 400."""
    for path in paths:
        _expand(obj, path.split("."), path, lookup)


def _expand(node, parts: list[str], path: str, lookup) -> None:
    if not parts:
        return
    if isinstance(node, list):
        for item in node:
            _expand(item, parts, path, lookup)
        return
    key, rest = parts[0], parts[1:]
    if not isinstance(node, dict) or key not in node:
        raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
    value = node[key]
    if isinstance(value, str):
        found = lookup(value)
        if found is None:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = node[key] = copy.deepcopy(found)
    if value is not None:
        _expand(value, rest, path, lookup)


def range_filter(items: list[dict], params: dict, name: str) -> list[dict]:
    """Stripe's range filters (``created``, ``due_date``): an integer (equal), or gt/gte/lt/lte."""
    if name not in params:
        return items
    flt = params[name]
    bounds = flt if isinstance(flt, dict) else {"eq": flt}
    tests = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__, "eq": int.__eq__}
    checks = []
    for op, raw in bounds.items():
        if op not in tests or op == "eq" and isinstance(flt, dict):
            raise invalid_request(f"Received unknown parameter: {name}[{op}]", param=f"{name}[{op}]")
        try:
            checks.append((tests[op], int(raw)))
        except (TypeError, ValueError):
            raise invalid_request(f"Invalid integer: {raw}", param=name) from None
    return [o for o in items if o.get(name) is not None and all(test(o[name], v) for test, v in checks)]
