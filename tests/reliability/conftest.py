"""Fixtures of the reliability suite (see `harness`): every test that takes `backend` runs on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from reliability.harness import BACKENDS, BackendUnderTest, Fleet, Ledger

from sitq import TaskQueue


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendUnderTest]:
    with BACKENDS[request.param](tmp_path) as under_test:
        yield under_test


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger")


@pytest.fixture
def fleet(backend: BackendUnderTest, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(backend.url, tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
async def queue(backend: BackendUnderTest) -> AsyncIterator[TaskQueue]:
    async with TaskQueue(backend.url) as queue:
        yield queue
