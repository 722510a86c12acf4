"""`presence.list`: who is in a presence topic, for its subscribers."""

from __future__ import annotations

from actors.presence._members import node_for
from actors.presence._messages import PresenceList, PresenceState, PresenceUser
from actors.publishing import topics
from actors.request import RequestContext
from envelope import Forbidden, NotFound, TopicsUnavailable
from handlers import Router

router = Router("presence")


@router.handler(errors=[NotFound, Forbidden, TopicsUnavailable])
async def list_presence(msg: PresenceList, ctx: RequestContext) -> PresenceState:
    """The users in `msg.topic` with their connections, on every server (eventually)."""
    match = topics.match(msg.topic)
    if match is None or not match.spec.presence:
        raise NotFound("There is no presence in this topic.")
    actor = ctx.actor
    if msg.topic not in actor.topics:
        raise Forbidden("Subscribe to the topic to see who is in it.")
    version, users = await node_for(actor.layer).store.read(msg.topic)
    return PresenceState(
        topic=msg.topic,
        version=version,
        users=[
            PresenceUser(user=user, connections=n, info=info) for user, n, info in sorted(users)
        ],
    )
