"""Envelope Router's wire format: envelopes, states, the codec, message names, errors.

Imports nothing of Django, Channels, anyio, RQ or structlog, so that a worker, a
client or a script can speak the protocol with this package alone.
"""

from envelope._codec import (
    decode,
    dumps,
    encode,
    frame_size,
    loads,
    parse_reply,
    peek_envelope,
)
from envelope._envelope import (
    MAX_TRACE_ID_LENGTH,
    MAX_TYPE_LENGTH,
    Envelope,
    State,
    new_trace_id,
)
from envelope._errors import (
    ERROR_CODES,
    BadEnvelope,
    BadJson,
    Cancelled,
    Failure,
    Forbidden,
    Internal,
    InvalidPayload,
    JobFailed,
    NotFound,
    Overloaded,
    ProtocolError,
    QueueUnavailable,
    RateLimited,
    Timeout,
    TooLarge,
    TooManyJobs,
    Unauthenticated,
    UnknownType,
)
from envelope._messages import (
    MessageDefinitionError,
    MessageRegistry,
    message,
    messages,
    wire_name,
)
from envelope._shadowing import ShadowedPackageError, check_not_shadowed

__all__ = [
    "ERROR_CODES",
    "MAX_TRACE_ID_LENGTH",
    "MAX_TYPE_LENGTH",
    "BadEnvelope",
    "BadJson",
    "Cancelled",
    "Envelope",
    "Failure",
    "Forbidden",
    "Internal",
    "InvalidPayload",
    "JobFailed",
    "MessageDefinitionError",
    "MessageRegistry",
    "NotFound",
    "Overloaded",
    "ProtocolError",
    "QueueUnavailable",
    "RateLimited",
    "ShadowedPackageError",
    "State",
    "Timeout",
    "TooLarge",
    "TooManyJobs",
    "Unauthenticated",
    "UnknownType",
    "check_not_shadowed",
    "decode",
    "dumps",
    "encode",
    "frame_size",
    "loads",
    "message",
    "messages",
    "new_trace_id",
    "parse_reply",
    "peek_envelope",
    "wire_name",
]
