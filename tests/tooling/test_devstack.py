"""``ordersaga dev`` as a user runs it: a real process tree, real ports, Ctrl-C.

One stack is started for the module and reused; the last test stops it with
SIGINT, checks that nothing is left running, and starts it again on the same
data directory to find the same data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from core.db import SessionFactory
from core.models import CaughtMail
from core.stack_file import STACK_FILE, read_stack_file

ORDERSAGA = str(Path(sys.executable).parent / "ordersaga")
START_TIMEOUT = 180.0  # generous: the machine is shared with other test runs
STOP_TIMEOUT = 90.0

_INHERITED_SETTINGS = ("DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY")


def clean_env() -> dict[str, str]:
    """The environment of a fresh shell: no database or Temporal configured."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORDERSAGA_") and k not in _INHERITED_SETTINGS
    }


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class Stack:
    data_dir: Path
    api_port: int
    temporal_port: int
    ui_port: int
    smtp_port: int
    log: Path
    metrics_port: int = 0  # the API's /metrics; 0 = none
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_offset: int = field(default=0)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def argv(self) -> list[str]:
        return [
            ORDERSAGA,
            "dev",
            "--data-dir",
            str(self.data_dir),
            "--api-port",
            str(self.api_port),
            "--temporal-port",
            str(self.temporal_port),
            "--ui-port",
            str(self.ui_port),
            "--smtp-port",
            str(self.smtp_port),
            "--api-metrics-port",
            str(self.metrics_port),
            "--no-worker",
        ]

    def start(self) -> None:
        self._log_offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv(), env=clean_env(), stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        # The stack writes stack.json once the API answers /readyz.
        while read_stack_file(self.data_dir) is None:
            if self.process.poll() is not None:
                pytest.fail(
                    f"ordersaga dev exited with {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"ordersaga dev did not come up:\n{self.output()}")
            time.sleep(0.2)

    def output(self) -> str:
        """What this start printed."""
        with self.log.open("rb") as out:
            out.seek(self._log_offset)
            return out.read().decode(errors="replace")

    def tree(self) -> list[psutil.Process]:
        """Every process of the stack: the supervisor, its children and PostgreSQL."""
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        procs = [root, *root.children(recursive=True)]
        postmaster = self.data_dir / "postgres" / "postmaster.pid"
        if postmaster.exists():
            procs.append(psutil.Process(int(postmaster.read_text().split()[0])))
        return procs

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """Last resort for teardown after a failure: leave nothing running."""
        if self.process is None or self.process.poll() is not None:
            return
        procs = self.tree()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.stop()
            return
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("devstack")
    api, temporal, ui, smtp, metrics = free_ports(5)
    running = Stack(
        base / "data", api, temporal, ui, smtp, log=base / "dev.log", metrics_port=metrics
    )
    running.start()
    yield running
    running.kill()


def login(stack: Stack, email: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{stack.api}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


CUSTOMER = {"email": "ada@example.com", "password": "correct-horse", "name": "Ada"}


def test_serves_auth_and_catalog_over_http(stack: Stack) -> None:
    assert httpx.get(f"{stack.api}/readyz").status_code == 200

    registered = httpx.post(f"{stack.api}/auth/register", json=CUSTOMER)
    assert registered.status_code == 201, registered.text
    headers = login(stack, CUSTOMER["email"], CUSTOMER["password"])
    me = httpx.get(f"{stack.api}/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["email"] == CUSTOMER["email"]

    products = httpx.get(f"{stack.api}/products", params={"limit": 100}).json()
    assert products["total"] >= 12  # the demo catalog, seeded on first start


def test_seeded_admin_password_is_printed_once_and_works(stack: Stack) -> None:
    printed = re.findall(r"password\s+(\S+)", stack.output())
    assert len(printed) == 1, stack.output()
    headers = login(stack, "admin@ordersaga.dev", printed[0])
    created = httpx.post(
        f"{stack.api}/products",
        headers=headers,
        json={
            "sku": "DEV-STACK-1",
            "name": "Made by the seeded admin",
            "category": "test",
            "price": 500,
            "currency": "USD",
            "stock": 3,
        },
    )
    assert created.status_code == 201, created.text


def test_api_metrics_are_on_their_own_port_not_the_public_one(stack: Stack) -> None:
    assert httpx.get(f"{stack.api}/metrics").status_code == 404
    page = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics")
    assert page.status_code == 200
    assert "ordersaga_http_requests_total" in page.text
    assert f"http://127.0.0.1:{stack.metrics_port}/metrics" in stack.output()


def test_temporal_ui_answers_http(stack: Stack) -> None:
    response = httpx.get(f"http://127.0.0.1:{stack.ui_port}/", follow_redirects=True)
    assert response.status_code == 200
    assert "<html" in response.text.lower()


def test_a_second_stack_on_the_same_data_dir_or_ports_is_refused(stack: Stack) -> None:
    same_ports = subprocess.run(
        stack.argv(), env=clean_env(), capture_output=True, text=True, timeout=60
    )
    assert same_ports.returncode == 2
    assert same_ports.stderr == (
        f"ordersaga: port {stack.api_port} (API) is already in use; pass --api-port\n"
    )

    flags = ("--api-port", "--temporal-port", "--ui-port", "--smtp-port", "--api-metrics-port")
    other_ports = [str(port) for port in free_ports(len(flags))]
    argv = stack.argv()
    for flag, port in zip(flags, other_ports, strict=True):
        argv[argv.index(flag) + 1] = port
    same_dir = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert same_dir.returncode == 2
    assert "another `ordersaga dev` is already running" in same_dir.stderr
    assert read_stack_file(stack.data_dir) is not None  # the running stack is untouched


async def _pollers(address: str, task_queue: str) -> int:
    client = await Client.connect(address)
    found = 0
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=task_queue), task_queue_type=kind
            )
        )
        found += len(described.pollers)
    return found


