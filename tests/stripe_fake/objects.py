"""Object storage, ids, fixture-shaped objects and Stripe-style pagination for the fake."""

from __future__ import annotations

import bisect
import functools
import itertools
import marshal
import secrets
import string
import sys
import time
from collections import defaultdict

from .errors import StripeApiError, invalid_request
from .spec import load_fixtures

_ALPHABET = string.ascii_letters + string.digits


_ID_TABLE = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) for b in range(256))  # a random byte → an alphanumeric


def new_id(prefix: str, length: int = 24) -> str:
    """``acct_1Qx…``: Stripe-looking ids (prefix, a '1', random alphanumerics)."""
    return f"{prefix}_1" + secrets.token_bytes(length - 1).translate(_ID_TABLE).decode("ascii")


def now() -> int:
    return int(time.time())


def json_copy(value):
    """A deep copy of JSON-shaped data (dicts, lists, scalars): several times faster than
    ``copy.deepcopy`` and, like it, sharing the (immutable) strings."""
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) not in _CONTAINERS else json_copy(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) not in _CONTAINERS else json_copy(v) for v in value]
    return value


_CONTAINERS = (dict, list)


def _interned(value):
    kind = type(value)
    if kind is dict:
        return {sys.intern(k): _interned(v) for k, v in value.items()}
    if kind is list:
        return [_interned(v) for v in value]
    return sys.intern(value) if kind is str else value


@functools.lru_cache(maxsize=None)
def _fixture_blob(resource: str) -> bytes:
    """The fixture, its strings interned, marshalled: ``marshal.loads`` makes a fresh deep copy
    in a third of ``json_copy``'s time, and its strings stay shared (100,000 charges fit)."""
    return marshal.dumps(_interned(load_fixtures()[resource]))


def from_fixture(resource: str, **overrides) -> dict:
    """A deep copy of ``fixtures3.json``'s object for ``resource``, with top-level overrides."""
    obj = marshal.loads(_fixture_blob(resource))
    obj.update(overrides)
    return obj


_MISSING = object()


