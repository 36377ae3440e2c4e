"""Conformance suites for plugin authors: subclass one and provide its fixture.

    from sitq.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyBackend(tmp_path / "tasks.db")   # new, unconnected, on an empty store

Needs pytest and pytest-asyncio (``pip install sitq-core[testing]``).
"""

import pytest

# The suites are installed library code, so ask pytest to explain their failing asserts as in tests.
pytest.register_assert_rewrite("sitq.testing.backend", "sitq.testing.serializer")

from sitq.testing.backend import BackendConformance  # noqa: E402 - must follow the rewrite registration
from sitq.testing.serializer import SerializerConformance  # noqa: E402 - as above

__all__ = ["BackendConformance", "SerializerConformance"]
