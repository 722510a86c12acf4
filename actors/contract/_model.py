"""What a consumer promises its clients, read from its routes, the topics and the runtime.

`Contract` is the neutral description the AsyncAPI document is written from: every
message type a client may send (its payload, the states its replies come in, the models
of its `s` and `r` replies, the error codes its `f` replies can carry), every push a
client may receive (send-only `@message` models and what each topic publishes), the
built-in frames and the close codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from actors._closing import CLOSE_LOGGED_OUT, CLOSE_NORMAL, CLOSE_RESTART, CLOSE_SLOW, Closing
from actors._settings import EnvelopeSettings
from actors.presence import PresenceDiff
from actors.topics import Topic, TopicLeft, topics
from envelope import (
    BadEnvelope,
    BadJson,
    Failure,
    Forbidden,
    Internal,
    InvalidPayload,
    JobFailed,
    MessageRegistry,
    Overloaded,
    QueueUnavailable,
    RateLimited,
    Timeout,
    TooLarge,
    TooManyJobs,
    Unauthenticated,
    messages,
    wire_name,
)
from handlers import HandlerSpec, Router, declared_routers

#: What any request can be answered with, whatever its handler declares.
ALWAYS: tuple[type[Failure], ...] = (BadEnvelope, TooLarge, InvalidPayload, Overloaded, Internal)
#: What a deferred request can also be answered with (its worker failed, timed out, the
#: queue could not be reached, or the connection has ENVELOPE_MAX_DEFERRED in flight).
DEFERRED: tuple[type[Failure], ...] = (JobFailed, QueueUnavailable, Timeout, TooManyJobs)
#: The codes of `f` replies with `t: "error"`: frames whose `t` could not be read.
UNREADABLE: tuple[type[Failure], ...] = (BadJson, BadEnvelope, TooLarge, Overloaded)


#: Pushes the runtime itself sends.
BUILTIN_PUSHES: tuple[type[BaseModel], ...] = (Closing, TopicLeft, PresenceDiff)


@dataclass(frozen=True, slots=True)
class Request:
    """A message type a client may send, and how it is answered."""

    name: str
    model: type[BaseModel]
    reply: type[BaseModel] | None  # the `s` payload (None: `p` is absent)
    progress: type[BaseModel] | None  # the `r` payload when declared
    states: tuple[str, ...]  # in the order they can arrive
    codes: tuple[str, ...]  # of its `f` replies, sorted
    spec: HandlerSpec

    @property
    def summary(self) -> str:
        doc = (self.model.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True, slots=True)
class Push:
    """A message the server sends without being asked (no `s`)."""

    name: str
    model: type[BaseModel]
    topics: tuple[str, ...]  # the patterns of the topics that publish it
    builtin: bool


@dataclass(frozen=True, slots=True)
class TopicEntry:
    pattern: str
    pushes: tuple[str, ...]
    anyone: bool  # no permission: every connection may subscribe


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    name: str
    meaning: str


#: The codes the server closes sockets with (docs/protocol.md): the application's own
#: (daphne lets it use only 1000 and 3000-4999) and the servers' (1009, 1011, 1012).
CLOSE_CODES = (
    CloseCode(
        CLOSE_NORMAL,
        "normal",
        "the client sent connection.close, or the server closed the connection on purpose",
    ),
    CloseCode(1009, "too_big", "uvicorn only: a frame over the server's own size limit"),
    CloseCode(
        1011, "internal_error", "an unexpected error outside any handler; reconnecting is safe"
    ),
    CloseCode(1012, "restart", "uvicorn only: it stopped without draining; reconnect"),
    CloseCode(
        CLOSE_LOGGED_OUT,
        "logged_out",
        "the user logged out; a connection.closing push comes first",
    ),
    CloseCode(
        CLOSE_SLOW,
        "slow_reader",
        "the client did not read what it was sent (over its outbound budget); reconnect",
    ),
    CloseCode(
        CLOSE_RESTART,
        "restarting",
        "the server is restarting; what the mailbox held was answered first; reconnect",
    ),
)


@dataclass(frozen=True, slots=True)
class Contract:
    title: str
    version: str
    path: str  # the websocket endpoint, e.g. "/ws/"
    requests: tuple[Request, ...]
    pushes: tuple[Push, ...]
    topics: tuple[TopicEntry, ...]
    close_codes: tuple[CloseCode, ...] = CLOSE_CODES

    def models(self) -> list[type[BaseModel]]:
        """Every model the contract names, requests first, in a stable order."""
        found: list[type[BaseModel]] = []
        for request in self.requests:
            found += [m for m in (request.model, request.reply, request.progress) if m]
        found += [push.model for push in self.pushes]
        return list(dict.fromkeys(found))


def error_codes(spec: HandlerSpec, settings: EnvelopeSettings) -> tuple[str, ...]:
    """Every code an `f` reply to a request for `spec` can carry under `settings`."""
    found: list[type[Failure]] = list(ALWAYS)
    # Deferred work always needs a login (actors.request.Route.login_required).
    if not spec.public and (spec.deferred or not settings.allow_unauthenticated):
        found.append(Unauthenticated)
    if spec.permission is not None:
        found.append(Forbidden)
    if spec.rate is not None:
        found.append(RateLimited)
    if spec.deferred:
        found += DEFERRED
    elif spec.timeout is not None or settings.default_timeout is not None:
        found.append(Timeout)
    found += spec.errors
    return tuple(sorted({cls.code for cls in found}))


def reply_states(spec: HandlerSpec) -> tuple[str, ...]:
    states = []
    if spec.ack:
        states.append("a")
    if spec.deferred:
        states += ["q", "r"]
    elif spec.progress is not None:
        states.append("r")
    if spec.reply:
        states.append("s")
    states.append("f")
    return tuple(states)


def build_contract(
    routes: Mapping[str, HandlerSpec],
    settings: EnvelopeSettings,
    *,
    path: str = "/ws/",
    title: str = "Envelope Router API",
    version: str = "0.0.0",
    declared_topics: Iterable[Topic] | None = None,
    routers: Iterable[Router] | None = None,
    registry: MessageRegistry | None = None,
) -> Contract:
    """The contract of a consumer serving `routes` (`ConsumerConfig.routes`).

    Pushes are the topics' `pushes=` models, the built-in pushes, and every `@message`
    model of `registry` that no router of the process (`routers`) handles.
    """
    requests = tuple(
        Request(
            name=name,
            model=spec.model,
            reply=spec.returns,
            progress=spec.progress,
            states=reply_states(spec),
            codes=error_codes(spec, settings),
            spec=spec,
        )
        for name, spec in sorted(routes.items())
    )
    declared = list(declared_topics if declared_topics is not None else topics)
    handled = {spec.name for router in (routers or declared_routers()) for spec in router}
    handled.update(routes)
    push_topics: dict[str, list[str]] = {}
    push_models: dict[str, type[BaseModel]] = {}
    for topic in declared:
        for model in (*topic.pushes, *((PresenceDiff,) if topic.presence else ())):
            push_topics.setdefault(wire_name(model), []).append(topic.pattern)
            push_models[wire_name(model)] = model
    table = registry if registry is not None else messages
    for name in table:
        if name not in handled:
            push_models.setdefault(name, table[name])
    builtin = {wire_name(m) for m in BUILTIN_PUSHES}
    pushes = tuple(
        Push(name, model, tuple(push_topics.get(name, ())), name in builtin)
        for name, model in sorted(push_models.items())
    )
    topic_entries = tuple(
        TopicEntry(
            pattern=topic.pattern,
            pushes=tuple(wire_name(m) for m in topic.pushes),
            anyone=topic.permission is None,
        )
        for topic in sorted(declared, key=lambda t: t.pattern)
    )
    return Contract(title, version, path, requests, pushes, topic_entries)


def describe_spec(spec: HandlerSpec) -> dict[str, Any]:
    """What a reader of the contract may want to know about a handler, beyond its types."""
    permission = spec.permission
    out: dict[str, Any] = {
        "deferred": spec.deferred,
        "concurrent": spec.concurrent,
        "public": spec.public,
        "ack": spec.ack,
        "reply": spec.reply,
    }
    if permission is not None:
        out["permission"] = getattr(permission, "__name__", type(permission).__name__)
    if spec.rate is not None:
        out["rate"] = f"{spec.rate.count}/{spec.rate.seconds:g}s"
    if spec.timeout is not None:
        out["timeout"] = spec.timeout
    return out
