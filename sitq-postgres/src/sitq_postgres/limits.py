"""Limits per key in a claim (`sitq.limiting`), serialized per key across every claimer.

Claimers run concurrently, each in its own transaction, so a key's count read by one could be stale by
the time it claims. So a claim that may start tasks with a limit key takes, in a transaction, an advisory
lock on each such key first (trying, never waiting: a key another claimer holds is skipped this time),
and only then reads the key's running tasks and starts, in a later statement, whose snapshot therefore
sees every claim of the key committed before: no two claimers can both take a key's last slot. A first
read without locks (a snapshot that may be stale) decides whether any key may have room; when none may,
the claim is the plain one-statement claim, so held-back tasks cost one cheap read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sitq.limiting import Candidate, Start, admit, has_room, next_start
from sitq_postgres import queries

_LONG_AGO = datetime(1, 1, 1, tzinfo=UTC)
"""`next_due` counts every running task, expired lease or not: an expiring lease wakes a worker anyway."""

Sql = Callable[[str], str]
"""The backend's `_sql`: a statement with its schema filled in."""


@dataclass
class KeyState:
    """What a read of the limited tasks found: candidates in claim order, and each key's counts."""

    candidates: list[Candidate[int]] = field(default_factory=list)
    running: dict[str, int] = field(default_factory=dict)
    starts: dict[str, list[Start]] = field(default_factory=dict)

    def add(self, row: Any) -> Candidate[int]:
        seq, key, priority, eta, concurrency_limit, rate_count, rate_period, running, started, until = row
        candidate = Candidate(seq, key, (-priority, eta, seq), concurrency_limit, rate_count, rate_period)
        self.candidates.append(candidate)
        self.running[key] = running
        self.starts[key] = [Start(*pair) for pair in zip(started or (), until or (), strict=True)]
        return candidate

    def admit(self, now: datetime, limit: int) -> list[Candidate[int]]:
        return admit(self.candidates, running=self.running, starts=self.starts, now=now, limit=limit)

    def heads_admitted(self, now: datetime) -> list[Candidate[int]]:
        """Of a read of one task per key, those whose limits let them start."""
        return self.admit(now, len(self.candidates))


async def read(
    connection: Any, sql: Sql, now: datetime, limit: int, queues: list[str], keys: list[str] | None = None
) -> KeyState:
    """Each key's (of `keys`, or every key's) first due tasks of `queues`, with its counts at `now`."""
    state = KeyState()
    for row in await connection.fetch(sql(queries.LIMITED_CANDIDATES), now, limit, queues, keys):
        state.add(row)
    return state


async def claim(
    connection: Any,
    sql: Sql,
    lock_prefix: str,
    hopeful: Sequence[Candidate[int]],
    *,
    worker_id: str,
    now: datetime,
    expires: datetime,
    limit: int,
    queues: list[str],
) -> list[Any]:
    """In the caller's transaction: lock the keys of the `hopeful` candidates (those an unlocked read
    admitted) that no other claimer holds, admit again from fresh counts, and claim those admitted with
    the first tasks without a key, in claim order. Returns the claimed rows."""
    keys = list(dict.fromkeys(candidate.key for candidate in hopeful))
    locked = [row["key"] for row in await connection.fetch(sql(queries.LOCK_KEYS), lock_prefix, keys)]
    admitted = (await read(connection, sql, now, limit, queues, locked)).admit(now, limit) if locked else []
    one = len(queues) == 1
    free = await connection.fetch(
        sql(queries.CANDIDATES_ONE_QUEUE if one else queries.CANDIDATES_QUEUES),
        now,
        limit,
        queues[0] if one else queues,
    )
    chosen = sorted(
        [*((-row["priority"], row["eta"], row["seq"]) for row in free), *(c.sort for c in admitted)]
    )
    seqs = [sort[2] for sort in chosen[:limit]]
    rows = list(await connection.fetch(sql(queries.CLAIM_SEQS), worker_id, now, expires, seqs))
    claimed = {row["seq"] for row in rows}
    await remember_starts(connection, sql, [c for c in admitted if c.ref in claimed], now)
    return rows


async def room_for_task(connection: Any, sql: Sql, lock_prefix: str, task_id: str, now: datetime) -> bool:
    """For `claim_task`, in the caller's transaction: whether the task's own limits let it start now
    (True for a task without a limit key, or one not ready: the claim finds that), its key locked (and
    its start remembered) if so."""
    row = await connection.fetchrow(sql(queries.LIMITED_TASK), now, task_id)
    if row is None:
        return True
    await connection.execute(sql(queries.LOCK_KEY), lock_prefix, row["key"])
    row = await connection.fetchrow(sql(queries.LIMITED_TASK), now, task_id)  # counts after the lock
    if row is None:
        return True
    state = KeyState()
    candidate = state.add(row)
    if not has_room(candidate, state.running[candidate.key], state.starts[candidate.key], now):
        return False
    await remember_starts(connection, sql, [candidate], now)
    return True


async def remember_starts(
    connection: Any, sql: Sql, started: Sequence[Candidate[int]], now: datetime
) -> None:
    """Log the starts of the rate-limited tasks just claimed, each until its period has passed, and
    forget their keys' starts whose period has passed."""
    rated = [candidate for candidate in started if candidate.rate_period is not None]
    if rated:
        await connection.execute(
            sql(queries.ADD_STARTS),
            [candidate.key for candidate in rated],
            now,
            [now] * len(rated),
            [now + timedelta(seconds=candidate.rate_period or 0) for candidate in rated],
        )


async def next_due(connection: Any, sql: Sql, queues: list[str]) -> datetime | None:
    """When the first waiting task of a key with room could start (`sitq.limiting.next_start`), of the
    earliest ready task of each key; None if none can before a task of its key ends."""
    state = KeyState()
    firsts = [
        (state.add(row), row["eta"])
        for row in await connection.fetch(sql(queries.LIMITED_FIRST), _LONG_AGO, queues)
    ]
    times = [
        next_start(candidate, eta, state.running[candidate.key], state.starts[candidate.key])
        for candidate, eta in firsts
    ]
    return min((time for time in times if time is not None), default=None)
