"""The exception tree: one root, builtins as second parents where the meaning is the same."""

import builtins

import pytest

import sitq
from sitq import errors

ALL_ERRORS = [
    value
    for value in vars(errors).values()
    if isinstance(value, type)
    and issubclass(value, BaseException)
    and value.__module__ == errors.__name__
    and value is not sitq.Retry  # a control-flow signal a task raises, not an error sitq raises
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda error: error.__name__)
def test_every_error_shares_the_root_is_exported_and_shadows_no_builtin(error: type[Exception]) -> None:
    assert issubclass(error, sitq.SitqError)
    assert getattr(sitq, error.__name__) is error
    assert error.__name__ in sitq.__all__
    assert not hasattr(builtins, error.__name__)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (sitq.ValidationError, ValueError),
        (sitq.TaskNotFoundError, LookupError),
        (sitq.PluginNotFoundError, ImportError),
        (sitq.SyncTaskQueueError, RuntimeError),
        (sitq.StorageBusyError, TimeoutError),
    ],
)
def test_builtin_second_parents(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, builtin)


def test_retry_is_exported_and_carries_its_delay() -> None:
    assert sitq.Retry(5).delay == 5
    assert "Retry" in sitq.__all__


def test_task_not_found_names_the_id() -> None:
    error = sitq.TaskNotFoundError("abc")
    assert error.task_id == "abc"
    assert "abc" in str(error)
