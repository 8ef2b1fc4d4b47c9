"""The bench's SMTP sink, as its own process: ``python -m tooling.bench.smtp --port P``.

The saga's confirmation mail goes to a real SMTP server, as in ``ordersaga
dev``, which serves the same sink (``tooling.smtp_sink``) inside its supervisor.
Here it runs apart, so its work is neither charged to the load generator's
process nor slowed by it. It stores what it catches in ``caught_mail`` of
``DATABASE_URL``, where the audit looks for mail delivered twice.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from core.db import create_engine, create_session_factory
from core.settings import Settings
from tooling.smtp_sink import start_smtp_sink


async def serve(database_url: str, host: str, port: int) -> int:
    engine = create_engine(database_url, pool_size=2)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await start_smtp_sink(create_session_factory(engine), host, port)
        await stop.wait()
        server.close()
        await server.wait_closed()
        return 0
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    from core.logging import configure_logging

    parser = argparse.ArgumentParser(description="the bench's SMTP sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings, process="smtp")
    assert settings.database_url, "the bench passes DATABASE_URL"
    return asyncio.run(serve(settings.database_url, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
