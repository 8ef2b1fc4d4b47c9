"""Carry the API's request ID into the saga and its activities, for their log lines.

A Temporal header (``ordersaga-request-id``) travels with the workflow start,
its updates and signals, and every activity the workflow schedules; on the
worker the interceptors put it, with the workflow and order ID, into
``core.log_context``. One interceptor object serves both sides: given to
``Client.connect``, the worker built on that client picks it up too.

Headers are not part of what replay compares, so adding one changes no
workflow's determinism.
"""

from __future__ import annotations

from typing import Any

import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.worker
from temporalio import activity, workflow

from core import log_context

HEADER = "ordersaga-request-id"

_Headers = dict[str, temporalio.api.common.v1.Payload]


def _with_request_id(headers: Any) -> Any:
    rid = log_context.request_id.get()
    if rid is None:
        return headers
    payload = temporalio.converter.default().payload_converter.to_payloads([rid])[0]
    return {**headers, HEADER: payload}


def _request_id_of(headers: Any) -> str | None:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    value = temporalio.converter.default().payload_converter.from_payloads([payload], [str])[0]
    return value if isinstance(value, str) else None


class LogContextInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    """Request ID out through the client; request, workflow and order ID in on the worker."""

    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return _WorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        input.headers = _with_request_id(input.headers)
        # The rest of this request's log lines are about this saga.
        log_context.set_saga(input.id)
        return await super().start_workflow(input)

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        input.headers = _with_request_id(input.headers)
        log_context.set_saga(input.id)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        # Both halves carry it: the start for the saga, the update for its handler.
        input.start_workflow_input.headers = _with_request_id(input.start_workflow_input.headers)
        input.update_workflow_input.headers = _with_request_id(input.update_workflow_input.headers)
        log_context.set_saga(input.start_workflow_input.id)
        return await super().start_update_with_start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        input.headers = _with_request_id(input.headers)
        log_context.set_saga(input.id)
        await super().signal_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        info = activity.info()
        with log_context.bound(
            request_id=_request_id_of(input.headers),
            workflow_id=info.workflow_id,
            order_id=log_context.order_of(info.workflow_id),
        ):
            return await super().execute_activity(input)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    # Context variables set here live in the workflow's own asyncio tasks;
    # they change no workflow state, so replay is unaffected.

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        self._enter(input.headers)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        self._enter(input.headers)
        await super().handle_signal(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        self._enter(input.headers)
        return await super().handle_update_handler(input)

    @staticmethod
    def _enter(headers: Any) -> None:
        log_context.set_saga(workflow.info().workflow_id)
        log_context.request_id.set(_request_id_of(headers))


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> workflow.ActivityHandle[Any]:
        input.headers = _with_request_id(input.headers)
        return super().start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> workflow.ActivityHandle[Any]:
        input.headers = _with_request_id(input.headers)
        return super().start_local_activity(input)
