"""The exception tree: one root, shallow, and builtins as second parents where the meaning is the same."""

from __future__ import annotations


class SitqError(Exception):
    """Root of every error sitq raises on purpose."""


class ConfigurationError(SitqError):
    """sitq was set up wrongly: an unknown URL scheme, a bad option, a broken plugin."""


class PluginNotFoundError(ConfigurationError, ImportError):
    """A backend or serializer was asked for by name, and no installed plugin provides it."""


class ValidationError(SitqError, ValueError):
    """An argument is not acceptable; the message says which and how to fix it."""


class PayloadTooLargeError(ValidationError):
    """A task's serialized call or return value is larger than its `sitq.Limits` allow.

    Raised by `enqueue` before anything is stored; recorded as the error of a task whose return value
    is too large (the task fails, and is not retried: the same code would return as much again).
    """

    def __init__(self, what: str, size: int, limit: int, setting: str) -> None:
        super().__init__(
            f"{what} is {size:,} bytes once serialized, over the limit of {limit:,} bytes: keep large data "
            f"elsewhere (a file, object storage) and pass its location, or raise the limit with "
            f"{setting}"
        )
        self.size = size
        """The serialized size, in bytes."""
        self.limit = limit
        """The limit it exceeds, in bytes."""
        self._arguments = (what, size, limit, setting)

    def __reduce__(self) -> tuple[type[PayloadTooLargeError], tuple[str, int, int, str]]:
        return type(self), self._arguments  # so that it crosses processes whole


class SerializationError(SitqError):
    """A task's call or result could not be turned into bytes, or back."""


class SignatureError(SerializationError):
    """A stored call or result failed verification under the configured signing or encryption keys: it is
    unsigned, altered, copied from elsewhere, or sealed with a key no longer configured. Its bytes were
    never decoded; a task whose call fails it ends `failed` and is not retried."""


class BackendError(SitqError):
    """The storage failed: a driver error, an unreadable file, an incompatible schema."""


class StorageFullError(BackendError):
    """The storage has no room left (a full disk, a file size limit); what was committed before is kept."""


class StorageReadOnlyError(BackendError):
    """The storage cannot be written by this process: a read-only file, directory or file system."""


class StorageBusyError(BackendError, TimeoutError):
    """Another connection held the storage's write lock for longer than the backend waits for it."""


class TaskQueueError(SitqError):
    """A queue operation could not be done."""


class TaskNotFoundError(TaskQueueError, LookupError):
    """No task with this id was ever enqueued in this backend."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r} in this queue")
        self.task_id = task_id


class WorkflowNotFoundError(TaskQueueError, LookupError):
    """No workflow with this id was ever submitted to this backend."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r} in this queue")
        self.workflow_id = workflow_id


class ScheduleNotFoundError(TaskQueueError, LookupError):
    """No schedule with this name is stored in this backend (`unschedule`, `pause_schedule`, ...)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schedule named {name!r} in this queue; queue.schedules() lists them")
        self.name = name


class WorkerError(SitqError):
    """A worker was used wrongly (started twice, asked to run a task it cannot claim)."""


class WorkerLostError(WorkerError):
    """Recorded on a task whose worker stopped renewing its lease (it died) when no attempts were left."""


class TaskTimeoutError(SitqError, TimeoutError):
    """Recorded on an attempt that ran past its `timeout`; retried like any `TimeoutError`."""


class TaskCrashedError(SitqError):
    """Recorded on an attempt whose process died under it in process mode (`Worker(processes=N)`): the task
    killed it (a signal, `os._exit`, a crash in native code) or something else did. The message says
    how, such as "killed by SIGKILL (signal 9)" or "exited with code 3". Like any `Exception`, retried by
    a retry policy that does not leave it out."""


class TaskCancelledError(SitqError):
    """Recorded on a running task that `cancel()` stopped."""


class TaskExecutionError(SitqError):
    """A task failed; raised by `Result.unwrap()` with the task's own error and traceback."""

    def __init__(self, task_id: str, error: str, traceback: str | None = None) -> None:
        super().__init__(f"task {task_id} failed: {error}")
        self.task_id = task_id
        self.error = error
        self.traceback = traceback


class Retry(Exception):
    """Raise inside a task to run it again after `delay` seconds, if `max_attempts` allows; else it fails."""

    def __init__(self, delay: float = 0.0, reason: str = "") -> None:
        super().__init__(reason or f"retry requested in {delay}s")
        self.delay = delay


class SyncTaskQueueError(SitqError, RuntimeError):
    """`SyncTaskQueue` was used where it cannot work, such as inside a running event loop."""
