"""Every serializer under one import path, as the seed documents spell it.

`CloudpickleSerializer` and `DillSerializer` come from their plugins and resolve on first access.
"""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_exports
from sitq.serializer import JsonSerializer, PickleSerializer, Serializer

if TYPE_CHECKING:
    from sitq_cloudpickle import CloudpickleSerializer as CloudpickleSerializer
    from sitq_dill import DillSerializer as DillSerializer

__all__ = ["JsonSerializer", "PickleSerializer", "Serializer"]

__getattr__ = lazy_exports(__name__, {"CloudpickleSerializer", "DillSerializer"})
