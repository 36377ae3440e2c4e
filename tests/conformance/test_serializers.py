"""Every serializer sitq ships against the shared serializer contract."""

import pytest

from sitq.serialization import CloudpickleSerializer, DillSerializer
from sitq.serializer import JsonSerializer, PickleSerializer, Serializer
from sitq.testing import SerializerConformance


class TestJson(SerializerConformance):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return JsonSerializer()


class TestPickle(SerializerConformance):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return PickleSerializer()


class TestCloudpickle(SerializerConformance):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return CloudpickleSerializer()


class TestDill(SerializerConformance):
    @pytest.fixture
    def serializer(self) -> Serializer:
        return DillSerializer()
