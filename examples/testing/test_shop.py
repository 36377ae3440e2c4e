import shop

from sitq import TaskQueue, TaskStatus, Worker


async def test_an_order_is_confirmed_by_email(sitq_eager: None) -> None:
    task_id = await shop.place_order("A-17", "ada@example.com")

    # Eager mode: the task ran inside place_order(), and its result is stored.
    result = await shop.queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == "to ada@example.com: order A-17 is confirmed"
    assert shop.outbox == ["to ada@example.com: order A-17 is confirmed"]


async def test_a_bad_address_fails_after_every_attempt(sitq_eager: None) -> None:
    task_id = await shop.place_order("A-18", "not-an-address")

    # Retries run at once in eager mode, however long their backoff.
    result = await shop.queue.get_result(task_id, timeout=0)
    assert result is not None and result.status is TaskStatus.FAILED
    assert result.error == "ValueError: cannot mail order A-18 to 'not-an-address'"
    assert (await shop.queue.get_task(task_id)).attempts == 3
    assert shop.outbox == []


async def test_without_eager_mode_the_confirmation_waits_for_a_worker() -> None:
    task_id = await shop.place_order("A-19", "bob@example.com")
    assert await shop.queue.get_status(task_id) is TaskStatus.PENDING
    assert shop.outbox == []

    await Worker(shop.queue).run(burst=True)  # runs what is due, then returns

    assert await shop.queue.get_status(task_id) is TaskStatus.SUCCESS
    assert shop.outbox == ["to bob@example.com: order A-19 is confirmed"]


async def test_the_task_on_a_queue_of_the_tests_own(sitq_queue: TaskQueue, sitq_worker: Worker) -> None:
    task_id = await sitq_queue.enqueue(shop.send_confirmation, "A-20", "eve@example.com")

    await sitq_worker.run(burst=True)

    result = await sitq_queue.get_result(task_id, timeout=0)
    assert result is not None and result.value == "to eve@example.com: order A-20 is confirmed"
