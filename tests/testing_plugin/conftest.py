"""The pytest plugin is tested as users meet it: in pytest sessions of their own, run by `pytester`."""

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytest project of a user's: warnings are errors, and pytest-asyncio in its default strict mode."""
    pytester.makeini(INI)
    return pytester
