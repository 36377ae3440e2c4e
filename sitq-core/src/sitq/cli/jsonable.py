"""The ``--json`` shapes: plain JSON values with the field names of the Python API (`TaskInfo`,
`PluginInfo`), times as ISO 8601 UTC strings and statuses as their values, so scripts can rely on them."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sitq.models import TaskInfo, TaskStatus


def plain(value: Any) -> Any:
    """`value` with dataclasses, enums, datetimes and tuples turned into JSON's dicts, strings and lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(plain(key)): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def task(info: TaskInfo) -> dict[str, Any]:
    """A task as `TaskQueue.get_task()` describes it."""
    data: dict[str, Any] = plain(info)
    return data


def stats(by_queue: Mapping[str, Mapping[TaskStatus, int]]) -> dict[str, dict[str, int]]:
    """Counts by queue, then status: ``{"default": {"pending": 3}}``."""
    return {
        queue: {status.value: count for status, count in counts.items()} for queue, counts in by_queue.items()
    }
