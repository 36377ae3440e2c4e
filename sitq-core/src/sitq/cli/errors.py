"""Exit codes, and the one line an exception becomes: scripts branch on the code, people read the line.

This module imports nothing outside the standard library and sitq, so `sitq.cli.main` can use it to
report a missing ``cli`` extra.
"""

from __future__ import annotations

import enum

from sitq.errors import (
    BackendError,
    ConfigurationError,
    ScheduleNotFoundError,
    SerializationError,
    SitqError,
    TaskNotFoundError,
    ValidationError,
    WorkflowNotFoundError,
)


class ExitCode(enum.IntEnum):
    """What a `sitq` exit status means; docs/cli.md lists the same table."""

    OK = 0
    FAILED = 1
    """The command ran, but the answer is no: a waited-for task did not succeed, a task was in a state
    where it could not be cancelled or requeued, or sitq refused the operation (another `SitqError`)."""
    USAGE = 2
    """Bad usage or input (an unknown option, bad JSON, an unknown module or function), or the ``cli``
    extra is not installed."""
    NOT_FOUND = 3
    """No task or workflow with that id, or no schedule of that name."""
    BACKEND = 4
    """The backend could not be used: a bad URL, a missing or broken plugin, an unreachable database."""
    TIMEOUT = 5
    """``sitq wait --timeout`` ran out before everything finished."""
    INTERNAL = 70
    """An unexpected error: a bug in sitq or in a plugin (``--debug`` shows the traceback)."""
    INTERRUPTED = 130
    """Stopped with Ctrl-C (a worker instead stops gracefully and exits 0)."""


class CliError(Exception):
    """A problem the user can fix, said in one line, with the exit code that tells its kind."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.code = code


def classify(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an exception that ended a command."""
    match exc:
        case CliError():
            code, message = exc.code, str(exc)
        case TaskNotFoundError() | WorkflowNotFoundError() | ScheduleNotFoundError():
            code, message = ExitCode.NOT_FOUND, str(exc)
        case BackendError() | ConfigurationError():
            code, message = ExitCode.BACKEND, str(exc)
        case ValidationError() | SerializationError():
            code, message = ExitCode.USAGE, str(exc)
        case SitqError():
            code, message = ExitCode.FAILED, str(exc)
        case KeyboardInterrupt():
            code, message = ExitCode.INTERRUPTED, "interrupted"
        case _:
            code = ExitCode.INTERNAL
            message = f"unexpected {type(exc).__name__}: {exc} (run again with --debug to see the traceback)"
    return code, " ".join(message.split())  # one line, even for a multi-line driver message
