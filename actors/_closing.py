"""Close codes the server uses, and the push that announces a close (a leaf module).

Daphne (autobahn) lets applications close only with 1000 or 3000-4999, so the codes of
the server's own reasons are private-use mirrors of the standard ones.

    1000  normal            the client asked (`connection.close`), or the server is done
    4001  logged out        Django's `user_logged_out` for the socket's user
    4002  session ended     the user's session no longer holds: password changed,
                            deactivated or deleted, session flushed or expired
    4012  restart           this server is going away; reconnect (mirrors 1012)

Every close with a reason is preceded by a ``connection.closing`` push carrying the
code and a reason word, so a client can tell the user why.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from envelope import message

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_LOGGED_OUT = 4001  # the user logged out (a `connection.closing` push comes first)
CLOSE_SESSION_ENDED = 4002  # the user's session no longer holds (reason: which way)
# The server is restarting; reconnect. Not 1012: daphne (autobahn) lets applications
# close with 1000 or 3000-4999 only, so the private-use mirror of 1012 is used.
CLOSE_RESTART = 4012


@message("connection.closing")
class Closing(BaseModel):
    """Pushed right before the server closes the socket with `code`."""

    code: int
    reason: str


async def close_with_reason(actor: Any, code: int, reason: str) -> None:
    """Push ``connection.closing`` (`code`, `reason`) to the actor's socket, then close it."""
    await actor.send_model(Closing(code=code, reason=reason))
    await actor.close(code)
