"""Limits per key across every worker: what a rate limit is, and which held-back tasks a claim may start.

A task with a `concurrency_limit` or a `rate_limit` counts against its *limit key*: its `concurrency_key`,
or its task name when it has a limit but no key. At most `concurrency_limit` tasks of a key are in
progress at once (a task whose lease has expired no longer counts: its worker is presumed dead), and at
most `rate_limit.count` of them start (are claimed) in any window of `rate_limit.period` seconds, counted
in a sliding log of starts, so the limit holds in every window, not only in aligned ones.

Each task is judged by its own limits, against every task of its key: tasks that share a key should share
limits. The tasks of one key start in claim order (priority, then eta, then enqueue order): the first one
its limits hold back holds back the rest of its key too, so a later task never overtakes it.

Core decides here; a backend gathers the counts and the candidates (each key's first claimable tasks, in
claim order), calls `admit`, and claims what it returns, atomically with the counting (a SQL backend
serializes claims per key for that).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Generic, NamedTuple, TypeVar

from sitq.arguments import check_int, check_seconds, shown
from sitq.errors import ValidationError

_Ref = TypeVar("_Ref")

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FORM: Final = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*")
RATE_FORMS: Final = '"10/s", "100/m", "1000/h", "5/d" or "3/10s" (COUNT/[N]UNIT, UNIT one of s, m, h, d)'


@dataclass(frozen=True)
class RateLimit:
    """At most `count` tasks of a key start in any `period` seconds: ``RateLimit(100, 60)`` is "100/m"."""

    count: int
    period: float
    """Seconds."""

    def __post_init__(self) -> None:
        check_int(self.count, "a rate limit's count", low=1)
        object.__setattr__(self, "period", check_seconds(self.period, "a rate limit's period"))

    @classmethod
    def parse(cls, value: str | RateLimit) -> RateLimit:
        """A rate limit from its short form, such as ``"100/m"`` or ``"3/10s"`` (or a `RateLimit` as is)."""
        if isinstance(value, RateLimit):
            return value
        match = _FORM.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValidationError(
                f"rate_limit must be a sitq.RateLimit or a rate such as {RATE_FORMS}, not {shown(value)}"
            )
        count, multiple, unit = match.groups()
        return cls(int(count), float(multiple or 1) * _UNITS[unit])

    def __str__(self) -> str:
        for unit, seconds in _UNITS.items():
            if self.period == seconds:
                return f"{self.count}/{unit}"
        return f"{self.count}/{self.period:g}s"


class Candidate(NamedTuple, Generic[_Ref]):
    """A pending, due task with a limit key, as a backend hands it to `admit`: `ref` is whatever the
    backend addresses it by (a row number, an id); `sort` its place in claim order, smaller first."""

    ref: _Ref
    key: str
    sort: tuple[object, ...]
    concurrency_limit: int | None
    rate_count: int | None
    rate_period: float | None


class Start(NamedTuple):
    """A claim of a rate-limited task, remembered until `until` (its start plus its task's period)."""

    started_at: datetime
    until: datetime


def admit(
    candidates: Iterable[Candidate[_Ref]],
    *,
    running: Mapping[str, int],
    starts: Mapping[str, Sequence[Start]],
    now: datetime,
    limit: int,
) -> list[Candidate[_Ref]]:
    """The candidates a claim of at most `limit` tasks may start at `now`, in claim order.

    `candidates` are, for each key, its first pending due tasks in claim order (at least `limit` of
    them, or all); `running` how many tasks of each key are in progress with a lease not yet expired;
    `starts` each key's remembered starts. A key's tasks are taken in order while each one's own
    limits have room (counting the ones taken before it), and the first one held back stops its key.
    """
    by_key: dict[str, list[Candidate[_Ref]]] = {}
    for candidate in candidates:
        by_key.setdefault(candidate.key, []).append(candidate)
    admitted: list[Candidate[_Ref]] = []
    for key, queue in by_key.items():
        queue.sort(key=lambda candidate: candidate.sort)
        in_progress = running.get(key, 0)
        started = [start for start in starts.get(key, ()) if start.until > now]
        for candidate in queue[:limit]:
            if not has_room(candidate, in_progress, started, now):
                break
            admitted.append(candidate)
            in_progress += 1
            if candidate.rate_period is not None:
                started.append(Start(now, now + timedelta(seconds=candidate.rate_period)))
    admitted.sort(key=lambda candidate: candidate.sort)
    return admitted[: max(limit, 0)]


def has_room(candidate: Candidate[Any], running: int, starts: Sequence[Start], now: datetime) -> bool:
    """Whether `candidate`'s own limits let it start at `now`, with `running` tasks of its key in
    progress and these `starts` of its key remembered."""
    if candidate.concurrency_limit is not None and running >= candidate.concurrency_limit:
        return False
    reopen = reopens_at(candidate, starts)
    return reopen is None or reopen <= now


def reopens_at(candidate: Candidate[Any], starts: Sequence[Start]) -> datetime | None:
    """From when `candidate`'s rate limit lets it start; None if it has no rate limit or fewer starts
    than it allows are remembered.

    `count` starts are allowed in any `period`: a window has room once the `count`-th most recent start
    is `period` old."""
    if candidate.rate_count is None or candidate.rate_period is None or len(starts) < candidate.rate_count:
        return None
    recent = sorted(start.started_at for start in starts)
    return recent[len(recent) - candidate.rate_count] + timedelta(seconds=candidate.rate_period)


def next_start(
    candidate: Candidate[Any], eta: datetime, running: int, starts: Sequence[Start]
) -> datetime | None:
    """When a key's waiting task (`candidate`, due at `eta`) could start, for `Backend.next_due`: None
    while its concurrency limit is reached (a completion or an expiring lease wakes the workers then),
    else its eta or the moment its rate window reopens, whichever is later."""
    if candidate.concurrency_limit is not None and running >= candidate.concurrency_limit:
        return None
    reopen = reopens_at(candidate, starts)
    return eta if reopen is None else max(eta, reopen)


def limit_key(
    name: str, concurrency_key: str | None, concurrency_limit: int | None, rate: object
) -> str | None:
    """The key a task's limits count by: its `concurrency_key`, or its `name` when it has a limit but no
    key; None for a task without limits (raising `ValidationError` for a key without a limit)."""
    if concurrency_limit is None and rate is None:
        if concurrency_key is not None:
            raise ValidationError(
                f"concurrency_key {concurrency_key!r} limits nothing without a concurrency_limit or a "
                "rate_limit: give the task one of them (or drop the key)"
            )
        return None
    return name if concurrency_key is None else concurrency_key
