"""What ``ordersaga dev`` prints once the stack is up: where each part listens, what to try."""

from __future__ import annotations

from core.settings import Settings
from tooling.devstack_config import DevOptions


def print_banner(
    settings: Settings, options: DevOptions, temporal_address: str, ui_url: str
) -> None:
    o = options
    api = f"http://127.0.0.1:{o.api_port}"
    dir_flag = f" --data-dir {options.data_dir}"
    api_metrics = (
        f"http://127.0.0.1:{o.api_metrics_port}/metrics"
        if o.api_metrics_port
        else "off (ORDERSAGA_API_METRICS_PORT=0)"
    )
    worker = (
        f'polling task queue "{settings.task_queue}", '
        f"metrics at http://127.0.0.1:{o.worker_port}/metrics"
        if o.run_worker
        else f"not started (--no-worker): run `ordersaga worker{dir_flag}`"
    )
    print(
        "\nordersaga dev stack is up\n"
        f"  Shop         {api}/\n"
        f"  API docs     {api}/docs\n"
        f"  API metrics  {api_metrics}\n"
        f"  Temporal UI  {ui_url}   (gRPC {temporal_address})\n"
        f"  SMTP sink    127.0.0.1:{o.smtp_port}   (admins read it at {api}/admin/mail)\n"
        f"  Worker       {worker}\n"
        f"  Data         {options.data_dir}\n"
        "\nTry:\n"
        f"  curl -s {api}/products\n"
        f"  curl -s -X POST {api}/auth/register -H 'Content-Type: application/json' \\\n"
        """    -d '{"email":"ada@example.com","password":"correct-horse","name":"Ada"}'\n"""
        f"  curl -s -X POST {api}/auth/login -H 'Content-Type: application/json' \\\n"
        """    -d '{"email":"ada@example.com","password":"correct-horse"}'\n"""
        "\nThe README walks through a checkout. Press Ctrl-C to stop.\n",
        flush=True,
    )
