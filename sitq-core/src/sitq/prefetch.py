"""How many tasks a worker claims ahead of its free slots, so that a slot coming free starts the next task
at once instead of waiting for a claim.

A claim is a write: on SQLite, a transaction and an fsync. A worker that claims only when a slot is free
leaves that slot idle for the claim's round trip after every task, which for short tasks is most of the
time. Claiming ahead overlaps the two: the tasks it holds run while the write that recorded their
predecessors (and claimed their successors) is under way.

Claimed tasks are leased to the worker and count an attempt, so it claims ahead only what its slots will
start soon: as many as they start within `HORIZON` seconds at the pace of its recent tasks. Tasks that take
seconds are never held back from other workers; no-op tasks get a full batch ahead. When the pace changes
(short tasks, then long ones), a held task that waited `PATIENCE` seconds is given back, uncounted, and the
worker holds none until a task ends.
"""

from __future__ import annotations

from typing import Final

HORIZON: Final = 0.02
"""How long a task claimed ahead should wait for a slot, at most, judged by the recent tasks."""
PATIENCE: Final = 1.0
"""How long a task held ahead may wait for a slot before the worker gives it back for another to take."""
_WEIGHT: Final = 0.2
"""Of each new task in the running average of how long tasks take: the last ten or so count."""


class Prefetch:
    """The number of tasks to hold beyond `slots` running ones, from how long recent tasks ran."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._average: float | None = None  # seconds per task; None until one has run
        self._stalled = False

    def ran(self, seconds: float) -> None:
        """A task took this long, from start to outcome."""
        self._stalled = False
        if self._average is None:
            self._average = seconds
        else:
            self._average += (seconds - self._average) * _WEIGHT

    def stalled(self) -> None:
        """A held task waited `PATIENCE` for a slot: the recent pace no longer holds; hold none until a
        task ends."""
        self._stalled = True

    @property
    def extra(self) -> int:
        """How many tasks to claim beyond the free slots: none until a task has run, at most `slots`."""
        if self._average is None or self._stalled:
            return 0
        if self._average <= 0:
            return self._slots
        return min(self._slots, int(HORIZON * self._slots / self._average))
