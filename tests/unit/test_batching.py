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
