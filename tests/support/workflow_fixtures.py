"""Fixtures of the workflow tests: fake activities and a worker on the time-skipping server.

Registered for the whole suite through ``pytest_plugins`` in conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.support.saga_fakes import FakeActivities
from workflows.checkout import OrderWorkflow


@pytest.fixture
def fakes() -> FakeActivities:
    return FakeActivities()


@pytest.fixture
async def client(
    time_skipping_env: WorkflowEnvironment, task_queue: str, fakes: FakeActivities
) -> AsyncIterator[Client]:
    """A client whose task queue is served by OrderWorkflow over ``fakes``."""
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[OrderWorkflow],
        activities=fakes.all(),
    ):
        yield time_skipping_env.client
