import os

import pytest

# The shop builds its queue when it is imported: point $SITQ_URL at memory before anything imports it.
os.environ["SITQ_URL"] = "memory://"

import shop


@pytest.fixture(autouse=True)
def empty_outbox() -> None:
    shop.outbox.clear()
