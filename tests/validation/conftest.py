"""Shared by the validation tests: whether the example plugin sitq-tasklog is installed."""

import importlib.metadata
import os

import pytest

TASKLOG_MISSING = (
    "sitq-tasklog is not installed, so its entry point cannot be found: "
    "pip install ./examples/plugins/sitq-tasklog (tox installs it)"
)


def tasklog_is_installed() -> bool:
    return any(ep.name == "tasklog" for ep in importlib.metadata.entry_points(group="sitq"))


@pytest.fixture
def require_tasklog_installed() -> None:
    """Skip without sitq-tasklog installed, except in CI (CI=true), where it must be and the test fails."""
    if tasklog_is_installed():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must install the example plugin: {TASKLOG_MISSING}")
    pytest.skip(TASKLOG_MISSING)
