"""The error tree. Every failure a client can see is a `Failure` with a stable code.

    Failure                     code            answered as s="f", p={"code", "message", ...}
    ├── ProtocolError                           the frame itself is wrong
    │   ├── BadJson             bad_json        not JSON text
    │   ├── BadEnvelope         bad_envelope    JSON, but not a valid envelope
    │   ├── TooLarge            too_large       over ENVELOPE_MAX_FRAME_BYTES
    │   └── UnknownType         unknown_type    no handler for `t`
    ├── InvalidPayload          invalid_payload `p` failed validation (+ "errors")
    ├── Unauthenticated         unauthenticated the handler needs a logged-in user
    ├── Forbidden               forbidden       the permission check said no
    ├── NotFound                not_found       something the request names does not exist
    ├── RateLimited             rate_limited    over the handler's rate (+ "retry_after")
    ├── Overloaded              overloaded      the connection's mailbox is full
    ├── TooManyJobs             too_many_jobs   over ENVELOPE_MAX_DEFERRED deferred requests
    │                                           in flight on the connection (+ "limit")
    ├── Timeout                 timeout         over the handler's timeout
    ├── Internal                internal        an unexpected exception (details only in logs)
    ├── JobFailed               job_failed      a deferred handler failed on its worker
    ├── QueueUnavailable        queue_unavailable  the job queue could not be reached
    ├── TopicsUnavailable       topics_unavailable the channel layer (pub/sub) could not be reached
    └── Cancelled               cancelled       the work was cancelled

Applications subclass `Failure` (or `Forbidden`, `NotFound`, ...) with their own
`code` and `message`; whatever they put in `message` and the keyword arguments is
sent to the client, so it must be safe to show.

What an error reply says is bounded, whatever the input that caused it: a message is
cut at `MAX_MESSAGE_CHARS`, `invalid_payload` lists at most `MAX_ERRORS` problems (and
says how many more there were), and a payload whose extra fields would make it larger
than `MAX_PAYLOAD_BYTES` of JSON keeps only its code and message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any, ClassVar

import orjson

_CODE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")

#: The longest `message` an error reply carries (longer ones are cut, ending with "…").
MAX_MESSAGE_CHARS = 500
#: The most validation problems an `invalid_payload` reply lists.
MAX_ERRORS = 10
#: An error payload's extra fields beyond this (as JSON) are left out of the reply.
MAX_PAYLOAD_BYTES = 8192
_MAX_LOC_CHARS = 64  # one element of a problem's `loc` (a field name can be anything)


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text`, cut to at most `limit` characters (the last one then "…")."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Failure(Exception):
    """An outcome the client is told about: `s = "f"` with `p = {"code", "message", ...}`.

    >>> raise Forbidden("Only the chair may close the poll")
    """

    code: ClassVar[str] = "failed"
    message: ClassVar[str] = "The request failed."

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _CODE.match(cls.code):
            raise TypeError(
                f"{cls.__qualname__}.code = {cls.code!r}: a code is 1-64 chars of a-z, 0-9, _ "
                "and ., starting with a letter"
            )

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.text = message if message is not None else type(self).message
        self.extra = extra
        super().__init__(self.text)

    def payload(self) -> dict[str, Any]:
        """The `p` of the error reply, bounded (see the module's docstring)."""
        text = self.text if len(self.text) <= MAX_MESSAGE_CHARS else clip(self.text)
        if self.extra and _json_size(self.extra) > MAX_PAYLOAD_BYTES:
            return {"code": self.code, "message": text}
        return {"code": self.code, "message": text, **self.extra}


def _json_size(extra: dict[str, Any]) -> int:
    # An estimate (models and dates as their str()): the reply's encoder does the rest.
    return len(orjson.dumps(extra, default=str))


class ProtocolError(Failure):
    """The frame could not be read as an envelope. Carries what could be read of it."""

    code = "bad_envelope"
    message = "The frame is not a valid envelope."

    def __init__(
        self,
        message: str | None = None,
        *,
        t: str | None = None,
        i: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message, **extra)
        self.t = t
        self.i = i


class BadJson(ProtocolError):
    code = "bad_json"
    message = "The frame is not valid JSON."


class BadEnvelope(ProtocolError):
    code = "bad_envelope"


class TooLarge(ProtocolError):
    code = "too_large"
    message = "The frame is too large."


class UnknownType(ProtocolError):
    code = "unknown_type"
    message = "There is no handler for this message type."


class InvalidPayload(Failure):
    code = "invalid_payload"
    message = "The payload is not valid for this message type."

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]], count: int) -> InvalidPayload:
        """From pydantic's `errors()` (`count` of them): the first `MAX_ERRORS`, each with
        its `loc` (8 levels deep at most), `msg` and `type` cut to a sane length, and
        `more_errors` when some were left out."""
        shown = [
            {
                "loc": [
                    clip(part, _MAX_LOC_CHARS) if isinstance(part, str) else part
                    for part in islice(err["loc"], 8)
                ],
                "msg": clip(str(err["msg"]), 160),
                "type": clip(str(err["type"]), _MAX_LOC_CHARS),
            }
            for err in islice(errors, MAX_ERRORS)
        ]
        if count > MAX_ERRORS:
            return cls(errors=shown, more_errors=count - MAX_ERRORS)
        return cls(errors=shown)


class Unauthenticated(Failure):
    code = "unauthenticated"
    message = "You must be logged in to do this."


class Forbidden(Failure):
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(Failure):
    code = "not_found"
    message = "Not found."


class RateLimited(Failure):
    code = "rate_limited"
    message = "Too many requests; retry later."


class Overloaded(Failure):
    code = "overloaded"
    message = "The connection is busy; retry later."


class TooManyJobs(Failure):
    code = "too_many_jobs"
    message = (
        "Too many deferred requests of this connection are in progress; "
        "retry when one has finished."
    )


class Timeout(Failure):
    code = "timeout"
    message = "The request took too long."


class Internal(Failure):
    code = "internal"
    message = "An internal error occurred; quote the trace id when reporting it."


class JobFailed(Failure):
    code = "job_failed"
    message = "The job failed; quote the trace id when reporting it."


class QueueUnavailable(Failure):
    code = "queue_unavailable"
    message = "The job queue is unavailable; retry later."


class TopicsUnavailable(Failure):
    code = "topics_unavailable"
    message = "Topics are unavailable for the moment; retry later."


class Cancelled(Failure):
    code = "cancelled"
    message = "The request was cancelled."


#: Every stable code the library itself answers with, and its exception.
ERROR_CODES: dict[str, type[Failure]] = {
    cls.code: cls
    for cls in (
        BadJson,
        BadEnvelope,
        TooLarge,
        UnknownType,
        InvalidPayload,
        Unauthenticated,
        Forbidden,
        NotFound,
        RateLimited,
        Overloaded,
        TooManyJobs,
        Timeout,
        Internal,
        JobFailed,
        QueueUnavailable,
        TopicsUnavailable,
        Cancelled,
    )
}
