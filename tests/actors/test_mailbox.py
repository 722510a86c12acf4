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


async def test_a_waiting_post_gets_room_in_order_and_is_refused_once_closed() -> None:
    box = Mailbox(1)
    box.post_nowait("a")
    order: list[str] = []

    async def poster(item: str) -> None:
        try:
            await box.post(item)
            order.append(item)
        except MailboxClosed:
            order.append(f"refused {item}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(poster, "b")
        tg.start_soon(poster, "c")
        await anyio.sleep(0.01)
        assert box.receive_nowait() == "a"  # room for one: "b" gets it
        await anyio.sleep(0.01)
        assert order == ["b"]
        box.close()
    assert order == ["b", "refused c"]
    assert [item async for item in box] == ["b"]


async def test_receive_waits_for_a_post_and_ends_when_closed() -> None:
    box = Mailbox(4)
    got: list[str] = []

    async def reader() -> None:
        async for item in box:
            got.append(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.01)
        box.post_nowait("x")
        await anyio.sleep(0.01)
        assert got == ["x"]
        box.close()
    assert got == ["x"]
    with pytest.raises(anyio.EndOfStream):
        box.receive_nowait()


async def test_a_cancelled_reader_leaves_the_mailbox_usable() -> None:
    box = Mailbox(2)
    with anyio.move_on_after(0.01):
        await box.receive()
    box.post_nowait("y")
    assert await box.receive() == "y"


async def test_an_item_handed_to_a_waiting_reader_takes_no_place() -> None:
    box = Mailbox(1)
    got: list[str] = []

    async def reader() -> None:
        got.append(await box.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.01)
        box.post_nowait("to the reader")
        box.post_nowait("queued")  # the one place is still free
        with pytest.raises(MailboxFull):
            box.post_nowait("refused")
    assert got == ["to the reader"]
    assert box.receive_nowait() == "queued"
