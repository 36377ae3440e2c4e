"""How a failed attempt is described for its record: the error line, the traceback from the task's own code
down, and what its retry policy makes of it.

A worker describes the exceptions it sees itself; in process mode the child process that ran the task
describes them, so that the worker never has to unpickle an object the task made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import traceback
from dataclasses import dataclass

from sitq.errors import Retry
from sitq.models import RetryPolicy


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt in plain data, as it is stored and judged for a retry."""

    error: str
    """``Type: message``, the line a `Result` and the attempt history show."""
    traceback: str
    delay: float | None
    """The delay the task asked for by raising `Retry`, else None."""
    retryable: bool
    """Whether the task's retry policy retries this exception (its `retry_on`)."""

    @classmethod
    def of(cls, exc: BaseException, policy: RetryPolicy) -> Failure:
        return cls(
            error=f"{type(exc).__name__}: {_message(exc)}",
            traceback=format_traceback(exc),
            delay=float(exc.delay) if isinstance(exc, Retry) else None,
            retryable=policy.retries(exc),
        )


class FailedInChild(Exception):
    """Raised in the worker for an attempt that failed in a child process (process mode)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception as problem:  # a task's own exception class may fail even at this
        return f"<str() of the exception raised {type(problem).__name__}>"


# Frames of sitq's machinery, and of the executor that ran a sync task, say nothing about a task's failure.
_MACHINERY = tuple(
    os.path.dirname(module.__file__ or "") + os.sep
    for module in (sys.modules["sitq"], concurrent.futures, asyncio)
)


def format_traceback(exc: BaseException) -> str:
    """The traceback from the task's own code down, or whole if the failure was inside sitq itself."""
    frames = exc.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(exc), exc, frames or exc.__traceback__))
