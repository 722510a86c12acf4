"""Presence: who is in a topic declared with `Topic(..., presence=True)`.

    room = Topic("room.{name}", presence=True, presence_info=lambda user: {"name": user.username})

A subscriber asks `presence.list {topic}` (users with their connections and info) and is
pushed `presence.diff {topic, joins, leaves}` once per window when users come (their first
connection) or go (their last). Across servers through Redis, with a heartbeat: the users
of a server that dies leave after at most TTL + heartbeat + window. The actor calls
`joined` and `left`; `router` serves `presence.list` (a built-in router).
"""

from actors.presence._handlers import router
from actors.presence._members import (
    drained,
    joined,
    left,
    node_for,
    running_node,
    store_from_settings,
)
from actors.presence._messages import (
    PresenceDiff,
    PresenceJoin,
    PresenceLeave,
    PresenceList,
    PresenceState,
    PresenceUser,
)
from actors.presence._node import PresenceNode
from actors.presence._store import LocalPresence, PresenceStore, RedisPresence, Transition

__all__ = [
    "LocalPresence",
    "PresenceDiff",
    "PresenceJoin",
    "PresenceLeave",
    "PresenceList",
    "PresenceNode",
    "PresenceState",
    "PresenceStore",
    "PresenceUser",
    "RedisPresence",
    "Transition",
    "drained",
    "joined",
    "left",
    "node_for",
    "router",
    "running_node",
    "store_from_settings",
]