def changed(before: dict, after: dict) -> dict:
    """An event's ``previous_attributes``: the keys of ``before`` whose values changed in
    ``after`` (nested dicts reduced to their changed keys; other values — lists too — whole);
    keys ``after`` added, as null."""
    previous = {}
    for key, old in before.items():
        new = after.get(key, _MISSING)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            inner = changed(old, new)
            if inner:
                previous[key] = inner
        else:
            previous[key] = old
    for key in after.keys() - before.keys():
        previous[key] = None
    return previous


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
    named by the ``Stripe-Account`` header, or None for the platform.

    Each (owner, type) also keeps an index sorted by (``created``, insertion sequence): Stripe
    lists newest first, and objects created in the same second in the order they were made
    (ids are random here, so they cannot break the tie). ``page`` answers a list request from
    the index with bisect — a ``created`` range and a cursor cost O(log n), not a scan — so a
    list of 100,000 charges pages as fast as one of ten.
    """

    def __init__(self) -> None:
        self._objects: dict[tuple[str | None, str], dict[str, dict]] = defaultdict(dict)
        self._index: dict[tuple[str | None, str], list[tuple[int, int, str]]] = defaultdict(list)
        self._keys: dict[tuple[str | None, str], dict[str, tuple[int, int, str]]] = defaultdict(dict)
        self._seq = itertools.count()
        self.examined = 0  # objects ``page`` has looked at, all calls together (tests assert no scans)

    def put(self, obj: dict, owner: str | None = None) -> dict:
        slot = (owner, obj["object"])
        keys, index = self._keys[slot], self._index[slot]
        created = obj.get("created") or 0
        old = keys.get(obj["id"])
        if old is None or old[0] != created:
            if old is not None:  # the same object again with another `created`: move it
                del index[bisect.bisect_left(index, old)]
            key = (created, old[1] if old else next(self._seq), obj["id"])
            if not index or index[-1] < key:
                index.append(key)  # the usual case: the newest object so far
            else:
                bisect.insort(index, key)
            keys[obj["id"]] = key
        self._objects[slot][obj["id"]] = obj
        return obj

    def remove(self, object_type: str, obj_id: str, owner: str | None = None) -> None:
        slot = (owner, object_type)
        self._objects[slot].pop(obj_id, None)
        key = self._keys[slot].pop(obj_id, None)
        if key is not None:
            index = self._index[slot]
            del index[bisect.bisect_left(index, key)]

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
        """Newest inserted first."""
        return list(reversed(self._objects[(owner, object_type)].values()))

    def count(self, object_type: str, owner: str | None = None) -> int:
        return len(self._objects[(owner, object_type)])

    def newest_first(self, object_type: str, owner: str | None = None) -> list[dict]:
        """By ``created``, newest first, as Stripe lists (same second: the later made first)."""
        objects = self._objects[(owner, object_type)]
        return [objects[key[2]] for key in reversed(self._index[(owner, object_type)])]

    def find(self, object_type: str, obj_id: str) -> tuple[str | None, dict] | None:
        """(owner, object) for an id under any owner (for URLs that name no account)."""
        for (owner, kind), objects in list(self._objects.items()):
            if kind == object_type and obj_id in objects:
                return owner, objects[obj_id]
        return None

    def page(
        self,
        object_type: str,
        owner: str | None,
        params: dict,
        url: str,
        *,
        match=None,
        created: str | None = "created",
        floor: int | None = None,
    ) -> dict:
        """A Stripe list object of ``object_type`` newest first, from the sorted index.

        ``params``: limit, starting_after/ending_before (an id of this type and owner: an
        unknown one is Stripe's 400), and the range filter named ``created`` (gt/gte/lt/lte or
        an integer) answered by bisect. ``match(obj)``: any other filter (scanned from the
        cursor until the page is full). ``floor``: nothing older than this is listed (events).
        The page holds the stored objects themselves: render copies before changing them.
        """
        limit = page_limit(params)
        after, before = cursors(params)
        slot = (owner, object_type)
        index, keys, objects = self._index[slot], self._keys[slot], self._objects[slot]
        lo, hi = 0, len(index)
        bounds = range_bounds(params, created) if created else []
        if floor is not None:
            bounds.append(("gte", floor))
        for op, value in bounds:
            if op in ("gt", "gte", "eq"):
                lo = max(lo, bisect.bisect_left(index, (value + 1 if op == "gt" else value,)))
            if op in ("lt", "lte", "eq"):
                hi = min(hi, bisect.bisect_left(index, (value + 1 if op in ("lte", "eq") else value,)))
        for name, cursor in (("starting_after", after), ("ending_before", before)):
            if cursor and cursor not in keys:
                raise StripeApiError(
                    400, "invalid_request_error", f"No such {object_type}: '{cursor}'", code="resource_missing", param=name
                )
        if after:
            hi = min(hi, bisect.bisect_left(index, keys[after]))
        if before:
            lo = max(lo, bisect.bisect_right(index, keys[before]))
        if match is None:
            if before:
                chosen = index[lo : min(hi, lo + limit)]
            else:
                chosen = index[max(lo, hi - limit) : hi]
            has_more = hi - lo > limit
            data = [objects[key[2]] for key in reversed(chosen)]
            self.examined += len(data)
        else:
            found: list[dict] = []
            steps = range(lo, hi) if before else range(hi - 1, lo - 1, -1)
            for i in steps:
                self.examined += 1
                obj = objects[index[i][2]]
                if match(obj):
                    found.append(obj)
                    if len(found) > limit:
                        break
            has_more = len(found) > limit
            data = found[:limit]
            if before:
                data.reverse()
        return {"object": "list", "data": data, "has_more": has_more, "url": url}


def page_limit(params: dict) -> int:
    raw_limit = params.get("limit", "10")
    try:
        limit = int(raw_limit)
    except (TypeError, ValueError):
        raise invalid_request(f"Invalid integer: {raw_limit}", param="limit") from None
    if not 1 <= limit <= 100:
        raise invalid_request("This value must be between 1 and 100 (inclusive).", param="limit")
    return limit


def cursors(params: dict) -> tuple[str | None, str | None]:
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise invalid_request("You may only specify one of these parameters: ending_before, starting_after.")
    return after, before


def paginate(items: list[dict], params: dict, url: str) -> dict:
    """A Stripe list object from ``items`` (newest first) and limit/starting_after/ending_before."""
    limit = page_limit(params)
    after, before = cursors(params)
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
        value = node[key] = json_copy(found)
    if value is not None:
        _expand(value, rest, path, lookup)


def range_bounds(params: dict, name: str) -> list[tuple[str, int]]:
    """Stripe's range filter ``name`` (``created``, ``due_date``) as [(op, value)]: an integer
    (``eq``), or any of gt/gte/lt/lte."""
    if name not in params:
        return []
    flt = params[name]
    bounds = flt if isinstance(flt, dict) else {"eq": flt}
    out = []
    for op, raw in bounds.items():
        if op not in _RANGE_TESTS or op == "eq" and isinstance(flt, dict):
            raise invalid_request(f"Received unknown parameter: {name}[{op}]", param=f"{name}[{op}]")
        try:
            out.append((op, int(raw)))
        except (TypeError, ValueError):
            raise invalid_request(f"Invalid integer: {raw}", param=name) from None
    return out


_RANGE_TESTS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__, "eq": int.__eq__}


def range_filter(items: list[dict], params: dict, name: str) -> list[dict]:
    """Stripe's range filters (``created``, ``due_date``): an integer (equal), or gt/gte/lt/lte."""
    if name not in params:
        return items
    checks = [(_RANGE_TESTS[op], value) for op, value in range_bounds(params, name)]
    return [o for o in items if o.get(name) is not None and all(test(o[name], v) for test, v in checks)]
