"""Prometheus metrics for sitq, built on sitq's public lifecycle hooks.

Installed, the plugin counts every task event of the process into prometheus_client's default registry,
with no code. A worker serves them on ``$SITQ_PROMETHEUS_PORT`` when that is set; `serve()` does it from
code. `TaskMetrics` is the same plugin as an object, for a registry of your own.

Every process that uses sitq imports this package to reach `sitq_prometheus.plugin`, so its names are
imported on first use and prometheus_client only with them.
"""

import logging
from typing import TYPE_CHECKING

from sitq.plugins import lazy_imports

if TYPE_CHECKING:
    from sitq_prometheus.metrics import TaskMetrics as TaskMetrics
    from sitq_prometheus.server import serve as serve

__all__ = ["TaskMetrics", "serve"]

__getattr__ = lazy_imports(
    __name__, {"TaskMetrics": "sitq_prometheus.metrics", "serve": "sitq_prometheus.server"}
)

# A library logs only where the application configured logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
