"""Task functions for the `sitq` command's tests. The command runs in subprocesses, which import this
module by name: the tests put tests/ on their PYTHONPATH."""

from __future__ import annotations

import asyncio
from typing import Any

NOT_A_FUNCTION = 42


async def add(a: int, b: int) -> int:
    return a + b


def echo(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Returns its arguments, so a test can see how the command parsed them."""
    return {"args": list(args), "kwargs": kwargs}


def fail(message: str) -> None:
    raise RuntimeError(message)


async def sleep(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds
