"""Shared by the validation tests: whether the example plugin sitq-tasklog is installed, and the stores a
program runs on."""

import importlib.metadata
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from postgres_server import execute, run

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


@pytest.fixture(params=["sqlite", "postgres"])
def postgres(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None to run a program as written, on SQLite; else the URL of a fresh PostgreSQL schema to move its
    stores to (`programs.on_postgres`; skipping without a server), which must hold its tasks afterwards."""
    if request.param == "sqlite":
        yield None
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    [(stored,)] = run(execute(f'SELECT count(*) FROM "{schema}".tasks'))
    assert stored, f"the program stored no task in PostgreSQL schema {schema}"
