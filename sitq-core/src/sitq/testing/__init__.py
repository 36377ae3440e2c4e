"""Testing helpers: conformance suites for plugin authors, and pytest fixtures for applications.

A backend or serializer author subclasses a suite and provides its fixture:

    from sitq.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend(self, tmp_path):
            return MyBackend(tmp_path / "tasks.db")   # new, unconnected, on an empty store

Its concerns are classes of their own in `sitq.testing.conformance` (`StorageConformance`,
`ClaimConformance`...), and the tests of a capability the backend does not declare skip, saying so.

An application's tests use the fixtures of `sitq.testing.pytest_plugin` (``sitq_queue``, ``sitq_worker``,
``sitq_eager``...), which pytest loads by itself once sitq-core is installed.

Needs pytest and pytest-asyncio (``pip install sitq-core[testing]``).
"""

from typing import TYPE_CHECKING

import pytest

from sitq.plugins import lazy_imports

# The suites are installed library code, so ask pytest to explain their failing asserts as in tests.
pytest.register_assert_rewrite("sitq.testing.conformance", "sitq.testing.serializer")

if TYPE_CHECKING:
    from sitq.testing.conformance import BackendConformance as BackendConformance
    from sitq.testing.serializer import SerializerConformance as SerializerConformance

# Imported on first use: pytest loads the fixtures in `sitq.testing.pytest_plugin` at every start, and the
# suites need pytest-asyncio, which a project using only the fixtures may not have.
__getattr__ = lazy_imports(
    __name__,
    {"BackendConformance": "sitq.testing.conformance", "SerializerConformance": "sitq.testing.serializer"},
)

__all__ = ["BackendConformance", "SerializerConformance"]
