"""`Workflow`: tasks with dependencies between them, submitted together, all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sitq.arguments import check_name
from sitq.errors import ValidationError
from sitq.models import Task, TaskStatus


class Workflow:
    """A named group of tasks, each run only after the tasks it depends on have succeeded.

    Add a task after the tasks it depends on, so a workflow can never hold a cycle. A task whose
    function has a `parent_results` parameter receives its parents' return values, by task id.
    """

    def __init__(self, name: str) -> None:
        self.name = check_name(name, "a workflow's name")
        self.steps: list[tuple[Task, tuple[int, ...]]] = []

    def add(
        self, task: Task | Callable[..., Any], /, *args: Any, depends_on: Sequence[Task] = (), **kwargs: Any
    ) -> Task:
        """Add a task (a `Task`, or a function with its arguments) that runs after `depends_on`."""
        if not isinstance(task, Task):
            task = Task(task, args, kwargs)
        elif args or kwargs:
            raise ValidationError("pass a Task alone: its args and kwargs go inside the Task")
        if isinstance(depends_on, Task) or not isinstance(depends_on, Sequence):
            raise ValidationError(f"depends_on takes a list of the workflow's Tasks, not {depends_on!r:.200}")
        parents = tuple(self._position(parent, task) for parent in depends_on)
        self.steps.append((task, parents))
        return task

    def _position(self, parent: Task, child: Task) -> int:
        if not isinstance(parent, Task):
            raise ValidationError(f"depends_on takes Tasks that add() returned, not {parent!r:.200}")
        for position, (added, _) in enumerate(self.steps):
            if added is parent:
                return position
        raise ValidationError(
            f"{_label(child)} depends on {_label(parent)}, which is not in workflow {self.name!r} yet: "
            "add a task's parents before it (so no cycle can form)"
        )


def _label(task: Task) -> str:
    return task.name or str(getattr(task.function, "__qualname__", None) or task.function)


@dataclass(frozen=True)
class WorkflowRun:
    """A submitted workflow: its id, and the id of each of its tasks in the order they were added."""

    id: str
    name: str
    task_ids: tuple[str, ...]
    _workflow: Workflow

    def id_of(self, task: Task) -> str:
        """The id the given task of the workflow was stored under."""
        if not isinstance(task, Task):
            raise ValidationError(f"id_of takes a Task that Workflow.add() returned, not {task!r:.200}")
        for (added, _), task_id in zip(self._workflow.steps, self.task_ids, strict=True):
            if added is task:
                return task_id
        raise ValidationError(f"{_label(task)} is not part of workflow {self.name!r}")


@dataclass(frozen=True)
class WorkflowStatus:
    """How far a workflow has got: its tasks counted by status."""

    id: str
    counts: Mapping[TaskStatus, int]

    @property
    def total(self) -> int:
        """How many tasks the workflow has."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """True once no task of it will run again."""
        return all(status.is_finished for status in self.counts)

    @property
    def succeeded(self) -> bool:
        """True once every task of it has succeeded."""
        return self.counts.get(TaskStatus.SUCCESS, 0) == self.total
