"""Decode Stripe's form encoding (``a[b][c]=x``, ``a[0]=x``) into nested dicts and lists.

The SDK encodes nested objects with bracketed keys and arrays with explicit indexes
(``expand[0]=…``); ``a[]=`` appends. Anything else is malformed and raises ``MalformedParams``
(the fake answers it with a 400 and the test fails): unbalanced brackets, a key given twice,
a key used both as a scalar and as a container, array indexes with gaps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class MalformedParams(ValueError):
    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class _Append:
    """Marker key for ``a[]=`` (append to a list)."""


def split_key(key: str) -> list[str | type[_Append]]:
    m = _KEY.match(key)
    if not m:
        raise MalformedParams(f"malformed parameter name {key!r}", key)
    segments: list[str | type[_Append]] = [m.group(1)]
    for seg in _SEGMENT.findall(m.group(2)):
        segments.append(_Append if seg == "" else seg)
    return segments


def decode_pairs(pairs: list[tuple[str, str]]) -> dict:
    """Ordered (key, value) pairs → nested params; dicts with keys 0..n-1 become lists."""
    root: dict = {}
    for key, value in pairs:
        segments = split_key(key)
        node = root
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            if seg is _Append:
                seg = str(sum(1 for k in node if k.isdigit()))
            if last:
                if seg in node:
                    raise MalformedParams(f"parameter {key!r} given more than once", key)
                node[seg] = value
            else:
                child = node.setdefault(seg, {})
                if not isinstance(child, dict):
                    raise MalformedParams(f"parameter {key!r} is used both as a value and as an object", key)
                node = child
    return _listify(root, "")


def _listify(node: dict, path: str) -> dict | list:
    out = {k: _listify(v, f"{path}[{k}]" if path else k) if isinstance(v, dict) else v for k, v in node.items()}
    if path and out and all(k.isdigit() for k in out):
        indexes = sorted(int(k) for k in out)
        if indexes != list(range(len(indexes))):
            raise MalformedParams(f"array parameter {path!r} has indexes {indexes}, expected 0..{len(indexes) - 1}", path)
        return [out[str(i)] for i in indexes]
    return out


def decode_query(text: str) -> dict:
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError as exc:
        raise MalformedParams(f"malformed form encoding: {exc}") from None
    return decode_pairs(pairs)


def flatten(params: dict | list, prefix: str = "") -> list[tuple[str, object]]:
    """The inverse view, for messages and fingerprints: ``[('a[b]', 'x'), ...]``."""
    items = params.items() if isinstance(params, dict) else enumerate(params)
    out: list[tuple[str, object]] = []
    for k, v in items:
        name = f"{prefix}[{k}]" if prefix else str(k)
        if isinstance(v, (dict, list)) and v:
            out.extend(flatten(v, name))
        else:
            out.append((name, v))
    return out


@dataclass(frozen=True)
class Upload:
    """A file part of a ``multipart/form-data`` request (``POST /v1/files``)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {len(self.data)} bytes)"


def decode_multipart(body: bytes, content_type: str) -> dict:
    """A ``multipart/form-data`` body (as the SDK uploads files) → params: text parts decoded as
    form keys (``a[b]``), file parts as ``Upload``. Malformed bodies raise ``MalformedParams``."""
    if "boundary=" not in content_type:
        raise MalformedParams("multipart/form-data without a boundary")
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    if not message.is_multipart() or message.defects:
        raise MalformedParams("malformed multipart/form-data body")
    pairs: list[tuple[str, object]] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            raise MalformedParams("a multipart part without a name")
        payload = part.get_payload(decode=True) or b""
        filename = part.get_param("filename", header="content-disposition")
        if filename is not None:
            pairs.append((name, Upload(filename, part.get_content_type(), payload)))
        else:
            try:
                pairs.append((name, payload.decode("utf-8")))
            except UnicodeDecodeError:
                raise MalformedParams(f"multipart part {name!r} is not UTF-8 text", name) from None
    return decode_pairs(pairs)  # type: ignore[arg-type]
