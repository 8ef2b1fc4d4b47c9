"""The dev stack's Temporal: a configured cluster, or a dev server it starts and waits for."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from temporalio.client import Client

from core.settings import Settings
from core.temporal import connect
from tooling.devstack_config import (
    STARTUP_TIMEOUT,
    TEMPORAL_DB,
    TEMPORAL_LOG,
    DevOptions,
    StackError,
    first_line,
)
from tooling.processes import Child, NotReady, answers, spawn, wait_until
from tooling.temporal_dev import dev_server_argv, ensure_search_attributes


async def start_temporal(
    settings: Settings,
    options: DevOptions,
    *,
    started: Callable[[Child], None],
    check: Callable[[], None],
) -> str:
    """Temporal's address: the configured one (checked), or a dev server started here.

    ``started`` gets the dev server's child at once, so the stack stops it even
    if it never answers; ``check`` raises when a stop was requested meanwhile.
    """
    namespace = settings.temporal_namespace
    if settings.temporal_address:
        address = settings.temporal_address
        try:
            client = await connect(settings, address=address)
        except Exception as err:  # connection errors, told in one line
            raise StackError(f"cannot reach Temporal at {address}: {first_line(err)}") from err
        with contextlib.suppress(Exception):  # a managed cluster may refuse; it is optional
            await ensure_search_attributes(client, namespace)
        return address
    o = options
    argv = dev_server_argv(
        port=o.temporal_port, db_file=options.data_dir / TEMPORAL_DB, ui_port=o.ui_port
    )
    if namespace != "default":
        argv += ["--namespace", namespace]
    print(f"ordersaga: starting the Temporal dev server on 127.0.0.1:{o.temporal_port}")
    log_path = options.data_dir / TEMPORAL_LOG
    with log_path.open("ab") as log_file:
        child = spawn(
            "Temporal dev server", argv, dict(os.environ), output=log_file, stop_timeout=20.0
        )
    started(child)
    address = f"127.0.0.1:{o.temporal_port}"
    client = await _wait_for_dev_server(settings, address, child, log_path, check)
    # The flags register them on a new database; this also covers a
    # database made before an attribute was added.
    await ensure_search_attributes(client, namespace)
    return address


async def _wait_for_dev_server(
    settings: Settings,
    address: str,
    child: Child,
    log_path: Path,
    check_stop: Callable[[], None],
) -> Client:
    def check() -> None:
        check_stop()
        if not child.running:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise StackError(f"the Temporal dev server exited: {tail[0][:300]} (see {log_path})")

    try:
        return await wait_until(
            answers(lambda: connect(settings, address=address)),
            timeout=STARTUP_TIMEOUT,
            check=check,
        )
    except NotReady:
        raise StackError(
            f"the Temporal dev server did not answer in time; see {log_path}"
        ) from None
