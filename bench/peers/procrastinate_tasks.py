"""Procrastinate's app and the benchmark's tasks, which its worker processes import by name.

The app connects to ``$BENCH_PG_URL`` (the measure's fresh database) through Procrastinate's
``PsycopgConnector`` at its defaults: set the variable before the first import. Each task calls the
function of `bench_tasks` that sitq's and PgQueuer's workers call.
"""

from __future__ import annotations

import os

import bench_tasks
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ["BENCH_PG_URL"]))


@app.task
async def noop_async() -> None:
    await bench_tasks.noop_async()


@app.task
def noop_sync() -> None:
    bench_tasks.noop_sync()


@app.task
async def record_async(i: int) -> None:
    await bench_tasks.record_async(i)


@app.task
async def stamp_async(path: str, i: int) -> None:
    await bench_tasks.stamp_async(path, i)
