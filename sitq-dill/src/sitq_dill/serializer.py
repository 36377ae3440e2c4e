"""dill: serializes more of Python than cloudpickle, at some cost in speed."""

from __future__ import annotations

from typing import Any, ClassVar


class DillSerializer:
    """Pick it when cloudpickle cannot carry an object; `recurse=True` captures a function's globals."""

    name: ClassVar[str] = "dill"

    def __init__(self, recurse: bool = True) -> None:
        import dill  # on first use, not when plugins are discovered

        self.recurse = recurse
        self._dill = dill

    def dumps(self, obj: Any) -> bytes:
        return bytes(self._dill.dumps(obj, recurse=self.recurse))

    def loads(self, data: bytes) -> Any:
        return self._dill.loads(data)
