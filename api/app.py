"""Building a FastAPI app of ordersaga: shared lifespan, errors and limits.

Both the main API and the standalone auth service are built here, so they
answer errors in the same shape and share how they reach PostgreSQL,
Temporal and the signing keys.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api import metrics
from api.body_limit import BodySizeLimit, RouteBodyLimit
from api.docs import install_offline_docs
from api.errors import install_error_handlers
from api.keys import signing_keys, static_verification_keys
from api.request_context import RequestContextMiddleware
from api.tokens import KeyStore, TokenIssuer, TokenVerifier
from core import tracing
from core.db import SessionFactory, create_engine, create_session_factory
from core.migrate import resolve_database_url
from core.settings import Settings, get_settings
from core.temporal import connect

log = logging.getLogger(__name__)


@dataclass
class Resources:
    """What routes need, created once per app in its lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    keys: KeyStore
    verifier: TokenVerifier
    issuer: TokenIssuer | None  # only where private keys are configured
    temporal: Client | None = None
    temporal_error: str | None = "not connected yet"
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def _connect_temporal(resources: Resources) -> None:
    # The API serves catalog and auth even while Temporal is away; /readyz
    # says so, and checkout answers 503 until the client is connected.
    delay = 0.5
    while resources.temporal is None:
        try:
            resources.temporal = await connect(resources.settings)
            resources.temporal_error = None
        except Exception as err:  # any failure to connect is retried
            resources.temporal_error = f"cannot reach Temporal: {type(err).__name__}"
            log.warning("temporal not reachable yet, retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def create_resources(settings: Settings) -> Resources:
    # Sized by the same settings as the worker's, so the chart's connection
    # budget (docs/DEPLOY.md) holds for the API and auth processes too.
    engine = create_engine(
        resolve_database_url(settings),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        prepared_statements=settings.db_prepared_statements,
    )
    sessions = create_session_factory(engine)
    keys = KeyStore(
        static_verification_keys(settings),
        jwks_url=settings.jwks_url,
        cache_seconds=settings.jwks_cache_seconds,
    )
    signers = signing_keys(settings)
    issuer = (
        TokenIssuer(
            signers[0],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        if signers
        else None
    )
    verifier = TokenVerifier(
        keys, sessions, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    return Resources(settings, engine, sessions, keys, verifier, issuer)


def build_app(
    *,
    title: str,
    settings: Settings | None,
    routers: Sequence[APIRouter],
    use_temporal: bool,
    temporal_client: Client | None = None,
    body_limits: Sequence[RouteBodyLimit] = (),
) -> FastAPI:
    """An app with ordersaga's lifespan, error shape and body limit.

    ``temporal_client`` lets tests hand in a client connected to their server;
    ``body_limits`` names the routes that take larger bodies than the app's.
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources = create_resources(settings)
        if temporal_client is not None:
            resources.temporal, resources.temporal_error = temporal_client, None
        elif use_temporal:
            resources._tasks.append(asyncio.create_task(_connect_temporal(resources)))
        else:
            resources.temporal_error = None
        app.state.resources = resources
        try:
            yield
        finally:
            for task in resources._tasks:
                task.cancel()
            await resources.engine.dispose()

    # docs_url/redoc_url off: FastAPI's own load their assets from a CDN.
    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    install_offline_docs(app)
    app.state.use_temporal = use_temporal
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, routes=body_limits)
    # Added last, so outermost: every answer is counted and carries a request ID.
    app.state.metrics = metrics.ApiMetrics()
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestContextMiddleware)
    # No /metrics route: the page is served on a port of its own (api/serve.py).
    for router in routers:
        app.include_router(router)
    tracing.setup(settings, "ordersaga-api" if use_temporal else "ordersaga-auth")
    tracing.instrument_app(app, settings)
    return app
