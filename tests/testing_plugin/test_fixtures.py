"""The fixtures of `sitq.testing.pytest_plugin`, used from a user's test files in sessions of their own.

Each test writes a user's test module (and sometimes the application module it tests) into a fresh
directory and runs pytest on it; the plugin comes in through sitq-core's `pytest11` entry point, as it
does for a user, with warnings as errors.
"""

from __future__ import annotations

import pytest


def test_the_fixtures_are_there_without_an_import(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")

    assert result.ret == 0
    listed = result.stdout.str()
    for fixture in ("sitq_url", "sitq_queue", "sitq_worker", "sitq_eager"):
        assert f"{fixture} -- " in listed
    assert "pytest_plugin.py" in listed


def test_no_sitq_turns_them_off(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:sitq", "--fixtures")

    assert result.ret == 0 and "sitq_queue" not in result.stdout.str()


def test_a_burst_worker_runs_what_is_due_and_returns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from datetime import UTC, datetime, timedelta

        import pytest

        from sitq import Task, TaskStatus


        async def double(x):
            return 2 * x


        def explode():
            raise ValueError("bad input")


        @pytest.mark.asyncio
        async def test_drain(sitq_queue, sitq_worker):
            ok = await sitq_queue.enqueue(double, 21)
            bad = await sitq_queue.enqueue(explode)
            later = await sitq_queue.enqueue(double, 1, eta=datetime.now(UTC) + timedelta(hours=1))

            await sitq_worker.run(burst=True)

            assert (await sitq_queue.get_result(ok, timeout=0)).value == 42
            failed = await sitq_queue.get_result(bad, timeout=0)
            assert failed.status is TaskStatus.FAILED and failed.error == "ValueError: bad input"
            assert await sitq_queue.get_status(later) is TaskStatus.PENDING
            assert not sitq_worker.is_running


        @pytest.mark.asyncio
        async def test_in_the_background(sitq_queue, sitq_worker):
            async with sitq_worker:
                task_id = await sitq_queue.enqueue(double, 5)
                assert (await sitq_queue.get_result(task_id, timeout=5)).value == 10
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_every_test_gets_an_empty_store_of_its_own_and_sitq_url_points_at_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITQ_URL", "sqlite:///the-users-own.db")
    pytester.makepyfile(
        """
        import os

        import pytest

        from sitq import TaskQueue

        seen = []


        @pytest.mark.asyncio
        @pytest.mark.parametrize("run", [1, 2])
        async def test_store(sitq_url, sitq_queue, run):
            assert os.environ["SITQ_URL"] == sitq_url == "memory://" + sitq_url.removeprefix("memory://")
            seen.append(sitq_url)
            await sitq_queue.enqueue(len, "abc")
            async with TaskQueue() as same_store:  # no URL: $SITQ_URL
                assert await same_store.stats() == {"default": {"pending": 1}}


        def test_afterwards():
            assert len(set(seen)) == 2
            assert os.environ["SITQ_URL"] == "sqlite:///the-users-own.db"
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_sitq_url_is_a_sqlite_file_when_parametrized_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        from sitq import TaskStatus


        @pytest.mark.asyncio
        @pytest.mark.parametrize("sitq_url", ["memory", "sqlite"], indirect=True)
        async def test_both(sitq_url, sitq_queue, sitq_worker, tmp_path):
            task_id = await sitq_queue.enqueue(sum, [1, 2, 3])
            await sitq_worker.run(burst=True)
            assert (await sitq_queue.get_result(task_id, timeout=0)).value == 6
            if sitq_url.startswith("sqlite"):
                assert sitq_url == f"sqlite:///{tmp_path}/sitq.db" and (tmp_path / "sitq.db").exists()
            else:
                assert sitq_url.startswith("memory://sitq-test-")


        @pytest.mark.parametrize("sitq_url", ["redis"], indirect=True)
        def test_unknown(sitq_url):
            pass
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*sitq_url is parametrized with one of memory, sqlite, not 'redis'*"])


APP = """
    '''An application whose queue is built when the module is imported, from $SITQ_URL.'''

    import sitq
    from sitq import RetryPolicy, TaskQueue

    events = []


    class Recorder:
        def sitq_task_started(self, task_name, attempt):
            events.append(("started", task_name.rsplit(".", 1)[-1], attempt))

        def sitq_task_retried(self, attempt):
            events.append(("retried", attempt))

        def sitq_task_failed(self, error):
            events.append(("failed", error))

        def sitq_task_succeeded(self, task_name):
            events.append(("succeeded", task_name.rsplit(".", 1)[-1]))


    queue = TaskQueue(plugins=[Recorder()])


    def send_receipt(order_id, total):
        if total < 0:
            raise ValueError(f"order {order_id} has a negative total")
        return f"receipt for {order_id}: {total:.2f} EUR"


    @sitq.task(max_attempts=3, retry=RetryPolicy(backoff=600))  # ten minutes apart on a real worker
    def charge_card(order_id):
        if sitq.current_task().attempt < 3:
            raise ConnectionError("payment service unreachable")
        return f"charged {order_id}"


    async def place_order(order_id, total):
        return await queue.enqueue(send_receipt, order_id, total)
    """


def test_eager_mode_reaches_a_queue_the_application_built_at_import(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SITQ_URL", raising=False)  # restored after the test, whatever the conftest sets
    pytester.makeconftest(
        """
        import os

        os.environ["SITQ_URL"] = "memory://"  # before the application is imported, as in a settings file
        """
    )
    pytester.makepyfile(app=APP)
    pytester.makepyfile(
        """
        import pytest

        import app
        from sitq import TaskStatus


        @pytest.fixture(autouse=True)
        def no_events():
            app.events.clear()


        @pytest.mark.asyncio
        async def test_the_receipt_is_there_when_place_order_returns(sitq_eager):
            task_id = await app.place_order("A-17", 12.5)

            result = await app.queue.get_result(task_id, timeout=0)
            assert result.value == "receipt for A-17: 12.50 EUR"
            assert app.events == [("started", "send_receipt", 1), ("succeeded", "send_receipt")]


        @pytest.mark.asyncio
        async def test_a_failing_task_gives_a_failed_result(sitq_eager):
            task_id = await app.place_order("A-18", -1)

            result = await app.queue.get_result(task_id, timeout=0)
            assert result.status is TaskStatus.FAILED
            assert result.error == "ValueError: order A-18 has a negative total"
            assert app.events[-1] == ("failed", "ValueError: order A-18 has a negative total")


        @pytest.mark.asyncio
        async def test_retries_run_at_once(sitq_eager):
            task_id = await app.queue.enqueue(app.charge_card, "A-19")

            assert (await app.queue.get_result(task_id, timeout=0)).value == "charged A-19"
            assert [event[0] for event in app.events] == [
                "started", "retried", "started", "retried", "started", "succeeded"
            ]


        @pytest.mark.asyncio
        async def test_without_the_fixture_tasks_wait_for_a_worker():
            task_id = await app.place_order("A-20", 1)

            assert await app.queue.get_status(task_id) is TaskStatus.PENDING
            assert app.events == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=4)


def test_eager_mode_with_the_sync_wrapper_in_sync_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from sitq import SyncTaskQueue, TaskStatus


        def resize(name, width):
            return f"{name} at {width}px"


        def test_sync(sitq_eager, sitq_url):
            with SyncTaskQueue() as queue:  # $SITQ_URL: the test's own store
                task_id = queue.enqueue(resize, "cat.jpg", 320)
                assert queue.get_status(task_id) is TaskStatus.SUCCESS
                assert queue.get_result(task_id, timeout=0).value == "cat.jpg at 320px"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_without_pytest_asyncio_the_sync_fixtures_work_and_the_async_ones_say_what_is_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(pytest_asyncio="raise ImportError('No module named pytest_asyncio')")
    pytester.makepyfile(
        test_user="""
        from sitq import SyncTaskQueue, TaskStatus


        def test_sync(sitq_eager):
            with SyncTaskQueue() as queue:
                task_id = queue.enqueue(divmod, 7, 2)
                assert queue.get_result(task_id, timeout=0).value == (3, 1)


        def test_async_fixture(sitq_queue):
            pass
        """
    )
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    # A process of its own, where the module above shadows pytest-asyncio, which is therefore not loaded.
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ['*the fixture sitq_queue is async and needs pytest-asyncio: pip install "sitq-core?testing?"*']
    )


def test_a_stopped_test_leaves_no_worker_running(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        import pytest

        workers = []


        @pytest.mark.asyncio
        async def test_fails_with_its_worker_running(sitq_queue, sitq_worker):
            workers.append(sitq_worker)
            await sitq_worker.start()
            await sitq_queue.enqueue(asyncio.sleep, 0.01)
            raise AssertionError("the test fails")


        def test_the_worker_was_stopped():
            assert not workers[0].is_running
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
