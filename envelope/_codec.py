"""Text or bytes <-> `Envelope`, with every way a frame can be wrong mapped to a code.

orjson is used for both directions: it is several times faster than the stdlib on
small frames, and it serialises datetimes, UUIDs and enums natively.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json import pydantic_encoder

from envelope._envelope import (
    MAX_TRACE_ID_LENGTH,
    NAME_PATTERN,
    TRACE_ID_PATTERN,
    Envelope,
    State,
)
from envelope._errors import BadEnvelope, BadJson, TooLarge, clip
from envelope._messages import messages

_known_names = messages._by_name

_KEYS = frozenset(("t", "i", "p", "s"))
_loads = orjson.loads
_dumps = orjson.dumps
_name_match = NAME_PATTERN.match
_trace_match = TRACE_ID_PATTERN.match

# Used only to recover `t` and `i` from a frame too large to be parsed.
_PEEK_T = re.compile(r'"t"\s*:\s*"([A-Za-z0-9._:\-]{1,100})"')
_PEEK_I = re.compile(r'"i"\s*:\s*(?:"([A-Za-z0-9._:\-]{1,64})"|(\d{1,20})\b)')
_PEEK_CHARS = 1024


def frame_size(raw: str | bytes) -> int:
    """The size of a frame in bytes, as it travelled (UTF-8 for text)."""
    if isinstance(raw, bytes):
        return len(raw)
    if raw.isascii():
        return len(raw)
    return len(raw.encode("utf-8", "surrogatepass"))


def decode(raw: str | bytes, max_bytes: int | None = None) -> Envelope:
    """Read one client frame into an `Envelope`.

    Raises `TooLarge`, `BadJson` or `BadEnvelope`, each carrying the `t` and `i`
    of the frame whenever they could be read, so that the error reply names the
    request it is about.
    """
    if max_bytes is not None and len(raw) > max_bytes // 4 and frame_size(raw) > max_bytes:
        t, i = peek(raw)
        raise TooLarge(
            f"The frame is {frame_size(raw)} bytes; the limit is {max_bytes}.",
            t=t,
            i=i,
            limit=max_bytes,
        )
    try:
        obj = _loads(raw)
    except orjson.JSONDecodeError:
        raise BadJson() from None
    if type(obj) is not dict:
        raise BadEnvelope("The frame must be a JSON object with at least a 't' key.")

    t = obj.get("t")
    # Registered names were checked when declared: only unknown ones need the pattern.
    t_ok = type(t) is str and (t in _known_names or _name_match(t) is not None)
    i = obj.get("i")
    i_ok = True
    if i is not None:
        if type(i) is int:
            i = str(i)
        i_ok = type(i) is str and (
            (len(i) <= MAX_TRACE_ID_LENGTH and i.isascii() and i.isalnum())
            or _trace_match(i) is not None
        )
    tt = t if t_ok else None
    ii = i if i_ok else None

    if not t_ok:
        if t is None:
            raise BadEnvelope("The envelope has no 't' (message type).", i=ii)
        raise BadEnvelope("'t' must be a string of 1-100 characters from A-Za-z0-9._:-", i=ii)
    if not i_ok:
        raise BadEnvelope(
            f"'i' must be a string of 1-{MAX_TRACE_ID_LENGTH} characters from A-Za-z0-9._:- "
            "or an integer",
            t=tt,
        )
    if "s" in obj:
        raise BadEnvelope("'s' is set by the server only; clients must not send it.", t=tt, i=ii)
    p = obj.get("p")
    if p is not None and type(p) is not dict:
        raise BadEnvelope("'p' must be a JSON object, or null or absent.", t=tt, i=ii)
    if len(obj) > 2 and not _KEYS.issuperset(obj):
        unknown = [k for k in obj if k not in _KEYS]
        named = ", ".join(clip(k, 40) for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise BadEnvelope(
            f"Unknown envelope keys: {named}{more}; an envelope has only t, i, p.",
            t=tt,
            i=ii,
        )
    return Envelope(t, i, p)  # type: ignore[arg-type]  # t was checked to be a str


def peek(raw: str | bytes) -> tuple[str | None, str | None]:
    """Best-effort `t` and `i` from the head of a frame that is not parsed whole."""
    head = raw[:_PEEK_CHARS]
    if isinstance(head, bytes):
        head = head.decode("utf-8", "replace")
    t_match = _PEEK_T.search(head)
    i_match = _PEEK_I.search(head)
    t = t_match.group(1) if t_match else None
    i = (i_match.group(1) or i_match.group(2)) if i_match else None
    return t, i


def peek_envelope(raw: str | bytes, max_bytes: int | None = None) -> tuple[str | None, str | None]:
    """`t` and `i` of any frame, valid or not, for answering it without handling it."""
    try:
        env = decode(raw, max_bytes)
    except (BadJson, BadEnvelope, TooLarge) as exc:
        return exc.t, exc.i
    return env.t, env.i


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        # Field values only, in declaration order; nested models come back here.
        return obj.__dict__
    if isinstance(obj, decimal.Decimal):
        return str(obj)
    return pydantic_encoder(obj)


def dumps(obj: Any) -> str:
    """JSON text for any payload: dicts, pydantic models, datetimes, UUIDs, sets..."""
    return _dumps(obj, default=_default).decode()


def encode(
    t: str,
    i: str | None = None,
    p: BaseModel | dict[str, Any] | None = None,
    s: State | None = None,
) -> str:
    """One outgoing frame as text. `p` may be a model: it is not `.dict()`-ed first."""
    out: dict[str, Any] = {"t": t}
    if i is not None:
        out["i"] = i
    if s is not None:
        out["s"] = s  # a StrEnum: orjson writes it as its value
    if p is not None:
        out["p"] = p
    return _dumps(out, default=_default).decode()


def loads(raw: str | bytes) -> Any:
    """Plain JSON decode with the codec's parser (for clients and tests)."""
    return _loads(raw)


def parse_reply(raw: str | bytes) -> Envelope:
    """Read a server frame (reply or push) into an `Envelope`: the client side of the codec."""
    obj = _loads(raw)
    s = obj.get("s")
    return Envelope(obj["t"], obj.get("i"), obj.get("p"), State(s) if s is not None else None)
