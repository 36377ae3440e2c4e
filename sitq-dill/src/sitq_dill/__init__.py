"""The dill serializer for sitq."""

from sitq_dill.serializer import DillSerializer

__all__ = ["DillSerializer"]
