"""With sitq-core alone installed (tox -e core): plugin names fail with install hints, built-ins work."""

import pytest

import sitq
from sitq import MemoryBackend, PluginNotFoundError, TaskQueue, Worker

pytestmark = pytest.mark.core_only


@pytest.mark.parametrize(
    ("name", "distribution"),
    [
        ("SQLiteBackend", "sitq-sqlite"),
        ("PostgresBackend", "sitq-postgres"),
        ("CloudpickleSerializer", "sitq-cloudpickle"),
        ("DillSerializer", "sitq-dill"),
    ],
)
def test_plugin_names_say_what_to_install(name: str, distribution: str) -> None:
    with pytest.raises(PluginNotFoundError, match=f"pip install {distribution}"):
        getattr(sitq, name)


def test_seed_import_paths_say_what_to_install() -> None:
    with pytest.raises(ImportError, match="pip install sitq-sqlite"):
        from sitq.backends.sqlite import SQLiteBackend  # noqa: F401 - the import is the test
    with pytest.raises(ImportError, match="pip install sitq-cloudpickle"):
        from sitq.serialization import CloudpickleSerializer  # noqa: F401 - the import is the test


def test_the_default_url_needs_the_sqlite_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SITQ_URL", raising=False)
    with pytest.raises(PluginNotFoundError, match="pip install sitq-sqlite"):
        TaskQueue()
    with pytest.raises(PluginNotFoundError, match="pip install sitq-dill"):
        TaskQueue("memory://", serializer="dill")


@pytest.mark.parametrize("url", ["postgresql://localhost/app", "postgres://localhost/app"])
def test_a_postgresql_url_says_what_to_install(url: str) -> None:
    with pytest.raises(PluginNotFoundError, match="pip install sitq-postgres"):
        TaskQueue(url)


async def test_memory_and_pickle_work_without_any_plugin() -> None:
    async with TaskQueue(MemoryBackend()) as queue:
        assert queue.serializer.name == "pickle"
        task_id = await queue.enqueue(divmod, 7, 2)
        result = await Worker(queue).process_task(task_id)
    assert result.value == (3, 1)
