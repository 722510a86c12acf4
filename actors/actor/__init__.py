"""The actor: one per connection, its bounded mailbox processed serially, and the task
group its concurrent work runs in."""

from actors.actor._actor import ActorStatistics, ConnectionActor
from actors.actor._flag import Flag
from actors.actor._mailbox import (
    CloseConnection,
    Deliver,
    Mailbox,
    MailboxClosed,
    MailboxFull,
    MailboxStatistics,
    Settled,
)
from actors.actor._outbound import find_transport
from actors.actor._session import connect_signals

__all__ = [
    "ActorStatistics",
    "CloseConnection",
    "ConnectionActor",
    "Deliver",
    "Flag",
    "Mailbox",
    "MailboxClosed",
    "MailboxFull",
    "MailboxStatistics",
    "Settled",
    "connect_signals",
    "find_transport",
]
