"""sitq-prometheus must be installed for its tests: CI fails without it; elsewhere they are left out, and
pytest's header says why."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

PROMETHEUS_MISSING = (
    "sitq-prometheus is not installed, so its tests are left out: pip install ./sitq-prometheus "
    "(tox installs it)"
)
INSTALLED = any(ep.name == "prometheus" for ep in importlib.metadata.entry_points(group="sitq"))

if not INSTALLED and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must install the plugin: {PROMETHEUS_MISSING}")
collect_ignore_glob = [] if INSTALLED else ["test_*.py"]


def pytest_report_header() -> str | None:
    return None if INSTALLED else PROMETHEUS_MISSING


@pytest.fixture
def queue_name() -> str:
    """A queue of the test's own: the default registry is shared by the whole process, its labels are not."""
    return f"q-{os.urandom(4).hex()}"
