"""sitq-tasklog: one log line per task outcome, and a count of every lifecycle event.

Installed, it is found through its entry point and needs no code. The counts are per process: a
producer counts what it enqueued, a worker what it ran.
"""

import logging
from collections import Counter

counts: Counter[str] = Counter()
"""Events seen by this process, keyed by hook name without its ``sitq_`` prefix, e.g. ``"task_failed"``."""

# A library logs only where the application configured logging; without this, warnings would reach stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["counts"]
