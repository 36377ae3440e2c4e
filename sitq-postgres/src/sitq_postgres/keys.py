"""Unique keys in PostgreSQL: storing a batch whose tasks may have them, leaving out those whose key a
stored task holds (`sitq.semantics.key_holders` decides which; `sitq.backend.Backend.enqueue` says what
the ids returned mean).

At READ COMMITTED a check followed by an insert is not atomic by itself: two transactions may both find a
key free. So the batch first takes a transaction-scoped advisory lock per key, and only then reads; a
second batch with one of those keys waits for the first to end, then sees its rows. A unique index could
not do this alone: whether a succeeded task still holds its key depends on the new task's `unique_for`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sitq.models import NewTask
from sitq.semantics import cached_since, key_holders, keyed
from sitq_postgres import queries
from sitq_postgres.dependencies import store_with_parents


def lock_ids(schema: str, keys: Sequence[str]) -> list[int]:
    """The advisory lock of each key of a schema, as a signed 64-bit number (the same in every process:
    a digest, not Python's salted `hash`), sorted and distinct, the order in which they are taken."""
    return sorted(
        {
            int.from_bytes(
                hashlib.blake2b(f"sitq unique key\0{schema}\0{key}".encode(), digest_size=8).digest(),
                "big",
                signed=True,
            )
            for key in keys
        }
    )


async def store_checked(
    connection: Any, sql: Callable[[str], str], channel: str, schema: str, tasks: Sequence[NewTask]
) -> list[str]:
    """Store a batch that may name parents or unique keys, in the caller's transaction, leaving out the
    tasks whose key another task holds; return the id each task goes by."""
    task_ids = [task.id for task in tasks]
    if keys := keyed(tasks):
        await connection.execute(queries.LOCK_UNIQUE_KEYS, lock_ids(schema, keys))
        stored = await connection.fetch(sql(queries.KEY_HOLDERS), keys, cached_since(tasks))
        task_ids = key_holders(tasks, [tuple(row) for row in stored])
        tasks = [task for task, task_id in zip(tasks, task_ids, strict=True) if task.id == task_id]
    await store_with_parents(connection, sql, channel, tasks)
    return task_ids
