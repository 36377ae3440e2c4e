"""cloudpickle: functions that are not importable by name (lambdas, closures, `__main__`) travel by value."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar


class CloudpickleSerializer:
    """sitq's default serializer when installed. Loading needs only the standard library's pickle."""

    name: ClassVar[str] = "cloudpickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        import cloudpickle  # on first use, not when plugins are discovered

        self.protocol = protocol
        self._cloudpickle = cloudpickle

    def dumps(self, obj: Any) -> bytes:
        return bytes(self._cloudpickle.dumps(obj, protocol=self.protocol))

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)
