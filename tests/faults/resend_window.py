"""Measure the resend window: from the mail relay's accept to the row marked sent.

    .venv/bin/python -m tests.faults.resend_window --messages 300

A crash inside this window is the only way a message is sent twice (the retry
finds the row still ``sending``). It runs the real notification activity
against an embedded PostgreSQL and a local aiosmtpd relay (in its own thread,
as a relay is its own process) and prints the window's distribution. The
mailer keeps its connection alive between messages, so no goodbye (QUIT)
follows a message, inside the window or after it. Figures go to
docs/RELIABILITY.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from activities import mailer
from activities.messages import NotificationKind
from activities.notifications import NotificationActivities, NotifyInput, _Recipient
from activities.sms import LoggingSms
from core.db import create_engine, create_session_factory
from core.migrate import upgrade
from tests.faults.processes import Postgres
from tests.support.order_factory import create_order
from tests.support.smtp_relay import RelayInbox, free_port

accepted: dict[str, float] = {}  # message key -> when the relay's 250 to DATA arrived
sending = ""  # the message key being sent (one at a time here)
handbacks: list[float] = []  # of which: from the relay's accept back on the event loop


class _TimedSMTP(mailer._ReceiptSMTP):
    def data(self, msg: Any) -> tuple[int, bytes]:
        answer = super().data(msg)
        accepted[sending] = time.perf_counter()
        return answer


class _TimedMailer(mailer.SmtpMailer):
    def _connect(self) -> mailer._ReceiptSMTP:
        return _TimedSMTP(self._host, self._port, timeout=self._timeout)

    async def send(self, *, to: str, subject: str, body: str, message_key: str) -> str | None:
        global sending
        sending = message_key
        receipt = await super().send(to=to, subject=subject, body=body, message_key=message_key)
        handbacks.append(time.perf_counter() - accepted[message_key])
        return receipt


windows: list[float] = []


class _TimedActivities(NotificationActivities):
    async def _mark_sent(
        self,
        order_id: uuid.UUID,
        kind: NotificationKind,
        recipient: _Recipient,
        receipt: str | None,
    ) -> None:
        await super()._mark_sent(order_id, kind, recipient, receipt)
        windows.append(time.perf_counter() - accepted[f"order-{order_id}-{kind.value}"])


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.2f}"


async def measure(messages: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="osw-"))
    postgres = Postgres(workdir / "pg")
    controller = Controller(RelayInbox(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        url = await asyncio.to_thread(postgres.start_first)
        await asyncio.to_thread(upgrade, url)
        engine = create_engine(url, pool_size=5)
        sessions = create_session_factory(engine)
        acts_mailer = _TimedMailer("127.0.0.1", controller.port, "orders@shop.test")
        acts = _TimedActivities(sessions, acts_mailer, LoggingSms())
        for _ in range(messages):
            order = await create_order(sessions)
            await ActivityEnvironment().run(
                acts.send, NotifyInput(str(order.id), "order_confirmed")
            )
        await asyncio.to_thread(acts_mailer.close)
        await engine.dispose()
    finally:
        controller.stop()
        await asyncio.to_thread(postgres.destroy)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"resend window over {len(windows)} messages (ms): "
        f"median {statistics.median(windows) * 1000:.2f}, p95 {_ms(windows, 0.95)}, "
        f"p99 {_ms(windows, 0.99)}, max {max(windows) * 1000:.2f}\n"
        f"of which the hand-back from the SMTP thread to the event loop (ms): median "
        f"{statistics.median(handbacks) * 1000:.2f}, p99 {_ms(handbacks, 0.99)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.resend_window", description=__doc__
    )
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(measure(args.messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
