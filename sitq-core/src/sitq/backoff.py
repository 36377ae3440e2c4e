"""`Backoff`: how a worker retries a backend operation that keeps failing, and how it tells a person.

Retrying at once would flood the log and hammer a store that is already in trouble; waiting long would
leave the worker idle after the fault clears. So the waits double from `first` up to `cap` (about a
second, the time within which work resumes), with jitter so that workers sharing a store do not retry
in step, and the log gets one line when the operation starts failing and one when it works again.
"""

from __future__ import annotations

import logging
import random
import time

logger = logging.getLogger(__name__)


class Backoff:
    """The failure state of one repeated operation, named by `doing` in the log lines."""

    def __init__(self, doing: str, *, first: float = 0.05, cap: float = 1.0) -> None:
        self.doing = doing
        self.first = first
        self.cap = cap
        self.failures = 0
        """Consecutive failures so far; 0 while the operation works."""
        self.delay = 0.0
        """The wait chosen after the last failure."""
        self._since = 0.0

    def failed(self, exc: BaseException) -> float:
        """Count a failure and return the seconds to wait before the next try; log only the first."""
        if self.failures == 0:
            self._since = time.monotonic()
            logger.error(
                "%s failed; retrying every %gs or less until it works: %s",
                self.doing,
                self.cap,
                exc,
                exc_info=exc,
            )
        else:
            logger.debug("%s failed again (%d in a row): %s", self.doing, self.failures + 1, exc)
        self.failures += 1
        ceiling = min(self.cap, self.first * 2 ** min(self.failures - 1, 32))
        self.delay = ceiling * (0.5 + random.random() / 2)
        return self.delay

    def succeeded(self) -> None:
        """Note that the operation worked; log the recovery if it had been failing."""
        if self.failures:
            logger.info(
                "%s works again, after %d failed tries over %.1fs",
                self.doing,
                self.failures,
                time.monotonic() - self._since,
            )
            self.failures = 0
