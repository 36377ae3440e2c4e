"""Workflow building: parents before children, clear refusals, and status arithmetic."""

import pytest
from sample_tasks import add, multiply

from sitq import Task, TaskStatus, ValidationError, Workflow, WorkflowStatus
from sitq.workflow import WorkflowRun


def test_add_takes_a_task_or_a_function_with_its_arguments() -> None:
    workflow = Workflow("w")
    first = workflow.add(add, 1, b=2)
    second = workflow.add(Task(multiply, [2, 3]), depends_on=[first])
    assert (first.args, dict(first.kwargs)) == ((1,), {"b": 2})
    assert [(task, parents) for task, parents in workflow.steps] == [(first, ()), (second, (0,))]


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(ValidationError, match="a workflow's name must be a non-empty str"):
        Workflow("")
    workflow = Workflow("w")
    with pytest.raises(ValidationError, match="pass a Task alone"):
        workflow.add(Task(add, [1, 2]), 3)
    stranger = Task(add, [1, 1], name="stranger")
    with pytest.raises(ValidationError, match="depends on stranger, which is not in workflow 'w' yet"):
        workflow.add(add, 1, 2, depends_on=[stranger])


def test_a_run_maps_each_task_to_its_id() -> None:
    workflow = Workflow("w")
    first, second = workflow.add(add, 1, 2), workflow.add(add, 1, 2)
    run = WorkflowRun("wf", "w", ("id-1", "id-2"), workflow)
    assert (run.id_of(first), run.id_of(second)) == ("id-1", "id-2")
    with pytest.raises(ValidationError, match="not part of workflow 'w'"):
        run.id_of(Task(add, [1, 2]))


def test_status_counts_add_up() -> None:
    running = WorkflowStatus("wf", {TaskStatus.SUCCESS: 2, TaskStatus.IN_PROGRESS: 1})
    done = WorkflowStatus("wf", {TaskStatus.SUCCESS: 3})
    broken = WorkflowStatus("wf", {TaskStatus.FAILED: 1, TaskStatus.CANCELLED: 2})
    assert (running.total, running.finished, running.succeeded) == (3, False, False)
    assert (done.finished, done.succeeded) == (True, True)
    assert (broken.finished, broken.succeeded) == (True, False)
