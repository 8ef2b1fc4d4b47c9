"""Running an app of ordersaga as its process does: uvicorn on the public
port, and its Prometheus page on a metrics port of its own.

``ordersaga api`` and ``ordersaga auth`` both start here, so the metrics
page is never on a port clients reach (it shows orders accepted and process
internals). A metrics port of 0 serves no metrics page at all.
"""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import FastAPI

from api.metrics import ApiMetrics, metrics_server


async def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    metrics_port: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (or ``stop``, for tests)."""
    # log_config=None: uvicorn's loggers go through ours (text in dev, JSON otherwise).
    # Proxy headers stay as uvicorn ships them: X-Forwarded-For is believed
    # only from FORWARDED_ALLOW_IPS (default loopback), which the login
    # throttle's client address depends on (api/auth/throttle.py).
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None))
    # The same host as the public port: in a pod, Prometheus scrapes the pod
    # address; what keeps the page private is that no Service or Ingress of
    # clients routes to this port.
    metrics = None
    if metrics_port:
        api_metrics: ApiMetrics = app.state.metrics
        metrics = metrics_server(api_metrics, host=host, port=metrics_port)
        await metrics.start()
    watcher = asyncio.create_task(_exit_on(stop, server)) if stop is not None else None
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if metrics is not None:
            await metrics.close()


async def _exit_on(stop: asyncio.Event, server: uvicorn.Server) -> None:
    await stop.wait()
    server.should_exit = True
