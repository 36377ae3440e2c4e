"""The metrics endpoint: served only where asked for, once per process, and a bad setting never stops a
worker. Each test starts from a process that serves nothing yet, and shuts down what it started."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from scraping import free_port, scrape

from sitq import MemoryBackend, TaskQueue, Worker
from sitq_prometheus import serve, server


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """No endpoint yet in this process; the ports of the servers started meanwhile, which are shut down."""
    monkeypatch.setattr(server, "_server", None)
    monkeypatch.delenv("SITQ_PROMETHEUS_PORT", raising=False)
    monkeypatch.setenv("SITQ_PROMETHEUS_ADDR", "127.0.0.1")
    ports: list[int] = []
    servers: list[Any] = []
    real_start = server.start_http_server

    def counting_start(port: int, addr: str) -> Any:
        httpd, thread = real_start(port, addr)
        ports.append(httpd.server_port)
        servers.append(httpd)
        return httpd, thread

    monkeypatch.setattr(server, "start_http_server", counting_start)
    yield ports
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


async def run_a_worker() -> None:
    async with TaskQueue(MemoryBackend()) as queue, Worker(queue) as worker:
        task_id = await queue.enqueue(len, "abc")
        assert (await queue.get_result(task_id, timeout=10)) is not None
        assert worker.is_running


def test_serve_starts_one_endpoint_per_process(started: list[int], caplog: pytest.LogCaptureFixture) -> None:
    port = serve(0, "127.0.0.1")

    assert started == [port] and port > 0
    assert any(name == "sitq_tasks_in_flight" or name.startswith("python_") for name, _ in scrape(port))
    assert serve(0) == port and serve(port) == port
    with caplog.at_level(logging.WARNING, logger="sitq_prometheus"):
        assert serve(port + 1) == port
    assert started == [port]
    assert f"already served on port {port} in this process; not also on {port + 1}" in caplog.text


async def test_a_worker_serves_nothing_unless_a_port_is_set(started: list[int]) -> None:
    await run_a_worker()

    assert started == []


async def test_a_worker_serves_on_the_port_set_and_a_second_worker_shares_it(
    started: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("SITQ_PROMETHEUS_PORT", str(port))
    await run_a_worker()
    await run_a_worker()

    assert started == [port]
    assert ("sitq_tasks_in_flight", frozenset({("queue", "default")})) in scrape(port)


@pytest.mark.parametrize("setting", ["http", "-1", "99999", "9100.0"])
async def test_a_port_that_is_not_one_is_logged_and_the_worker_runs_on(
    started: list[int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, setting: str
) -> None:
    monkeypatch.setenv("SITQ_PROMETHEUS_PORT", setting)
    with caplog.at_level(logging.WARNING, logger="sitq_prometheus"):
        await run_a_worker()

    assert started == []
    assert (
        f"SITQ_PROMETHEUS_PORT={setting!r} is not a port number; sitq metrics are not served" in caplog.text
    )


async def test_a_port_in_use_is_logged_and_the_worker_runs_on(
    started: list[int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("SITQ_PROMETHEUS_PORT", str(port))
        with caplog.at_level(logging.WARNING, logger="sitq_prometheus"):
            await run_a_worker()

    assert started == [] and server._server is None
    assert f"sitq metrics cannot be served on 127.0.0.1 port {port}: " in caplog.text
    assert not [record for record in caplog.records if record.name == "sitq.plugins"]  # no traceback
