"""Hook implementations only; dill itself is imported when the serializer is first built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sitq import hookimpl

if TYPE_CHECKING:
    from sitq.serializer import Serializer


@hookimpl
def sitq_register_serializers() -> list[type[Serializer]]:
    from sitq_dill.serializer import DillSerializer

    return [DillSerializer]
