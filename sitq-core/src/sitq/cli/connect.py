"""Which backend a command talks to: ``--url``, else ``$SITQ_URL``, else ``sqlite:///sitq.db``, the
same rule as `TaskQueue()` with no backend, so the command and the library always agree."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sitq.plugins import DEFAULT_URL, URL_VARIABLE
from sitq.queue import TaskQueue


def resolve_url(given: str | None) -> tuple[str, str]:
    """The backend URL and where it came from (``--url``, ``$SITQ_URL`` or ``default``)."""
    if given:
        return given, "--url"
    if from_environment := os.environ.get(URL_VARIABLE):
        return from_environment, f"${URL_VARIABLE}"
    return DEFAULT_URL, "default"


@asynccontextmanager
async def open_queue(given_url: str | None) -> AsyncIterator[TaskQueue]:
    """A connected queue on the resolved URL; a bad URL or an unreachable store raises here, at once."""
    url, _ = resolve_url(given_url)
    async with TaskQueue(url) as queue:
        yield queue
