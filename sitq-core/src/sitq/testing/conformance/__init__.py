"""The backend contract, split by concern, each checked at the `Backend` protocol with a controlled clock
and end to end through `TaskQueue` and `Worker` on the real clock. Every backend sitq ships runs it all,
as `BackendConformance`; so should yours.

Each concern is a class of its own, for a backend under construction to run one at a time (subclass
`StorageConformance` first, say). The tests of a `Capability` skip, naming it, on a backend that does not
declare it; a backend that declares it provides the fixture its tests need (`backend_url`,
`application_transaction`: see `ConformanceFixtures`).
"""

from sitq.testing.conformance.admin import AdminConformance
from sitq.testing.conformance.cancellation import CancellationConformance
from sitq.testing.conformance.claim import ClaimConformance
from sitq.testing.conformance.lease import LeaseConformance
from sitq.testing.conformance.limits import LimitsConformance
from sitq.testing.conformance.outcome import OutcomeConformance
from sitq.testing.conformance.schedules import ScheduleConformance
from sitq.testing.conformance.shared_store import SharedStoreConformance
from sitq.testing.conformance.signing import SigningConformance
from sitq.testing.conformance.storage import StorageConformance
from sitq.testing.conformance.support import ApplicationTransaction, ConformanceFixtures, lacking, requires
from sitq.testing.conformance.transactions import TransactionalEnqueueConformance
from sitq.testing.conformance.unique import UniqueConformance
from sitq.testing.conformance.worker import WorkerConformance
from sitq.testing.conformance.workflow import WorkflowConformance

__all__ = [
    "AdminConformance",
    "ApplicationTransaction",
    "BackendConformance",
    "CancellationConformance",
    "ClaimConformance",
    "ConformanceFixtures",
    "LeaseConformance",
    "LimitsConformance",
    "OutcomeConformance",
    "ScheduleConformance",
    "SharedStoreConformance",
    "SigningConformance",
    "StorageConformance",
    "TransactionalEnqueueConformance",
    "UniqueConformance",
    "WorkerConformance",
    "WorkflowConformance",
    "lacking",
    "requires",
]


class BackendConformance(
    StorageConformance,
    ClaimConformance,
    LeaseConformance,
    OutcomeConformance,
    CancellationConformance,
    WorkflowConformance,
    AdminConformance,
    WorkerConformance,
    SharedStoreConformance,
    TransactionalEnqueueConformance,
    SigningConformance,
    UniqueConformance,
    ScheduleConformance,
    LimitsConformance,
):
    """The whole backend suite. Subclass it and override the `backend` fixture to return a new,
    unconnected backend on an empty store; for a backend that declares `Capability.SHARED_STORE`, also
    `backend_url`, and for `Capability.TRANSACTIONAL_ENQUEUE`, `application_transaction`
    (`ConformanceFixtures` says what each returns)."""
