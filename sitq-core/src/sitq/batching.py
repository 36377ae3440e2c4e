"""Group commit: callers that write while a write is in flight share the next one.

One producer pays one commit per call, as it would anyway; a hundred concurrent producers (or a worker
finishing many tasks at once) pay one commit per round, and each caller still returns only once its own
item is durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """A writer task takes the items, one loop turn after the first arrives, so that callers woken
    together (a worker's tasks finishing at once, producers whose last write ended) share its write.

    With `immediate`, a caller that finds no write under way, while the last write carried a single item,
    writes its item itself, at once: a lone caller (one producer awaiting each enqueue) then costs no
    task and no extra loop turns, and those who arrive meanwhile still share the next write. Once writes
    carry several items, callers are not alone: they gather again, so that a burst still costs one write
    per round rather than a lone write and then one for the rest."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], Awaitable[None]],
        max_batch: int = 1000,
        *,
        immediate: bool = False,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._immediate = immediate
        self._alone = True  # whether the last write carried a single item
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        # The write under way: a writer task, or a future that an immediate write sets when it ends.
        self._writer: asyncio.Future[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once `item` is written; raise what the write raised. A cancelled caller's item is
        still written, since it may already be on its way; except that of a caller cancelled while it
        writes immediately, which is written or not, as far as the write had got."""
        if self._immediate and self._alone and self._writer is None:
            await self._write_now(item)
            return
        future = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        await future

    @property
    def busy(self) -> bool:
        """Whether a write is under way or about to start."""
        return self._writer is not None

    async def flush(self) -> None:
        """Wait until everything submitted so far is written."""
        while (writer := self._writer) is not None:
            await asyncio.shield(writer)

    async def _write_now(self, item: T) -> None:
        self._writer = written = asyncio.get_running_loop().create_future()
        try:
            await self._write([item])
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
                    await self._write([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._writer = None
