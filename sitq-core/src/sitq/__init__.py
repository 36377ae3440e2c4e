"""sitq: an async-first task queue with pluggable backends and serializers.

`SQLiteBackend`, `PostgresBackend`, `CloudpickleSerializer` and `DillSerializer` are provided by plugins
and resolve on first access, with an install hint when their plugin is missing.
"""

import logging
from typing import TYPE_CHECKING

from sitq.backend import Backend
from sitq.backends.memory import MemoryBackend
from sitq.errors import (
    BackendError,
    ConfigurationError,
    PayloadTooLargeError,
    PluginNotFoundError,
    Retry,
    ScheduleNotFoundError,
    SerializationError,
    SignatureError,
    SitqError,
    StorageBusyError,
    StorageFullError,
    StorageReadOnlyError,
    SyncTaskQueueError,
    TaskCancelledError,
    TaskCrashedError,
    TaskExecutionError,
    TaskNotFoundError,
    TaskQueueError,
    TaskTimeoutError,
    ValidationError,
    WorkerError,
    WorkerLostError,
    WorkflowNotFoundError,
)
from sitq.hookspecs import hookimpl
from sitq.limiting import RateLimit
from sitq.models import (
    AttemptOutcome,
    AttemptRecord,
    Compaction,
    Limits,
    ReservedTask,
    Result,
    RetryPolicy,
    Task,
    TaskInfo,
    TaskOptions,
    TaskStatus,
)
from sitq.plugins import lazy_exports
from sitq.queue import QueueInTransaction, TaskQueue
from sitq.registry import register_tasks
from sitq.schedules import CatchUp, Schedule
from sitq.secret import Secret
from sitq.serializer import JsonSerializer, PickleSerializer, Serializer
from sitq.sync import SyncTaskQueue
from sitq.tasks import TaskContext, current_task, task
from sitq.worker import Worker
from sitq.workflow import Workflow, WorkflowRun, WorkflowStatus

if TYPE_CHECKING:
    from sitq_cloudpickle import CloudpickleSerializer as CloudpickleSerializer
    from sitq_dill import DillSerializer as DillSerializer
    from sitq_postgres import PostgresBackend as PostgresBackend
    from sitq_sqlite import SQLiteBackend as SQLiteBackend

__all__ = [
    "AttemptOutcome",
    "AttemptRecord",
    "Backend",
    "BackendError",
    "CatchUp",
    "Compaction",
    "ConfigurationError",
    "JsonSerializer",
    "Limits",
    "MemoryBackend",
    "PayloadTooLargeError",
    "PickleSerializer",
    "PluginNotFoundError",
    "QueueInTransaction",
    "RateLimit",
    "ReservedTask",
    "Result",
    "Retry",
    "RetryPolicy",
    "Schedule",
    "ScheduleNotFoundError",
    "Secret",
    "SerializationError",
    "Serializer",
    "SignatureError",
    "SitqError",
    "StorageBusyError",
    "StorageFullError",
    "StorageReadOnlyError",
    "SyncTaskQueue",
    "SyncTaskQueueError",
    "Task",
    "TaskCancelledError",
    "TaskContext",
    "TaskCrashedError",
    "TaskExecutionError",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskOptions",
    "TaskQueue",
    "TaskQueueError",
    "TaskStatus",
    "TaskTimeoutError",
    "ValidationError",
    "Worker",
    "WorkerError",
    "WorkerLostError",
    "Workflow",
    "WorkflowNotFoundError",
    "WorkflowRun",
    "WorkflowStatus",
    "current_task",
    "hookimpl",
    "register_tasks",
    "task",
]

__getattr__ = lazy_exports(
    __name__, {"SQLiteBackend", "PostgresBackend", "CloudpickleSerializer", "DillSerializer"}
)

logging.getLogger(__name__).addHandler(logging.NullHandler())
