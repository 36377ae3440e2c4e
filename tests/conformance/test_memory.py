"""The in-memory backend against the shared backend contract."""

import pytest

from sitq import MemoryBackend
from sitq.testing import BackendConformance


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    def backend(self) -> MemoryBackend:
        return MemoryBackend()
