"""What every concern of the backend suite shares: its clock, task builders, and its fixtures.

`ConformanceFixtures` holds the fixtures; each concern's class inherits it, and `BackendConformance`
inherits every concern. A test that needs a capability (`Capability`) is marked with `requires`, and one
about its absence with `lacking`; the autouse fixture reads the marks and skips with the reason, naming
the backend's class and the capability.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import pytest
import pytest_asyncio

from sitq.backend import Backend, Capability
from sitq.models import NewTask, TaskOptions, TaskOutcome, TaskStatus

T0 = datetime(2030, 1, 1, tzinfo=UTC)
"""The controlled clock's "now" for the tests at the protocol: far enough ahead of the real clock that
every task enqueued through the public API is due."""
LEASE = timedelta(seconds=30)
QUEUES = ("default",)

ApplicationTransaction: TypeAlias = Callable[[], AbstractAsyncContextManager[object]]
"""Opens the application's own driver connection to the backend's store and a transaction on it: the
context manager yields the connection, commits on a clean exit and rolls back on an exception."""


def new_task(
    eta: datetime = T0,
    payload: bytes = b"call",
    task_id: str | None = None,
    options: TaskOptions | None = None,
    **option_fields: Any,
) -> NewTask:
    return NewTask(
        id=task_id or uuid.uuid4().hex,
        name="tests.task",
        payload=payload,
        serializer="pickle",
        enqueued_at=T0 - timedelta(minutes=1),
        eta=eta,
        options=options or TaskOptions(**option_fields),
    )


def outcome(
    task_id: str, worker_id: str, status: TaskStatus = TaskStatus.SUCCESS, **fields: Any
) -> TaskOutcome:
    fields.setdefault("finished_at", T0)
    return TaskOutcome(task_id=task_id, worker_id=worker_id, status=status, **fields)


def assert_same_instant(actual: datetime | None, expected: datetime) -> None:
    """Stored times must come back timezone-aware UTC, within a millisecond of what went in."""
    assert actual is not None
    assert actual.utcoffset() == timedelta(0)
    assert abs((actual - expected).total_seconds()) < 1e-3


_Test = TypeVar("_Test", bound=Callable[..., Any])
_REQUIRES = "_sitq_requires"
_LACKING = "_sitq_lacking"


def requires(capability: Capability) -> Callable[[_Test], _Test]:
    """Mark a test as checking `capability`: it skips on a backend that does not declare it.

    An attribute of the function, not a pytest marker: a marker would have to be registered in every
    project that runs the suite, or its ``--strict-markers`` refuses it."""

    def mark(test: _Test) -> _Test:
        setattr(test, _REQUIRES, capability)
        return test

    return mark


def lacking(capability: Capability) -> Callable[[_Test], _Test]:
    """Mark a test as checking what a backend without `capability` does: it skips on one that declares it."""

    def mark(test: _Test) -> _Test:
        setattr(test, _LACKING, capability)
        return test

    return mark


class ConformanceFixtures:
    """The fixtures of the backend suite. Only `backend` must be overridden; `backend_url` and
    `application_transaction` too where the backend declares the capability whose tests need them."""

    pytestmark = pytest.mark.asyncio

    @pytest.fixture
    def backend(self) -> Backend:
        """A new, unconnected backend on an empty store."""
        raise NotImplementedError("override the `backend` fixture to return your backend, unconnected")

    @pytest_asyncio.fixture
    async def store(self, backend: Backend) -> AsyncIterator[Backend]:
        """The `backend`, connected for the test."""
        await backend.connect()
        yield backend
        await backend.close()

    @pytest.fixture
    def backend_url(self, backend: Backend) -> str:
        """The URL of the store that `backend` opens, from which another backend object, or another
        process's `TaskQueue`, opens the same store (`Capability.SHARED_STORE`)."""
        pytest.fail(
            f"{type(backend).__name__} declares Capability.SHARED_STORE, whose tests open its store a "
            "second time: override the `backend_url` fixture to return the URL of the store that the "
            "`backend` fixture opens",
            pytrace=False,
        )

    @pytest.fixture
    def application_transaction(self, backend: Backend) -> ApplicationTransaction:
        """A factory of the application's own transactions on the store that `backend` opens, through
        the driver connection its `enqueue_in_transaction` takes (`Capability.TRANSACTIONAL_ENQUEUE`)."""
        pytest.fail(
            f"{type(backend).__name__} declares Capability.TRANSACTIONAL_ENQUEUE, whose tests write "
            "through the application's own connection: override the `application_transaction` fixture "
            "to return a factory of async context managers that open a connection of your driver to the "
            "store of the `backend` fixture, begin a transaction, yield the connection, and commit on a "
            "clean exit or roll back on an exception",
            pytrace=False,
        )

    @pytest.fixture(autouse=True)
    def _declared_capabilities(self, request: pytest.FixtureRequest, backend: Backend) -> None:
        """Skip a test marked with `requires` or `lacking` that does not apply to this backend."""
        declared, name = type(backend).capabilities, type(backend).__name__
        needed: Capability | None = getattr(request.function, _REQUIRES, None)
        if needed is not None and needed not in declared:
            pytest.skip(f"{name} does not declare Capability.{needed.name}")
        absent: Capability | None = getattr(request.function, _LACKING, None)
        if absent is not None and absent in declared:
            pytest.skip(f"{name} declares Capability.{absent.name}: this test is for backends without it")
