"""Limits per key in a claim (`sitq.limiting`), inside the claim's write transaction.

A claim reads each key's first due tasks, how many of its tasks run and its remembered starts; core's
`admit` says which may start. SQLite has one writer at a time, and a claim holds the write lock from
its first read (`BEGIN IMMEDIATE`), so the counts cannot change before the claim's writes: no two
claimers can both take a key's last slot.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sitq.limiting import Candidate, Start, admit, has_room, next_start
from sitq_sqlite import queries
from sitq_sqlite.rows import utc_time


def limited_candidates(
    db: sqlite3.Connection, now: datetime, limit: int, queues: str
) -> list[Candidate[int]]:
    """The tasks with a limit key that a claim of at most `limit` tasks of `queues` (a JSON array) may
    start at `now`, in claim order; their seqs are the candidates' refs.

    Each key's first task is judged first: a key held back reads one task, and only when some key may
    start one are the keys' first `limit` tasks read."""
    params = {"now": now.timestamp(), "limit": 1, "queues": queues}
    heads = [_candidate(row) for row in db.execute(queries.LIMITED_CANDIDATES, params)]
    if not heads:
        return []
    db.execute(queries.FORGET_STARTS, params)
    running, starts = _running(db, now.timestamp()), _starts(db)
    if not admit(heads, running=running, starts=starts, now=now, limit=1) or limit == 1:
        return admit(heads, running=running, starts=starts, now=now, limit=limit)
    found = [_candidate(row) for row in db.execute(queries.LIMITED_CANDIDATES, {**params, "limit": limit})]
    return admit(found, running=running, starts=starts, now=now, limit=limit)


def limited_task(db: sqlite3.Connection, task_id: str) -> Candidate[int] | None:
    """A ready task with a limit key, as `claim_task` judges it; None for any other."""
    row = db.execute(queries.LIMITED_TASK, {"task_id": task_id}).fetchone()
    return None if row is None else _candidate(row)


def has_room_now(db: sqlite3.Connection, candidate: Candidate[int], now: datetime) -> bool:
    """Whether the task's own limits let it start at `now` (for `claim_task`, which ignores order)."""
    db.execute(queries.FORGET_STARTS, {"now": now.timestamp()})
    running = _running(db, now.timestamp()).get(candidate.key, 0)
    return has_room(candidate, running, _starts(db).get(candidate.key, []), now)


def remember_starts(db: sqlite3.Connection, started: Sequence[Candidate[int]], now: datetime) -> None:
    """Log the starts of the rate-limited tasks just claimed, each until its period has passed."""
    db.executemany(
        queries.ADD_START,
        [
            (candidate.key, now.timestamp(), (now + timedelta(seconds=candidate.rate_period)).timestamp())
            for candidate in started
            if candidate.rate_period is not None
        ],
    )


def next_due(db: sqlite3.Connection, queues: str) -> datetime | None:
    """When the first waiting task of a key with room could start (`sitq.limiting.next_start`), of the
    earliest ready task of each key; None if none can before a task of its key ends."""
    firsts = [(_candidate(row), row[3]) for row in db.execute(queries.LIMITED_FIRST, {"queues": queues})]
    if not firsts:
        return None
    # Every running task counts, expired lease or not: an expiring lease wakes a worker anyway.
    running, starts = _running(db, float("-inf")), _starts(db)
    times = [
        next_start(candidate, utc_time(eta), running.get(candidate.key, 0), starts.get(candidate.key, []))
        for candidate, eta in firsts
    ]
    return min((time for time in times if time is not None), default=None)


def _candidate(row: Any) -> Candidate[int]:
    seq, key, priority, eta, concurrency_limit, rate_count, rate_period = row
    return Candidate(seq, key, (-priority, eta, seq), concurrency_limit, rate_count, rate_period)


def _running(db: sqlite3.Connection, now: float) -> dict[str, int]:
    return dict(db.execute(queries.RUNNING_BY_KEY, {"now": now}).fetchall())


def _starts(db: sqlite3.Connection) -> dict[str, list[Start]]:
    starts: dict[str, list[Start]] = {}
    for key, started_at, until in db.execute(queries.STARTS):
        starts.setdefault(key, []).append(Start(utc_time(started_at), utc_time(until)))
    return starts
