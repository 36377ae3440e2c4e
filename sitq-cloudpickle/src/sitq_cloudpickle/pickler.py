"""A cloudpickle `Pickler` that keeps each function's file name, so a task's traceback names the user's file.

cloudpickle 3.1.3 and later store a by-value function's code with `co_filename = "<dynamic-code>"` (for
deterministic payloads), and the traceback of a task defined in a script then points at no file and shows
no source line. Code objects are stored instead as the interpreter's own `marshal` format, which keeps
every field, nested functions' code included. A by-value function is tied to one Python version
whichever way its code is stored, so marshal's version dependence costs nothing more; loading needs only
`pickle` and `marshal`.
"""

from __future__ import annotations

import marshal
import types
from typing import Any

import cloudpickle


class FilenamePreservingPickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle has no types
    """cloudpickle's pickler, with code objects carried as they are, `co_filename` included."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.CodeType):
            try:
                return marshal.loads, (marshal.dumps(obj),)
            except ValueError:  # a constant marshal cannot write: only code built by hand has one
                pass
        return super().reducer_override(obj)
