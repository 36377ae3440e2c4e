"""The HTTP endpoint that Prometheus scrapes: at most one per process, started on request, never at import."""

from __future__ import annotations

import logging
import os
import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)

PORT_VARIABLE = "SITQ_PROMETHEUS_PORT"
ADDR_VARIABLE = "SITQ_PROMETHEUS_ADDR"
DEFAULT_ADDR = "0.0.0.0"  # prometheus_client's default: Prometheus usually scrapes from another host

_lock = threading.Lock()
_server: WSGIServer | None = None


def serve(port: int, addr: str = DEFAULT_ADDR) -> int:
    """Serve the metrics of prometheus_client's default registry at ``http://ADDR:PORT/metrics`` from a
    daemon thread, and return the port (port 0 picks a free one).

    One endpoint per process: once it runs, later calls start nothing and return its port; one that asks
    for another port is logged as a warning. An address that cannot be bound raises `OSError`.
    """
    global _server
    with _lock:
        if _server is None:
            _server, _ = start_http_server(port, addr)
            logger.info("sitq metrics are served at http://%s:%d/metrics", addr, _server.server_port)
        elif port not in (0, _server.server_port):
            logger.warning(
                "sitq metrics are already served on port %d in this process; not also on %d",
                _server.server_port,
                port,
            )
        return _server.server_port


def serve_from_environment() -> int | None:
    """`serve()` on ``$SITQ_PROMETHEUS_PORT`` and ``$SITQ_PROMETHEUS_ADDR`` if the port is set, and return
    it. A value that is not a port, or a port that cannot be bound, is logged and nothing is served: the
    worker runs on without its metrics endpoint."""
    value = os.environ.get(PORT_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > 65535:
        logger.warning("%s=%r is not a port number; sitq metrics are not served", PORT_VARIABLE, value)
        return None
    addr = os.environ.get(ADDR_VARIABLE, "").strip() or DEFAULT_ADDR
    try:
        return serve(int(value), addr)
    except OSError as exc:
        logger.warning("sitq metrics cannot be served on %s port %s: %s", addr, value, exc)
        return None
