"""The bench's API process: the product API plus the ceilings' endpoints.

``python -m tooling.bench.server --port P`` serves exactly the app ``ordersaga
api`` serves (``api.main.create_app``), with one more router mounted under
``/bench`` for ceilings (a), (b), (c) and (e). They sit in the same process, behind
the same middleware, authentication and database pool as ``POST /orders``, so
the saga and its ceilings pay the same HTTP costs and differ only in what is
behind the endpoint. Each endpoint answers once its work is done: the
workflow has completed, or the transaction has committed.

Settings come from the environment, as for ``ordersaga api``.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from api.checkout import fingerprint, invalid_order_problem, order_request
from api.deps import CurrentUser, ResourcesDep, TemporalClient
from api.errors import ProblemError
from api.main import create_app
from api.order_headers import IdempotencyKey
from api.schemas.orders import OrderCreate
from core.ordering import InvalidOrder
from core.settings import Settings
from tooling.bench.ceilings import CEILING_TASK_QUEUE, EmptyWorkflow, NoopSagaWorkflow
from tooling.bench.floor import OutOfStock, place_in_one_transaction

router = APIRouter(prefix="/bench", tags=["bench"], include_in_schema=False)


class WorkflowDone(BaseModel):
    workflow_id: str


class FloorDone(BaseModel):
    id: uuid.UUID
    status: str
    total: int  # minor units
    currency: str


class TokenChecked(BaseModel):
    user_id: uuid.UUID


@router.post("/token-check")
async def token_check(principal: CurrentUser) -> TokenChecked:
    """Ceiling (e): verify the caller's token (signature, claims, revocation) and nothing else.

    What every authenticated request pays before its own work: the
    middleware, logging, metrics and the token check, in the same uvicorn.
    """
    return TokenChecked(user_id=principal.user_id)


@router.post("/empty-workflow")
async def empty_workflow(principal: CurrentUser, client: TemporalClient) -> WorkflowDone:
    """Ceiling (a): start an empty workflow and wait for its result."""
    workflow_id = f"bench-empty-{uuid.uuid4()}"
    await client.execute_workflow(EmptyWorkflow.run, id=workflow_id, task_queue=CEILING_TASK_QUEUE)
    return WorkflowDone(workflow_id=workflow_id)


@router.post("/noop-saga")
async def noop_saga(principal: CurrentUser, client: TemporalClient) -> WorkflowDone:
    """Ceiling (b): the saga's steps as no-op activities, waited for to the end."""
    order_id = str(uuid.uuid4())
    workflow_id = f"bench-noop-{order_id}"
    await client.execute_workflow(
        NoopSagaWorkflow.run, order_id, id=workflow_id, task_queue=CEILING_TASK_QUEUE
    )
    return WorkflowDone(workflow_id=workflow_id)


@router.post("/one-transaction")
async def one_transaction(
    principal: CurrentUser, key: IdempotencyKey, resources: ResourcesDep, body: OrderCreate
) -> FloorDone:
    """Ceiling (c): every write of a confirmed saga in one PostgreSQL transaction."""
    try:
        order = await place_in_one_transaction(
            resources.sessions,
            customer_id=principal.user_id,
            key=key,
            request_fingerprint=fingerprint(body),
            request=order_request(body),
            provider=resources.settings.payment_provider,
        )
    except InvalidOrder as err:
        raise invalid_order_problem(err) from None
    except OutOfStock as err:
        raise ProblemError(409, f"not enough stock for {err.sku}", code="out-of-stock") from None
    return FloorDone(
        id=order.order_id, status="confirmed", total=order.total, currency=order.currency
    )


def build_bench_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.include_router(router)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    from core.logging import configure_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings, process="api")
    # log_config=None: uvicorn logs through ours, as `ordersaga api` does.
    uvicorn.run(build_bench_app(settings), host=args.host, port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
