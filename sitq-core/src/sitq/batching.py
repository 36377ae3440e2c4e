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
    def __init__(self, write: Callable[[Sequence[T]], Awaitable[None]], max_batch: int = 1000) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once `item` is written; raise what the write raised. A cancelled caller's item is
        still written: it may already be on its way."""
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
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        try:
            # Let the callers already woken (tasks whose threads have just returned, say) join this write.
            await asyncio.sleep(0)
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
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
