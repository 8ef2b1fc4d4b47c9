"""One PostgreSQL and one Temporal dev server of the fault suite's own, for the whole session.

They are separate from the rest of the suite's servers because these tests
stop, kill and restart them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.faults.stack import FaultStack, fault_stack


@pytest.fixture(scope="session")
async def faults() -> AsyncIterator[FaultStack]:
    async with fault_stack() as stack:
        yield stack
