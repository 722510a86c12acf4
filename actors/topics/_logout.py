"""Logging out closes the user's sockets, on every server.

Django's `user_logged_out` signal (sent by `logout()` and `alogout()`) pushes
``connection.closing`` (`code`, `reason`) to every connection in the user's topic
``user.<pk>``, then closes them with `CLOSE_LOGGED_OUT` (4001). The receiver is
connected when `actors` is in `INSTALLED_APPS` (its `ready()`) or `actors.topics`
is imported.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.contrib.auth.signals import user_logged_out

from actors._closing import CLOSE_LOGGED_OUT, Closing
from actors.publishing import close_group, publish, user_topic_name
from actors.tracing import logger


async def aclose_user_connections(
    user: Any, *, code: int = CLOSE_LOGGED_OUT, reason: str = "logged_out", layer: Any = None
) -> None:
    """Push ``connection.closing`` to every socket of `user`, then close them with `code`."""
    topic = user_topic_name(user)
    await publish(topic, Closing(code=code, reason=reason), layer=layer)
    await close_group(topic, code, layer=layer)


def close_user_connections(
    user: Any, *, code: int = CLOSE_LOGGED_OUT, reason: str = "logged_out"
) -> None:
    """From sync code: `aclose_user_connections`, now."""
    async_to_sync(aclose_user_connections)(user, code=code, reason=reason)


def _on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is None or not getattr(user, "is_authenticated", False):
        return
    try:
        close_user_connections(user)
    except Exception as exc:
        # Logging out must not fail because the channel layer is down; say so loudly.
        logger.error("logout.close_failed", user=user.pk, exc_info=exc)
    else:
        logger.info("logout.closed_connections", user=user.pk)


user_logged_out.connect(_on_logged_out, dispatch_uid="envelope-router.logout-closes-sockets")