async def test_a_worker_started_beside_the_stack_joins_it(stack: Stack) -> None:
    pytest.importorskip("worker.main", reason="the worker is not written yet")
    info = read_stack_file(stack.data_dir)
    assert info is not None
    assert await _pollers(info.temporal_address, "orders") == 0  # --no-worker: nobody polls

    worker = subprocess.Popen(
        [ORDERSAGA, "worker", "--data-dir", str(stack.data_dir)],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while await _pollers(info.temporal_address, "orders") == 0:
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
            assert time.monotonic() < deadline, "the worker never polled the orders queue"
            time.sleep(0.5)
        worker.send_signal(signal.SIGINT)
        out, _ = worker.communicate(timeout=STOP_TIMEOUT)
        assert worker.returncode == 0, out.decode(errors="replace")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def _alive(procs: list[psutil.Process]) -> list[Any]:
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc.cmdline())
    return alive


def test_ctrl_c_stops_everything_and_a_restart_finds_the_same_data(stack: Stack) -> None:
    procs = stack.tree()
    names = " ".join(" ".join(p.cmdline()) for p in procs)
    assert "temporal server start-dev" in names and "tooling.cli api" in names
    assert "postgres" in names

    assert stack.stop() == 0, stack.output()
    assert _alive(procs) == []
    assert not (stack.data_dir / STACK_FILE).exists()

    stack.start()
    # The admin's password is never shown again.
    assert "Admin account" not in stack.output()
    assert re.findall(r"password\s+(\S+)", stack.output()) == []
    headers = login(stack, CUSTOMER["email"], CUSTOMER["password"])
    assert httpx.get(f"{stack.api}/users/me", headers=headers).status_code == 200
    found = httpx.get(f"{stack.api}/products", params={"q": "DEV-STACK-1"}).json()
    skus = [product["sku"] for product in found["items"]]
    assert "DEV-STACK-1" in skus  # the product the admin made before the restart

    procs = stack.tree()
    assert stack.stop() == 0, stack.output()
    assert _alive(procs) == []


async def test_smtp_sink_keeps_what_it_catches(sessions: SessionFactory) -> None:
    from tooling.smtp_sink import start_smtp_sink

    (port,) = free_ports(1)
    server = await start_smtp_sink(sessions, "127.0.0.1", port)
    try:
        message = EmailMessage()
        message["From"] = "orders@ordersaga.dev"
        message["To"] = "ada@example.com, babbage@example.com"
        message["Subject"] = "Your order is confirmed"
        message["Message-ID"] = "<order-1@ordersaga.dev>"
        message.set_content("Thank you, Ada.\nTotal: 25.98 USD\n")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(message)

        await asyncio.to_thread(send)
    finally:
        server.close()
        await server.wait_closed()
    async with sessions() as session:
        caught = (await session.scalars(select(CaughtMail))).all()
    assert len(caught) == 1
    mail = caught[0]
    assert (mail.mail_from, mail.subject, mail.message_id) == (
        "orders@ordersaga.dev",
        "Your order is confirmed",
        "<order-1@ordersaga.dev>",
    )
    assert mail.rcpt_to == "ada@example.com, babbage@example.com"
    assert mail.body == "Thank you, Ada.\nTotal: 25.98 USD\n"


@pytest.mark.slow
def test_two_stacks_run_side_by_side_with_their_own_data(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    stacks = []
    for name in ("left", "right"):
        base = tmp_path_factory.mktemp(name)
        api, temporal, ui, smtp = free_ports(4)
        stacks.append(Stack(base / "data", api, temporal, ui, smtp, log=base / "dev.log"))
    try:
        for running in stacks:
            running.start()
        left, right = stacks
        assert httpx.post(f"{left.api}/auth/register", json=CUSTOMER).status_code == 201
        login(left, CUSTOMER["email"], CUSTOMER["password"])
        refused = httpx.post(
            f"{right.api}/auth/login",
            json={"email": CUSTOMER["email"], "password": CUSTOMER["password"]},
        )
        assert refused.status_code == 401  # the right stack has its own database
        for running in stacks:
            assert running.stop() == 0, running.output()
    finally:
        for running in stacks:
            running.kill()
