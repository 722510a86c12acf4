"""The wire messages of presence: `presence.list` and its answer, the `presence.diff` push.

Every join and leave a topic's presence goes through takes the next number of the topic's
version (`v`). A client applies an entry only when its `v` is greater than the version of
the `presence.list` answer it holds and than the last `v` it applied for that user: diffs
sent by different servers may arrive in any order, and this makes them converge.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from actors.publishing import TOPIC_PATTERN
from envelope import message


@message("presence.list")
class PresenceList(BaseModel):
    """Who is in a topic declared with `presence=True` (for its subscribers)."""

    topic: str = Field(..., regex=TOPIC_PATTERN.pattern, max_length=100)


class PresenceUser(BaseModel):
    user: str  # the user's pk, as a string
    connections: int  # the user's connections subscribed to the topic, on every server
    info: dict[str, Any] = {}  # what the topic's `presence_info(user)` returned


class PresenceState(BaseModel):
    """The answer to `presence.list`: the users, sorted by `user`, at `version`."""

    topic: str
    version: int
    users: list[PresenceUser]


class PresenceJoin(BaseModel):
    user: str
    info: dict[str, Any] = {}
    v: int


class PresenceLeave(BaseModel):
    user: str
    v: int


@message("presence.diff")
class PresenceDiff(BaseModel):
    """Pushed to a presence topic's subscribers: the users who came (their first connection)
    and went (their last one), batched over `ENVELOPE_PRESENCE_WINDOW`."""

    topic: str
    joins: list[PresenceJoin] = []
    leaves: list[PresenceLeave] = []
