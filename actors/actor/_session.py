"""A socket follows its user's session.

A connection holds its user only as long as Django would on an HTTP request
(`django.contrib.auth.get_user`): when the user's password changes (the session's auth
hash no longer matches), the user is deactivated or deleted (the authentication backend
no longer returns them), or the session is flushed or expires, the socket is closed
with `CLOSE_SESSION_ENDED` (4002) after a ``connection.closing`` push whose `reason` is
"session_invalid" or "user_inactive".

When it is noticed:
- Soon, on every server: saving a user's `password` or `is_active`, or deleting the
  user (`post_save` / `post_delete` of the user model), sends ``envelope.verify`` to the
  user's topic ``user.<pk>`` once the transaction commits. Each of the user's
  connections re-checks `SIGNAL_GRACE` seconds later (so that a password change's own
  session has been updated by `update_session_auth_hash` and saved with the response),
  and in any case before its next frame.
- At the latest before the first frame that arrives `ENVELOPE_SESSION_CHECK_INTERVAL`
  seconds (default 60) after the last check: this catches what no signal reports
  (`QuerySet.update()`, raw SQL, another program writing the database).

A check reloads the session from its store and the user from the database, in a
worker thread, and runs in the mailbox before the frame behind it: per frame, the
cost is one comparison of the frame's arrival time with the next check's.

Deferred jobs load their user with `load_user`, which answers an `AnonymousUser` for a
user who is inactive or gone: the job is refused with `unauthenticated`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from importlib import import_module
from typing import Any

import anyio.to_thread
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare

from actors._closing import CLOSE_SESSION_ENDED, close_with_reason
from actors._database import database_work
from actors._users import load_user
from actors.actor._mailbox import MailboxClosed, MailboxFull
from actors.actor._state import ActorState
from actors.publishing import send_sync, user_topic_name
from actors.tracing import logger

#: The channel-layer message that asks a user's connections to re-check their session.
VERIFY = "envelope.verify"
#: Seconds between a signal and the re-check it asks for (see the module docstring).
SIGNAL_GRACE = 1.0
#: The `_session_due` of a connection whose session is never checked (anonymous).
NEVER_DUE = math.inf
_monotonic = time.monotonic
#: Fields of the user model whose change can end a session.
WATCHED_FIELDS = frozenset({"password", "is_active"})


def session_verdict(session: Any, user: Any) -> str | None:
    """None while `user`'s `session` holds, as Django's `get_user` would decide on an HTTP
    request; else the reason it ended. Reads the session as stored now, and changes
    nothing (Django flushes a stale session on the user's next HTTP request)."""
    key = getattr(session, "session_key", None) if session is not None else None
    if key is None:
        # No session (another kind of authentication): the user must still be active.
        return None if load_user(user.pk).is_authenticated else "user_inactive"
    stored = import_module(settings.SESSION_ENGINE).SessionStore(key)
    try:
        user_id = get_user_model()._meta.pk.to_python(stored[SESSION_KEY])
        backend_path = stored[BACKEND_SESSION_KEY]
    except KeyError:
        return "session_invalid"  # flushed (logged out elsewhere) or expired
    if user_id != user.pk or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return "session_invalid"
    fresh = load_backend(backend_path).get_user(user_id)
    if fresh is None:
        return "user_inactive"  # deleted, or the backend refuses them (is_active)
    if hasattr(fresh, "get_session_auth_hash"):
        session_hash = stored.get(HASH_SESSION_KEY)
        if not session_hash or not _hash_matches(session_hash, fresh):
            return "session_invalid"  # the password changed
    return None


def _hash_matches(session_hash: str, user: Any) -> bool:
    if constant_time_compare(session_hash, user.get_session_auth_hash()):
        return True
    # Sessions signed with a key of SECRET_KEY_FALLBACKS still hold, as in Django.
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    return fallbacks is not None and any(
        constant_time_compare(session_hash, fallback) for fallback in fallbacks()
    )


def _verdict_in_thread(session: Any, user: Any) -> str | None:
    with database_work():
        return session_verdict(session, user)


class CheckSession:
    """A mailbox item: re-check the connection's session before what is queued behind it;
    close the socket with 4002 when it no longer holds."""

    __slots__ = ()

    async def __call__(self, actor: Any) -> None:
        if actor.closed or not actor.authenticated:
            return
        try:
            reason = await anyio.to_thread.run_sync(
                _verdict_in_thread, actor.scope.get("session"), actor.user
            )
        except Exception as exc:
            # The database is away: keep the socket, and try again before the next frame.
            actor.log.warning("connection.session_check_failed", exc_info=exc)
            actor.check_session_soon()
            return
        if reason is None:
            actor.session_checked()
            return
        actor.log.info("connection.session_ended", reason=reason)
        await close_with_reason(actor, CLOSE_SESSION_ENDED, reason)
        actor.mailbox.close_reader()  # what is queued behind the check is not handled


CHECK_SESSION = CheckSession()


# -- the signals that say a user changed ------------------------------------------------


def verify_user_connections(user: Any) -> None:
    """From sync code: have every connection of `user`, on every server, re-check its
    session once the transaction commits."""
    target = user_topic_name(user)

    def send() -> None:
        try:
            send_sync([("topic", target, {"type": VERIFY})])
        except Exception as exc:
            # Saving the user must not fail because the channel layer is down; the
            # connections still re-check on their interval.
            logger.error("session.verify_failed", user=user.pk, exc_info=exc)

    if getattr(settings, "CHANNEL_LAYERS", None):
        transaction.on_commit(send, robust=True)


def _on_user_saved(
    sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    update_fields = kwargs.get("update_fields")
    if created or raw or (update_fields is not None and not WATCHED_FIELDS & set(update_fields)):
        return  # e.g. `update_last_login` saves only last_login, at every login
    verify_user_connections(instance)


def _on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    verify_user_connections(instance)


def connect_signals() -> None:
    """Connect the receivers above to the user model (from `ActorsConfig.ready()`: the
    settings must be configured)."""
    user_model = settings.AUTH_USER_MODEL
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid="envelope.user-saved")
    post_delete.connect(_on_user_deleted, sender=user_model, dispatch_uid="envelope.user-deleted")


class SessionClock(ActorState):
    """When `ConnectionActor` (its state: `ActorState`) next checks its user's
    session: a time compared with each frame's arrival (see the module's doc)."""

    __slots__ = ()

    start_soon: Callable[..., None]
    post: Callable[[Any], Awaitable[None]]

    def _check_session_first(self) -> None:
        """Queue a session check ahead of the frame about to be posted."""
        self._session_due = NEVER_DUE
        try:
            self.mailbox.post_nowait(CHECK_SESSION)
        except MailboxFull:
            self._session_due = 0.0  # the frame is refused too; check before the next one
        except MailboxClosed:
            pass

    def check_session_soon(self) -> None:
        """Check the user's session before the next frame."""
        if self.authenticated:
            self._session_due = 0.0

    def session_changed(self) -> None:
        """A signal said the user changed: check before the next frame, and in any case
        `SIGNAL_GRACE` seconds from now."""
        if not self.authenticated or self._closed:
            return
        self._session_due = 0.0
        self.start_soon(self._check_session_later)

    async def _check_session_later(self) -> None:
        await anyio.sleep(SIGNAL_GRACE)
        if self._session_due == 0.0:  # no frame has asked for the check meanwhile
            self._session_due = NEVER_DUE
            await self.post(CHECK_SESSION)

    def session_checked(self) -> None:
        """The session holds: the next check is due after the interval."""
        interval = self._session_interval
        self._session_due = _monotonic() + interval if interval is not None else NEVER_DUE
