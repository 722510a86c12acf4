"""Close codes and the `connection.closing` push that announces them (a leaf module).

| code | when |
|---|---|
| 1000 `CLOSE_NORMAL` | the client asked (`connection.close`) |
| 1001 `CLOSE_GOING_AWAY` | the connection is going away |
| 4001 `CLOSE_LOGGED_OUT` | the user logged out |
| 4002 `CLOSE_SESSION_ENDED` | the user's session no longer holds (see `actors.actor._session`) |
| 4008 `CLOSE_SLOW` | the client does not read what it is sent (see `actors.actor._outbound`) |
| 4012 `CLOSE_RESTART` | this server is restarting: reconnect |

daphne (autobahn) lets applications close with 1000 or 3000-4999 only, hence 4012 as
the private-use mirror of the standard 1012 "restart", and 4008 of 1008 "policy
violation". Every close with a reason is preceded by a ``connection.closing`` push
carrying the code and a reason word.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from envelope import message

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_RESTART = 4012
CLOSE_LOGGED_OUT = 4001  # the user logged out (a `connection.closing` push comes first)
CLOSE_SESSION_ENDED = 4002  # the user's session no longer holds (the reason says how)
CLOSE_SLOW = 4008  # the client does not read: over its outbound budget, or not draining


@message("connection.closing")
class Closing(BaseModel):
    """Pushed right before the server closes the socket with `code`."""

    code: int
    reason: str


async def close_with_reason(actor: Any, code: int, reason: str) -> None:
    """Push ``connection.closing`` (`code`, `reason`) to the actor's socket, then close it."""
    await actor.send_model(Closing(code=code, reason=reason))
    await actor.close(code)
