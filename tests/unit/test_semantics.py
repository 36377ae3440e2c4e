"""The queue's semantics that every backend applies through `sitq.semantics`: the words of stored errors,
the order and wording of the cancellation cascade, which outcome of an attempt counts, and options to and
from storage."""

import json
from datetime import UTC, datetime

import pytest

from sitq import semantics
from sitq.models import NewTask, RetryPolicy, TaskOptions, TaskOutcome, TaskStatus

# A small DAG, by row number as a SQL backend addresses tasks: root -> a, b; a, b -> c; c -> d. Children
# are listed in enqueue order.
IDS = {1: "root", 2: "a", 3: "b", 4: "c", 5: "d", 6: "bystander"}
CHILDREN = {1: [2, 3], 2: [4], 3: [4], 4: [5], 5: [], 6: []}


def children(node: int) -> list[tuple[int, str]]:
    return [(child, IDS[child]) for child in CHILDREN[node]]


def test_the_cascade_is_depth_first_in_enqueue_order_each_naming_the_parent_that_reached_it() -> None:
    cancelled = semantics.dependents_to_cancel(1, "root", TaskStatus.FAILED, children)
    assert list(cancelled.items()) == [
        (2, "TaskCancelledError: parent task root ended failed"),
        (4, "TaskCancelledError: parent task a ended cancelled"),
        (5, "TaskCancelledError: parent task c ended cancelled"),
        (3, "TaskCancelledError: parent task root ended failed"),
    ]


def test_the_cascade_takes_a_stored_status_and_a_task_without_dependents_cancels_nothing() -> None:
    assert semantics.dependents_to_cancel(4, "c", "timeout", children) == {
        5: "TaskCancelledError: parent task c ended timeout"
    }
    assert semantics.dependents_to_cancel(6, "bystander", TaskStatus.CANCELLED, children) == {}


def test_the_cascade_over_edges_in_any_order_is_the_same_cascade_with_ids() -> None:
    edges = [(parent, child, IDS[child]) for parent, found in CHILDREN.items() for child in found]
    cancelled = semantics.cascade_over_edges(1, "root", TaskStatus.FAILED, reversed(edges))
    expected = semantics.dependents_to_cancel(1, "root", TaskStatus.FAILED, children)
    assert list(cancelled) == list(expected)
    assert cancelled == {node: (IDS[node], error) for node, error in expected.items()}
    assert semantics.cascade_over_edges(6, "bystander", TaskStatus.CANCELLED, []) == {}


def new_task(task_id: str, *parents: str) -> NewTask:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    return NewTask(task_id, "t", b"", "pickle", now, now, depends_on=parents)


def test_a_batch_may_name_stored_parents_and_earlier_tasks_of_its_own_but_nothing_else() -> None:
    batch = [new_task("a", "stored"), new_task("b", "a", "stored")]
    assert semantics.missing_parent(batch, {"stored"}) is None
    assert semantics.missing_parent([new_task("b", "a"), new_task("a")], {"stored"}) == "a"
    assert semantics.missing_parent([new_task("a", "stored", "gone")], {"stored"}) == "gone"


def test_unmet_parents_count_each_parent_once_and_the_first_ended_one_cancels() -> None:
    statuses = {"ok": TaskStatus.SUCCESS, "failed": "failed", "cancelled": TaskStatus.CANCELLED}
    task = new_task("t", "ok", "running", "cancelled", "failed", "cancelled")
    assert semantics.unmet_parents(task, statuses.get) == 3
    assert semantics.ended_parent(task, statuses.get) == "cancelled"
    assert semantics.ended_parent(new_task("u", "ok", "running"), statuses.get) is None


def test_parents_round_trip_through_json_and_none_stands_for_none() -> None:
    assert semantics.parents_to_json(()) is None
    assert semantics.parents_from_json(None) == ()
    assert semantics.parents_from_json(semantics.parents_to_json(("a", "b"))) == ("a", "b")


def test_a_status_that_is_not_one_is_refused_rather_than_worded() -> None:
    with pytest.raises(ValueError, match="'ended'"):
        semantics.parent_ended_error("p", "ended")


def test_stored_errors_are_worded_once() -> None:
    assert semantics.lost_error("w1", attempts_left=True) == (
        "WorkerLostError: worker w1 stopped renewing its lease"
    )
    assert semantics.lost_error("w1", attempts_left=False) == (
        "WorkerLostError: worker w1 stopped renewing its lease, and no attempts are left"
    )
    parts = semantics.LOST_BEFORE_WORKER + "w1" + semantics.LOST_AFTER_WORKER + semantics.NO_ATTEMPTS_LEFT
    assert parts == semantics.lost_error("w1", attempts_left=False)
    assert semantics.CANCELLED_WHILE_RUNNING == "TaskCancelledError: cancelled on request while running"
    assert {TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED} == semantics.ENDED_WITHOUT_SUCCESS


def outcome(task_id: str, worker_id: str, status: TaskStatus) -> TaskOutcome:
    return TaskOutcome(
        task_id=task_id, worker_id=worker_id, status=status, finished_at=datetime(2030, 1, 1, tzinfo=UTC)
    )


def test_of_two_outcomes_of_one_attempt_only_the_first_counts() -> None:
    first = outcome("t1", "w1", TaskStatus.SUCCESS)
    again = outcome("t1", "w1", TaskStatus.FAILED)
    other_worker = outcome("t1", "w2", TaskStatus.FAILED)
    other_task = outcome("t2", "w1", TaskStatus.SUCCESS)
    assert semantics.first_outcomes([first, again, other_worker, other_task]) == [
        first,
        other_worker,
        other_task,
    ]
    assert semantics.first_outcomes([]) == []


def test_the_default_retry_policy_is_stored_as_none() -> None:
    assert semantics.retry_to_json(RetryPolicy()) is None
    assert semantics.retry_from_json(None) == RetryPolicy()


def test_a_retry_policy_round_trips_through_compact_json() -> None:
    policy = RetryPolicy(backoff=2, factor=3, max_backoff=60, jitter=0.5, retry_on=[ConnectionError, "x.E"])
    stored = semantics.retry_to_json(policy)
    assert stored is not None and " " not in stored
    assert json.loads(stored) == {
        "backoff": 2.0,
        "factor": 3.0,
        "max_backoff": 60.0,
        "jitter": 0.5,
        "retry_on": ["builtins.ConnectionError", "x.E"],
    }
    assert semantics.retry_from_json(stored) == policy


@pytest.mark.parametrize(
    "options",
    [
        TaskOptions(),
        TaskOptions("emails", priority=-3, max_attempts=4, retry=RetryPolicy(backoff=0), timeout=1.5),
        TaskOptions(description="nightly report"),
        TaskOptions(unique_for=3600),
    ],
    ids=["defaults", "every-field", "description", "unique-for"],
)
def test_options_round_trip_through_their_stored_fields(options: TaskOptions) -> None:
    fields = semantics.option_fields(options)
    assert fields[:3] == (options.queue, options.priority, options.max_attempts)
    assert (fields[3] is None) == (options.retry == RetryPolicy())
    assert fields[4:7] == (options.timeout, options.description, options.unique_for)
    rate = options.rate_limit
    assert fields[7:] == (
        options.concurrency_limit,
        *((None, None) if rate is None else (rate.count, rate.period)),
    )
    assert semantics.task_options(*fields) == options
