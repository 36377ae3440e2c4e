"""The dill serializer for sitq. `DillSerializer` is imported on first use, so that discovering
plugins (which imports this package to reach `sitq_dill.plugin`) does not import dill."""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_imports

if TYPE_CHECKING:
    from sitq_dill.serializer import DillSerializer as DillSerializer

__all__ = ["DillSerializer"]

__getattr__ = lazy_imports(__name__, {"DillSerializer": "sitq_dill.serializer"})
