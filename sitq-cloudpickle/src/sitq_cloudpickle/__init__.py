"""The cloudpickle serializer for sitq."""

from sitq_cloudpickle.serializer import CloudpickleSerializer

__all__ = ["CloudpickleSerializer"]
