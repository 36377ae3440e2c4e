"""cloudpickle: functions that are not importable by name (lambdas, closures, `__main__`) travel by value."""

from __future__ import annotations

import io
import pickle
from typing import Any, ClassVar

_ATOMS = frozenset({type(None), bool, int, float, str, bytes})
"""Types cloudpickle leaves to pickle itself: its Pickler adds nothing to their bytes."""


class CloudpickleSerializer:
    """sitq's default serializer when installed. Loading needs only the standard library's pickle.

    Functions carried by value keep their file name and line numbers, so a task's traceback points at
    the user's source whichever cloudpickle version wrote it.
    """

    name: ClassVar[str] = "cloudpickle"

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        # cloudpickle on first use, not when plugins are discovered
        from sitq_cloudpickle.pickler import FilenamePreservingPickler

        self.protocol = protocol
        self._pickler = FilenamePreservingPickler

    def dumps(self, obj: Any) -> bytes:
        if type(obj) in _ATOMS:  # what most tasks return: pickle writes the same bytes, without a Pickler
            return pickle.dumps(obj, protocol=self.protocol)
        with io.BytesIO() as file:
            self._pickler(file, protocol=self.protocol).dump(obj)
            return file.getvalue()

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)
