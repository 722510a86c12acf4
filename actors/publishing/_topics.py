"""Topic names, their channel-layer groups, and `Topic` declarations with their patterns.

A topic name on the wire is 1-100 chars of ``A-Za-z0-9._:-`` (like a message type).
Channel-layer group names allow only ``A-Za-z0-9._-`` and fewer than 100 chars, so
`group_for` maps a name to a group by an escape that is reversible (``_`` -> ``__``,
``:`` -> ``_c``, under the prefix ``tp.``); names whose escaped form would be too long
get ``th.`` and the SHA-256 of the name instead. The two prefixes never meet, so two
topics never share a group. Group names stay on the server: clients only see topics.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from envelope import encode, wire_name
from handlers import authenticated, staff, superuser

#: Channel-layer message types a consumer understands.
PUSH = "envelope.push"
PUSHES = "envelope.pushes"  # {"texts": [...]}: several, sent in this order (a job's r and s)
CLOSE = "envelope.close"
TOPICS = "envelope.topics"
SETTLE = "envelope.settle"  # a connection's own marker, sent to itself while draining

TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
_GROUP_LIMIT = 99  # channels: len(group) < 100
_SEGMENT = re.compile(r"^[A-Za-z0-9_:\-]+$")
_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::(int|str))?\}$")
_KIND_REGEX = {"str": r"[A-Za-z0-9_:\-]+", "int": r"[0-9]+"}


class TopicDefinitionError(ValueError):
    """A `Topic` declaration is wrong: a bad pattern, or it clashes with another topic."""


def check_topic_name(topic: Any) -> str:
    if not isinstance(topic, str) or not TOPIC_PATTERN.match(topic):
        raise ValueError(
            f"topic {topic!r}: a topic name is 1-100 chars of A-Za-z0-9._:- "
            "(e.g. 'room.lobby', 'user.7')"
        )
    return topic


def group_for(topic: str) -> str:
    """The channel-layer group of a topic: unambiguous, and valid for every channel layer."""
    check_topic_name(topic)
    escaped = topic.replace("_", "__").replace(":", "_c")
    if len(escaped) + 3 <= _GROUP_LIMIT:
        return f"tp.{escaped}"
    return f"th.{hashlib.sha256(topic.encode()).hexdigest()}"


def push_message(model: BaseModel, i: str | None = None) -> dict[str, Any]:
    """The channel-layer message of a push: encoded once, whatever the number of receivers."""
    return {"type": PUSH, "text": encode(wire_name(model), i, model)}


# -- declarations ------------------------------------------------------------------------

Permission = Callable[[Any, Any], Any]
Snapshot = Callable[[Any, Any], Any]

# Sync checks that never touch the database: run in the actor, not on a worker.
_DB_FREE: set[Callable[..., Any]] = set()


def database_free(check: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a sync permission or snapshot as not touching the database, so a subscribe
    runs it in the actor instead of sending it to a worker. Returns the check."""
    _DB_FREE.add(check)
    return check


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """What a topic's `permission` and `snapshot` get as their first argument."""

    topic: str  # the full name, e.g. "room.lobby"
    params: dict[str, Any]  # the pattern's placeholders, e.g. {"name": "lobby"}
    spec: Topic


