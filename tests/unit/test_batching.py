"""Group commit: concurrent submitters share writes, and each learns its own write's fate."""

import asyncio
from collections.abc import Sequence

import pytest

from sitq.batching import GroupCommit


async def test_concurrent_submits_share_writes_and_all_return_once_written() -> None:
    writes: list[list[int]] = []

    async def write(items: Sequence[int]) -> None:
        await asyncio.sleep(0.01)
        writes.append(list(items))

    group = GroupCommit(write)
    await asyncio.gather(*(group.submit(i) for i in range(100)))
    assert sorted(item for batch in writes for item in batch) == list(range(100))
    assert len(writes) <= 2


async def test_a_failed_write_fails_every_submitter_in_it() -> None:
    async def write(items: Sequence[int]) -> None:
        raise OSError("disk full")

    group = GroupCommit(write)
    results = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert [type(result) for result in results] == [OSError, OSError]


async def test_a_cancelled_submitter_item_is_still_written_and_flush_waits_for_it() -> None:
    written: list[int] = []
    release = asyncio.Event()

    async def write(items: Sequence[int]) -> None:
        await release.wait()
        written.extend(items)

    group = GroupCommit(write)
    submitter = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    submitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submitter
    release.set()
    await group.flush()
    assert written == [1]


async def test_batches_are_capped() -> None:
    sizes: list[int] = []

    async def write(items: Sequence[int]) -> None:
        sizes.append(len(items))

    group = GroupCommit(write, max_batch=10)
    await asyncio.gather(*(group.submit(i) for i in range(25)))
    assert max(sizes) <= 10 and sum(sizes) == 25


async def test_an_immediate_lone_caller_writes_in_its_own_task() -> None:
    writers: list[tuple[asyncio.Task[object] | None, list[int]]] = []

    async def write(items: Sequence[int]) -> None:
        writers.append((asyncio.current_task(), list(items)))

    group = GroupCommit(write, immediate=True)
    await group.submit(1)
    await group.submit(2)
    assert writers == [(asyncio.current_task(), [1]), (asyncio.current_task(), [2])]
    assert not group.busy


async def test_callers_arriving_during_an_immediate_write_share_the_next_one() -> None:
    writes: list[list[int]] = []
    release = asyncio.Event()

    async def write(items: Sequence[int]) -> None:
        await release.wait()
        writes.append(list(items))

    group = GroupCommit(write, immediate=True)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)  # its write is under way
    others = [asyncio.create_task(group.submit(i)) for i in range(1, 11)]
    await asyncio.sleep(0)
    flushed = asyncio.create_task(group.flush())
    await asyncio.sleep(0)
    assert not flushed.done()
    release.set()
    await asyncio.gather(first, *others, flushed)
    assert writes == [[0], list(range(1, 11))]


async def test_immediate_producers_woken_by_one_write_gather_for_the_next() -> None:
    """Once writes carry several items, the first producer back does not write alone ahead of the rest:
    a round costs one write, not two."""
    sizes: list[int] = []

    async def write(items: Sequence[int]) -> None:
        await asyncio.sleep(0.001)
        sizes.append(len(items))

    group = GroupCommit(write, immediate=True)

    async def producer() -> None:
        for _ in range(5):
            await group.submit(0)

    await asyncio.gather(*(producer() for _ in range(20)))
    assert sum(sizes) == 100
    assert len(sizes) <= 7, sizes  # a lone write, then one per round; alternating would take ten


async def test_an_immediate_caller_cancelled_before_its_write_began_leaves_nothing_behind() -> None:
    written: list[int] = []
    storage = asyncio.Lock()  # as a backend's own lock, held by another of its users

    async def write(items: Sequence[int]) -> None:
        async with storage:
            written.extend(items)

    group = GroupCommit(write, immediate=True)
    async with storage:
        lone = asyncio.create_task(group.submit(1))
        await asyncio.sleep(0)  # writing immediately, waiting for the storage
        follower = asyncio.create_task(group.submit(2))
        await asyncio.sleep(0)
        lone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lone
    await follower  # handed to a writer task when the cancelled write ended
    await group.flush()
    assert written == [2]
    assert not group.busy


async def test_each_submitter_gets_the_writes_answer_for_its_own_item() -> None:
    async def write(items: Sequence[int]) -> list[str]:
        await asyncio.sleep(0)
        return [f"answer to {item}" for item in items]

    group = GroupCommit(write, immediate=True)
    answers = await asyncio.gather(*(group.submit(i) for i in range(50)))
    assert answers == [f"answer to {i}" for i in range(50)]
    assert await group.submit(7) == "answer to 7"
