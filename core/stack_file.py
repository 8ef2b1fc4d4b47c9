"""The dev stack's rendezvous file.

``ordersaga dev`` writes ``<data-dir>/stack.json`` once its servers are up, so
``ordersaga api``/``worker``/``migrate`` started with the same ``--data-dir``
join that stack (same database, Temporal and keys) instead of starting their
own. The file is removed when the stack stops.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from core.settings import Settings

STACK_FILE = "stack.json"


@dataclass(frozen=True)
class StackInfo:
    pid: int
    database_url: str
    temporal_address: str
    temporal_ui_url: str
    api_url: str
    smtp_port: int


def write_stack_file(data_dir: Path, info: StackInfo) -> None:
    path = data_dir / STACK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    tmp.replace(path)  # atomic: a reader never sees half a file


def read_stack_file(data_dir: Path) -> StackInfo | None:
    """The running stack of ``data_dir``, or None when there is none (or it died)."""
    path = data_dir / STACK_FILE
    try:
        info = StackInfo(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    return info


def remove_stack_file(data_dir: Path) -> None:
    (data_dir / STACK_FILE).unlink(missing_ok=True)


def join_stack(settings: Settings) -> Settings:
    """``settings`` with a running dev stack's database, Temporal and SMTP port
    filled in where they are not configured (the one lookup every command uses)."""
    if (
        settings.database_url
        and settings.temporal_address
        and ("smtp_port" in settings.model_fields_set)
    ):
        return settings  # nothing left to fill in: no need to look for a stack
    stack = read_stack_file(settings.data_dir)
    update: dict[str, object] = {}
    if stack is not None:
        if not settings.database_url:
            update["database_url"] = stack.database_url
        if not settings.temporal_address:
            update["temporal_address"] = stack.temporal_address
        if "smtp_port" not in settings.model_fields_set:
            update["smtp_port"] = stack.smtp_port
    return settings.model_copy(update=update)
