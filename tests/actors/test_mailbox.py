from __future__ import annotations

import anyio
import pytest

from actors import Mailbox, MailboxClosed, MailboxFull


async def test_post_nowait_refuses_when_full_and_counts_it() -> None:
    box = Mailbox(2)
    box.post_nowait("a")
    box.post_nowait("b")
    with pytest.raises(MailboxFull):
        box.post_nowait("c")
    stats = box.statistics()
    assert (stats.size, stats.queued, stats.posted, stats.rejected, stats.closed) == (
        2,
        2,
        2,
        1,
        False,
    )
    box.close()
    box.close_reader()


async def test_post_waits_for_room() -> None:
    box = Mailbox(1)
    box.post_nowait("a")
    received: list[str] = []

    async def reader() -> None:
        async for item in box:
            received.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await box.post("b")  # waits until the reader took "a"
        box.close()
    assert received == ["a", "b"]
    box.close_reader()


async def test_closed_mailbox_refuses_posts_but_delivers_what_was_queued() -> None:
    box = Mailbox(4)
    box.post_nowait("a")
    box.close()
    with pytest.raises(MailboxClosed):
        box.post_nowait("b")
    with pytest.raises(MailboxClosed):
        await box.post("c")
    assert [item async for item in box] == ["a"]
    assert box.statistics().closed
    box.close_reader()
