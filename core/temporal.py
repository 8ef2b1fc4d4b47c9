"""Connecting to Temporal from settings: a dev server, a cluster or Temporal Cloud."""

from __future__ import annotations

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core import tracing
from core.settings import Settings
from core.stack_file import join_stack
from core.temporal_context import LogContextInterceptor


def resolve_temporal_address(settings: Settings) -> str:
    """TEMPORAL_ADDRESS, or the dev server of a running stack in the data directory."""
    address = settings.temporal_address or join_stack(settings).temporal_address
    if not address:
        raise RuntimeError(
            "TEMPORAL_ADDRESS is not set and no dev stack is running in "
            f"{settings.data_dir}; start one with `ordersaga dev` or set TEMPORAL_ADDRESS"
        )
    return address


def tls_config(settings: Settings) -> TLSConfig | bool:
    cert, key, ca = (
        settings.temporal_tls_client_cert_path,
        settings.temporal_tls_client_key_path,
        settings.temporal_tls_server_ca_cert_path,
    )
    if cert or key or ca:
        return TLSConfig(
            client_cert=cert.read_bytes() if cert else None,
            client_private_key=key.read_bytes() if key else None,
            server_root_ca_cert=ca.read_bytes() if ca else None,
        )
    # An API key (Temporal Cloud) implies TLS.
    return settings.temporal_tls or settings.temporal_api_key is not None


def interceptors(settings: Settings) -> list[Interceptor]:
    """Request IDs into the saga's logs, and its trace when tracing is on.

    Workers built on the client use them too.
    """
    chosen: list[Interceptor] = [LogContextInterceptor()]
    if (tracer := tracing.temporal_interceptor(settings)) is not None:
        chosen.append(tracer)
    return chosen


async def connect(
    settings: Settings, *, address: str | None = None, runtime: Runtime | None = None
) -> Client:
    """``runtime``: the worker's, exporting the SDK's metrics (None: the default)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        address or resolve_temporal_address(settings),
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls_config(settings),
        interceptors=interceptors(settings),
        runtime=runtime,
    )
