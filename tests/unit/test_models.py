"""Result and TaskStatus behave as the seed documents use them."""

import pytest

from sitq import Limits, Result, TaskExecutionError, TaskOptions, TaskStatus, ValidationError


def test_status_compares_to_the_seed_strings() -> None:
    assert [str(status) for status in TaskStatus] == [
        "pending",
        "in_progress",
        "success",
        "failed",
        "cancelled",
        "timeout",
    ]
    assert TaskStatus.SUCCESS == "success"
    assert [status.is_finished for status in TaskStatus] == [False, False, True, True, True, True]


def test_unwrap_returns_the_value_or_raises_with_the_task_error() -> None:
    assert Result("t1", TaskStatus.SUCCESS, value=7).unwrap() == 7
    failed = Result("t2", TaskStatus.FAILED, error="ValueError: no", traceback="Traceback ...")
    assert failed.is_error
    with pytest.raises(TaskExecutionError, match="t2 failed: ValueError: no") as caught:
        failed.unwrap()
    assert caught.value.traceback == "Traceback ..."


def test_a_description_with_a_nul_character_is_refused_on_every_backend() -> None:
    with pytest.raises(ValidationError, match="description must be a str without NUL characters"):
        TaskOptions(description="before \x00 after")
    assert (
        TaskOptions(description="tabs\tand\nnewlines are kept").description == "tabs\tand\nnewlines are kept"
    )


def test_a_stored_error_writes_nul_characters_out() -> None:
    assert Limits().clip("a \x00 b") == "a \\x00 b"
