"""`PresenceNode`: this server's part of presence — its members, the window that batches
their joins and leaves into one `presence.diff` per topic, and the heartbeat.

A connection joining or leaving changes only this node's memory and marks its user; once
per `window` the marked users of each topic are written to the store in one call, which
answers which of them joined (their first connection on any server) or left (their last),
and those go out as one diff to the topic. A user whose tabs come and go while another stays
changes nothing; one who comes and goes within one window cancels out. Nothing here waits
on Redis in a connection's path: a write that fails is kept and done again after the next
heartbeat that reaches Redis (with everything, when Redis lost this node's entries or
another server reaped them after this one was silent for the TTL).

Every heartbeat also reaps the servers that stopped beating and sends their users' leaves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from actors.presence._messages import PresenceDiff, PresenceJoin, PresenceLeave
from actors.presence._store import Entry, PresenceStore, Transition
from actors.tracing import logger
from envelope import TopicsUnavailable

Send = Callable[[str, BaseModel], Awaitable[None]]


@dataclass(slots=True)
class Member:
    """One user's connections to one topic on this node, and the info given for it."""

    info: dict[str, Any]
    connections: set[str] = field(default_factory=set)


class PresenceNode:
    """The presence of this process's connections (one per event loop; see `node_for`)."""

    def __init__(
        self, store: PresenceStore, *, window: float, heartbeat: float, send: Send
    ) -> None:
        self.store = store
        self.window = window
        self.heartbeat = heartbeat
        self.send = send
        self.local: dict[str, dict[str, Member]] = {}  # topic -> user -> member
        self.diffs_sent = 0
        self._marked: dict[str, set[str]] = {}  # topic -> users changed since the last write
        self._whole: set[str] = set()  # topics to write whole (after Redis lost them)
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._away = False
        self._known = False  # the store has heard of this node (so "unknown" means it lost it)

    # -- this node's members ---------------------------------------------------------------

    def has(self, topic: str, user: str) -> bool:
        return user in self.local.get(topic, {})

    def join(self, topic: str, user: str, address: str, info: dict[str, Any]) -> None:
        members = self.local.setdefault(topic, {})
        member = members.get(user)
        if member is None:
            member = members[user] = Member(info)
        member.connections.add(address)
        self._mark(topic, user)

    def leave(self, topic: str, user: str, address: str) -> None:
        members = self.local.get(topic)
        member = members.get(user) if members else None
        if member is None or address not in member.connections:
            return
        member.connections.discard(address)
        if not member.connections:
            del members[user]  # type: ignore[union-attr]
            if not members:
                del self.local[topic]
        self._mark(topic, user)

    def _mark(self, topic: str, user: str) -> None:
        self._marked.setdefault(topic, set()).add(user)
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.window, self._spawn, self.flush)

    def _spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(fn())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("presence.failed", exc_info=task.exception())

    # -- the window --------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write what changed since the last write, and send each topic's diff."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            marked, self._marked = self._marked, {}
            whole, self._whole = self._whole, set()
            again = False
            for topic in sorted(marked.keys() | whole):
                members = self.local.get(topic, {})
                users = members.keys() if topic in whole else marked.get(topic, set())
                entries = [_entry(user, members.get(user)) for user in sorted(users)]
                try:
                    synced = await self.store.sync(topic, entries, full=topic in whole)
                except TopicsUnavailable:
                    self._keep(topic, marked.get(topic, set()), topic in whole)
                    continue
                if synced.unknown and self._known:
                    again = True
                    self._whole.update(self.local)
                self._known = True
                await self._announce(topic, synced.transitions)
            if again:
                self._mark_again()

    def _keep(self, topic: str, users: set[str], whole: bool) -> None:
        """A write that failed: done again after the next heartbeat that reaches Redis."""
        self._marked.setdefault(topic, set()).update(users)
        if whole:
            self._whole.add(topic)
        if not self._away:
            self._away = True
            logger.warning("presence.unavailable", topic=topic)

    def _mark_again(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(0, self._spawn, self.flush)

    async def _announce(self, topic: str, transitions: list[Transition]) -> None:
        if not transitions:
            return
        members = self.local.get(topic, {})
        joins, leaves = [], []
        for joined, user, v in transitions:
            if joined:
                member = members.get(user)
                joins.append(PresenceJoin(user=user, info=member.info if member else {}, v=v))
            else:
                leaves.append(PresenceLeave(user=user, v=v))
        diff = PresenceDiff(topic=topic, joins=joins, leaves=leaves)
        try:
            await self.send(topic, diff)
        except TopicsUnavailable:
            # Members who miss a diff catch up with `presence.list` (see the docs).
            logger.warning("presence.diff_lost", topic=topic, joins=len(joins), leaves=len(leaves))
            return
        self.diffs_sent += 1

    # -- the heartbeat -------------------------------------------------------------------------

    def start(self) -> None:
        """Beat now and every `heartbeat` seconds, until `close()`."""
        self._spawn(self._beat_forever)

    async def _beat_forever(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:  # a bug here must not end the heartbeat: log it, beat on
                logger.exception("presence.beat_failed")
            await asyncio.sleep(self.heartbeat)

    async def beat(self) -> None:
        """Tell the store this node lives; write what waits; reap the nodes that died."""
        try:
            unknown = await self.store.beat(list(self.local))
        except TopicsUnavailable:
            if not self._away:
                self._away = True
                logger.warning("presence.unavailable")
            return
        if self._away:
            self._away = False
            unknown = True  # writes may have been lost before they failed: write everything
            logger.info("presence.recovered")
        if unknown and self._known:
            self._whole.update(self.local)
        self._known = True
        if self._marked or self._whole:
            await self.flush()
        try:
            reaped = await self.store.reap()
        except TopicsUnavailable:
            return
        by_topic: dict[str, list[Transition]] = {}
        for topic, transition in reaped:
            by_topic.setdefault(topic, []).append(transition)
        for topic, transitions in sorted(by_topic.items()):
            logger.info("presence.reaped", topic=topic, leaves=len(transitions))
            await self._announce(topic, transitions)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await self.store.close()


def _entry(user: str, member: Member | None) -> Entry:
    if member is None:
        return (user, 0, "")
    return (user, len(member.connections), json.dumps(member.info, separators=(",", ":")))
