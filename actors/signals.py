"""Signals: async ones fired by the consumer, sync ones fired by the connection jobs.

    from actors.signals import consumer_connected

    @receiver(consumer_connected)            # async_signals.receiver
    async def greet(sender, consumer, user, address, **kwargs): ...

- `consumer_connected(sender, consumer, user, address)`: the socket was accepted.
- `consumer_closed(sender, consumer, user, address, code)`: the socket closed, with the
  websocket close code (None when the client went without one).
- `connection_created(sender, connection)`: a `Connection` row was recorded (on a worker).
- `connection_closed(sender, connection)`: a `Connection` row was marked offline (on a worker).

The async signals are `async_signals.Signal`s, sent with `send_robust` so that a failing
receiver is logged and never breaks the connection. The sync ones are Django signals.
"""

from __future__ import annotations

import django.dispatch
from async_signals import Signal

consumer_connected = Signal()
consumer_closed = Signal()
connection_created = django.dispatch.Signal()
connection_closed = django.dispatch.Signal()

__all__ = ["connection_closed", "connection_created", "consumer_closed", "consumer_connected"]