@dataclass(frozen=True, slots=True, eq=False)
class Topic:
    """A family of topics clients may subscribe to, and who may.

        room = Topic("room.{name}", permission=is_member, pushes=[ChatMessage])
        poll = Topic("poll.{pk:int}.votes", permission=can_view_poll, pushes=[VoteCast])

    A placeholder is a whole dot-separated segment: ``{name}`` matches 1+ chars of
    ``A-Za-z0-9_:-``, ``{name:int}`` digits (given to checks as an int).
    `permission(match, ctx) -> bool` (default `authenticated`; None: anyone connected)
    and `snapshot(match, ctx) -> model | list of models | None` run in the actor when
    they are async (or marked `database_free`), else on a worker, with the database.
    Worker checks go to the RQ queue `queue` when the deferred backend is RQ.
    `pushes` lists the `@message` models published to it: what the generated contract
    (`envelope schema`) tells clients a subscriber receives.
    `presence=True` keeps who is subscribed (`presence.list`, `presence.diff`; see
    `actors.presence`); `presence_info(user) -> dict` adds what the app wants per user.
    Declaring registers the topic; a pattern that can match a name another topic
    matches is a `TopicDefinitionError` at import.
    """

    pattern: str
    permission: Permission | None = authenticated
    snapshot: Snapshot | None = None
    queue: str = "default"
    pushes: Sequence[type[BaseModel]] = ()  # kept as a tuple
    presence: bool = False
    presence_info: Callable[[Any], Any] | None = None
    registry: TopicRegistry | None = field(default=None, repr=False)
    module: str = field(default="", compare=False)  # where it is declared, for workers
    _regex: re.Pattern[str] = field(init=False, repr=False)
    _segments: tuple[tuple[str, str], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.module:
            # __post_init__ <- __init__ <- the declaring module: a worker imports it to
            # know the topic (see actors.topics._worker).
            caller = sys._getframe(2).f_globals.get("__name__", "")
            object.__setattr__(self, "module", caller)
        segments = parse_pattern(self.pattern)
        object.__setattr__(self, "_segments", segments)
        parts = [
            f"(?P<{value}>{_KIND_REGEX[kind]})" if kind != "lit" else re.escape(value)
            for kind, value in segments
        ]
        object.__setattr__(self, "_regex", re.compile(r"\.".join(parts) + r"\Z"))
        for name, check in (("permission", self.permission), ("snapshot", self.snapshot)):
            if check is not None and not callable(check):
                raise TopicDefinitionError(
                    f"Topic({self.pattern!r}): {name}={check!r} is not callable"
                )
        object.__setattr__(self, "pushes", _push_models(self.pattern, self.pushes))
        if self.presence_info is not None and not (self.presence and callable(self.presence_info)):
            raise TopicDefinitionError(
                f"Topic({self.pattern!r}): presence_info= must be a callable (user) -> dict, "
                "and needs presence=True"
            )
        if not isinstance(self.queue, str) or not self.queue:
            raise TopicDefinitionError(
                f"Topic({self.pattern!r}): queue={self.queue!r} must be an RQ queue name"
            )
        (self.registry if self.registry is not None else topics).add(self)

    def match(self, topic: str) -> TopicMatch | None:
        found = self._regex.match(topic)
        if found is None:
            return None
        params: dict[str, Any] = {}
        for kind, value in self._segments:
            if kind == "int":
                params[value] = int(found.group(value))
            elif kind == "str":
                params[value] = found.group(value)
        return TopicMatch(topic, params, self)

    def name(self, **params: Any) -> str:
        """The topic name for these placeholder values: ``room.name(name="lobby")``."""
        out = []
        for kind, value in self._segments:
            out.append(value if kind == "lit" else str(params[value]))
        name = ".".join(out)
        if self.match(name) is None:
            raise ValueError(f"{params!r} do not make a name of {self.pattern!r}")
        return name

    def clashes_with(self, other: Topic) -> bool:
        """True when some name matches both patterns (checked segment by segment)."""
        if len(self._segments) != len(other._segments):
            return False
        return all(_overlap(a, b) for a, b in zip(self._segments, other._segments, strict=True))

    @property
    def checks_in_actor(self) -> bool:
        """Both checks can run in the actor: async, absent, or marked database-free."""
        return all(runs_in_actor(check) for check in (self.permission, self.snapshot))


def _push_models(pattern: str, pushes: Any) -> tuple[type[BaseModel], ...]:
    models = tuple(pushes) if not isinstance(pushes, type) else (pushes,)
    for model in models:
        try:
            wire_name(model)
        except TypeError:
            raise TopicDefinitionError(
                f"Topic({pattern!r}): pushes=[...] holds {model!r}, which is not a @message model"
            ) from None
    return models


def runs_in_actor(check: Callable[..., Any] | None) -> bool:
    """The check may run in the actor: absent, async, or marked `database_free`."""
    return check is None or inspect.iscoroutinefunction(check) or check in _DB_FREE


def parse_pattern(pattern: Any) -> tuple[tuple[str, str], ...]:
    """``"room.{name}"`` -> ``(("lit", "room"), ("str", "name"))``."""
    if not isinstance(pattern, str) or not pattern:
        raise TopicDefinitionError(f"Topic({pattern!r}): a pattern is a non-empty string")
    segments: list[tuple[str, str]] = []
    seen: set[str] = set()
    for segment in pattern.split("."):
        placeholder = _PLACEHOLDER.match(segment)
        if placeholder is not None:
            name, kind = placeholder.group(1), placeholder.group(2) or "str"
            if name in seen:
                raise TopicDefinitionError(f"Topic({pattern!r}): placeholder {name!r} twice")
            seen.add(name)
            segments.append((kind, name))
        elif _SEGMENT.match(segment):
            segments.append(("lit", segment))
        else:
            raise TopicDefinitionError(
                f"Topic({pattern!r}): segment {segment!r} is neither literal text of "
                "A-Za-z0-9_:- nor a whole-segment placeholder like {name} or {pk:int}"
            )
    return tuple(segments)


def _overlap(a: tuple[str, str], b: tuple[str, str]) -> bool:
    (ka, va), (kb, vb) = a, b
    if ka == "lit" and kb == "lit":
        return va == vb
    if ka == "lit" or kb == "lit":
        literal, kind = (va, kb) if ka == "lit" else (vb, ka)
        return re.fullmatch(_KIND_REGEX[kind], literal) is not None
    return True  # two placeholders: digits match both kinds


class TopicRegistry:
    """The declared topics. Adding one whose pattern clashes with another is an error."""

    __slots__ = ("_topics",)

    def __init__(self) -> None:
        self._topics: list[Topic] = []

    def add(self, topic: Topic) -> None:
        for existing in self._topics:
            if existing.pattern == topic.pattern and _same_origin(existing, topic):
                self._topics.remove(existing)  # a module imported twice re-declares
                break
            if existing.clashes_with(topic):
                raise TopicDefinitionError(
                    f"Topic({topic.pattern!r}) clashes with Topic({existing.pattern!r}): "
                    "some topic name would match both; make the patterns distinct"
                )
        self._topics.append(topic)

    def discard(self, topic: Topic) -> None:
        """Forget a declaration (connections still in it leave at their next re-check)."""
        if topic in self._topics:
            self._topics.remove(topic)

    def match(self, topic: str) -> TopicMatch | None:
        """The declared topic `topic` belongs to, with its parameters; None if none."""
        for declared in self._topics:
            found = declared.match(topic)
            if found is not None:
                return found
        return None

    def __iter__(self) -> Iterator[Topic]:
        return iter(list(self._topics))

    def __len__(self) -> int:
        return len(self._topics)


def _same_origin(a: Topic, b: Topic) -> bool:
    def origin(check: Any) -> Any:
        return getattr(check, "__qualname__", None), getattr(check, "__module__", None)

    return origin(a.permission) == origin(b.permission) and origin(a.snapshot) == origin(b.snapshot)


#: Every `Topic` declared in the process (unless given another `registry=`).
topics = TopicRegistry()


def own_user(match: TopicMatch, ctx: Any) -> bool:
    """The user topic ``user.<pk>`` is only for that user."""
    user = ctx.user
    if user is None or not user.is_authenticated:
        return False
    return str(user.pk) == str(match.params["pk"])


for _check in (authenticated, staff, superuser, own_user):
    database_free(_check)

#: Every authenticated connection is in its user's topic, joined on connect.
user_topic = Topic("user.{pk}", permission=own_user)


def user_topic_name(user: Any) -> str:
    return f"user.{user.pk}"
