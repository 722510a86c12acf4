"""Topics (pub/sub) and pushes: the public API.

    from actors.topics import Topic, publish, publish_on_commit

    room = Topic("room.{name}", permission=is_member, snapshot=room_state)

    @handler
    async def send_chat(msg: ChatSend, ctx: Context) -> None:
        await ctx.publish(room.name(name=msg.room), ChatMessage(...))

    def close_poll(request, pk):                       # a view, a signal, a worker
        with transaction.atomic():
            ...
            publish_on_commit(f"poll.{pk}", PollClosed(pk=pk))

Clients send ``topic.subscribe`` / ``topic.leave`` / ``topic.list`` (handled by `router`,
which every consumer serves unless ``ENVELOPE_BUILTIN_ROUTERS = False``).
"""

from actors._closing import Closing
from actors.publishing import (
    BATCH_MIN,
    BATCH_TYPE,
    Topic,
    TopicDefinitionError,
    TopicMatch,
    TopicRegistry,
    database_free,
    group_for,
    leave_on_commit,
    publish,
    publish_on_commit,
    subscribe_on_commit,
    tell,
    tell_on_commit,
    topics,
    user_topic,
    user_topic_name,
)
from actors.topics._checks import CheckContext
from actors.topics._commands import TopicCommand
from actors.topics._logout import aclose_user_connections, close_user_connections
from actors.topics._recheck import arecheck_subscriptions, recheck_subscriptions
from actors.topics._subscriptions import (
    Left,
    Subscribed,
    Subscriptions,
    TooManyTopics,
    TopicLeave,
    TopicLeft,
    TopicList,
    TopicSubscribe,
    router,
)

__all__ = [
    "BATCH_MIN",
    "BATCH_TYPE",
    "CheckContext",
    "Closing",
    "Left",
    "Subscribed",
    "Subscriptions",
    "TooManyTopics",
    "Topic",
    "TopicCommand",
    "TopicDefinitionError",
    "TopicLeave",
    "TopicLeft",
    "TopicList",
    "TopicMatch",
    "TopicRegistry",
    "TopicSubscribe",
    "aclose_user_connections",
    "arecheck_subscriptions",
    "close_user_connections",
    "database_free",
    "group_for",
    "leave_on_commit",
    "publish",
    "publish_on_commit",
    "recheck_subscriptions",
    "router",
    "subscribe_on_commit",
    "tell",
    "tell_on_commit",
    "topics",
    "user_topic",
    "user_topic_name",
]
