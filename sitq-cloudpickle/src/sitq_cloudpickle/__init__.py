"""The cloudpickle serializer for sitq. `CloudpickleSerializer` is imported on first use, so that discovering
plugins (which imports this package to reach `sitq_cloudpickle.plugin`) does not import cloudpickle."""

from typing import TYPE_CHECKING

from sitq.plugins import lazy_imports

if TYPE_CHECKING:
    from sitq_cloudpickle.serializer import CloudpickleSerializer as CloudpickleSerializer

__all__ = ["CloudpickleSerializer"]

__getattr__ = lazy_imports(__name__, {"CloudpickleSerializer": "sitq_cloudpickle.serializer"})
