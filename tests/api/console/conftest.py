"""The console's page tests run the app with a client of the real Temporal dev server.

No worker polls their task queue: an order made with the factory has no saga,
so Temporal answers for it as for a finished one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from tests.support.e2e import api_client


@pytest.fixture
async def console(
    settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, temporal_client) as client:
        yield client
