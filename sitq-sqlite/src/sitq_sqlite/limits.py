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
from typing import cast

from sitq.limiting import Candidate, Start, admit, has_room, next_start
from sitq_sqlite import queries
from sitq_sqlite.rows import utc_time


def limited_candidates(
    db: sqlite3.Connection, now: datetime, limit: int, queues: str
) -> list[Candidate[int]]:
    """The tasks with a limit key that a claim of at most `limit` tasks of `queues` (a JSON array) may
    start at `now`, in claim order; their seqs are the candidates' refs.

    Each key's first task is judged first: a key held back reads one task, and only when some key may
    start one are the keys' first `limit` tasks read. Starts are read only for rate-limited tasks."""
    params = {"now": now.timestamp(), "limit": 1, "queues": queues}
    heads, running = _candidates(db, queries.LIMITED_CANDIDATES, params)
    if not heads:
        return []
    starts = _starts(db, now) if any(head.rate_count is not None for head in heads) else {}
    if limit == 1 or not admit(heads, running=running, starts=starts, now=now, limit=1):
        return admit(heads, running=running, starts=starts, now=now, limit=limit)
    found, running = _candidates(db, queries.LIMITED_CANDIDATES, {**params, "limit": limit})
    if any(candidate.rate_count is not None for candidate in found):
        starts = _starts(db, now)
    return admit(found, running=running, starts=starts, now=now, limit=limit)


def limited_task(db: sqlite3.Connection, task_id: str, now: datetime) -> tuple[Candidate[int], int] | None:
    """A ready task with a limit key, as `claim_task` judges it, with how many tasks of its key run;
    None for any other task."""
    found, running = _candidates(db, queries.LIMITED_TASK, {"task_id": task_id, "now": now.timestamp()})
    return (found[0], running[found[0].key]) if found else None


def has_room_now(db: sqlite3.Connection, candidate: Candidate[int], running: int, now: datetime) -> bool:
    """Whether the task's own limits let it start at `now` (for `claim_task`, which ignores order)."""
    return has_room(candidate, running, _starts(db, now).get(candidate.key, []), now)


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
    earliest ready task of each key; None if none can before a task of its key ends. Every running task
    counts, expired lease or not: an expiring lease wakes a worker anyway."""
    firsts, running = _candidates(db, queries.LIMITED_FIRST, {"queues": queues, "now": _LONG_AGO})
    if not firsts:
        return None
    starts = _remembered(db)
    times = [
        # sort is (-priority, eta, seq), the eta in REAL seconds as stored
        next_start(
            candidate,
            utc_time(cast(float, candidate.sort[1])),
            running[candidate.key],
            starts.get(candidate.key, []),
        )
        for candidate in firsts
    ]
    return min((time for time in times if time is not None), default=None)


_LONG_AGO = -1e18
"""A time before every lease, in seconds since the epoch."""


def _candidates(
    db: sqlite3.Connection, sql: str, params: dict[str, object]
) -> tuple[list[Candidate[int]], dict[str, int]]:
    """The candidates a statement of `queries._CANDIDATE_COLUMNS` found, and their keys' running tasks."""
    candidates, running = [], {}
    for seq, key, priority, eta, concurrency_limit, rate_count, rate_period, in_progress in db.execute(
        sql, params
    ):
        candidates.append(
            Candidate(seq, key, (-priority, eta, seq), concurrency_limit, rate_count, rate_period)
        )
        running[key] = in_progress
    return candidates, running


def _starts(db: sqlite3.Connection, now: datetime) -> dict[str, list[Start]]:
    """The remembered starts, by key, once those past their period are forgotten."""
    db.execute(queries.FORGET_STARTS, {"now": now.timestamp()})
    return _remembered(db)


def _remembered(db: sqlite3.Connection) -> dict[str, list[Start]]:
    starts: dict[str, list[Start]] = {}
    for key, started_at, until in db.execute(queries.STARTS):
        starts.setdefault(key, []).append(Start(utc_time(started_at), utc_time(until)))
    return starts
