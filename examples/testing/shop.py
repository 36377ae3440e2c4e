"""A small shop: placing an order enqueues the e-mail that confirms it."""

import sitq
from sitq import RetryPolicy, TaskQueue

# Built when the module is imported, where $SITQ_URL points (sqlite:///sitq.db when it is unset).
queue = TaskQueue()

outbox: list[str] = []  # stands in for the mail server


@sitq.task(max_attempts=3, retry=RetryPolicy(backoff=60))
async def send_confirmation(order_id: str, email: str) -> str:
    if "@" not in email:
        raise ValueError(f"cannot mail order {order_id} to {email!r}")
    message = f"to {email}: order {order_id} is confirmed"
    outbox.append(message)
    return message


async def place_order(order_id: str, email: str) -> str:
    """Take an order and confirm it by e-mail in the background; return the confirmation's task id."""
    return await queue.enqueue(send_confirmation, order_id, email)
