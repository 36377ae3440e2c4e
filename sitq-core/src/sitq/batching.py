"""Group commit: callers that write while a write is in flight share the next one.

One producer pays one commit per call, as it would anyway; a hundred concurrent producers (or a worker
finishing many tasks at once) pay one commit per round, and each caller still returns only once its own
item is durable, with the write's answer for its own item (an enqueue's id of each task).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, cast, overload

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """A writer task takes the items, one loop turn after the first arrives, so that callers woken
    together (a worker's tasks finishing at once, producers whose last write ended) share its write.

    With `immediate`, a caller that finds no write under way, while the last write carried a single item,
    writes its item itself, at once: a lone caller (one producer awaiting each enqueue) then costs no
    task and no extra loop turns, and those who arrive meanwhile still share the next write. Once writes
    carry several items, callers are not alone: they gather again, so that a burst still costs one write
    per round rather than a lone write and then one for the rest.

    A write answers with one value per item, in order, which `submit` returns to that item's caller; a
    write that answers None (recording outcomes) gives every caller None."""

    @overload
    def __init__(
        self: GroupCommit[T, None],
        write: Callable[[Sequence[T]], Awaitable[None]],
        max_batch: int = ...,
        *,
        immediate: bool = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        max_batch: int = ...,
        *,
        immediate: bool = ...,
    ) -> None: ...

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[Sequence[R] | None]],
        max_batch: int = 1000,
        *,
        immediate: bool = False,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._immediate = immediate
        self._alone = True  # whether the last write carried a single item
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        # The write under way: a writer task, or a future that an immediate write sets when it ends.
        self._writer: asyncio.Future[None] | None = None

    async def submit(self, item: T) -> R:
        """Return the write's answer for `item` once it is written; raise what the write raised. A
        cancelled caller's item is still written, since it may already be on its way; except that of a
        caller cancelled while it writes immediately, which is written or not, as far as the write had
        got."""
        if self._immediate and self._alone and self._writer is None:
            return await self._write_now(item)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        return await future

    @property
    def busy(self) -> bool:
        """Whether a write is under way or about to start."""
        return self._writer is not None

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        while (writer := self._writer) is not None:
            await asyncio.shield(writer)

    async def _answers(self, items: Sequence[T]) -> Sequence[R]:
        """The write's answer for each item, None for each when it answers nothing."""
        answers = await self._write(items)
        if answers is None:
            # The overloads of __init__ tie a write that answers None to R = None.
            return cast(Sequence[R], [None] * len(items))
        return answers

    async def _write_now(self, item: T) -> R:
        self._writer = written = asyncio.get_running_loop().create_future()
        try:
            [answer] = await self._answers([item])
            return answer
        finally:
            # Hand the items that arrived meanwhile to a writer task before `flush` sees this write end.
            self._writer = asyncio.create_task(self._drain()) if self._pending else None
            written.set_result(None)

    async def _drain(self) -> None:
        try:
            # Let the callers already woken (tasks whose threads have just returned, say) join this write.
            await asyncio.sleep(0)
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                self._alone = len(batch) == 1
                try:
                    answers = await self._answers([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    # One answer per item: a writer that could answer otherwise checks its answers itself.
                    for (_, future), answer in zip(batch, answers, strict=False):
                        if not future.done():
                            future.set_result(answer)
        finally:
            self._writer = None
