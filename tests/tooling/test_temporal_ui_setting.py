"""The Temporal Web UI link: the dev stack hands its UI port to the API; elsewhere it is opt-in."""

from __future__ import annotations

from pathlib import Path

from core.settings import DEV_TEMPORAL_UI_URL, Settings
from tooling.devstack_config import DevOptions, child_env


def test_the_dev_stack_passes_its_ui_port_to_the_processes_it_starts(tmp_path: Path) -> None:
    options = DevOptions(data_dir=tmp_path, ui_port=18233)
    env = child_env(
        options,
        "postgresql://x@127.0.0.1/db",
        "127.0.0.1:7233",
        temporal_ui_url="http://127.0.0.1:18233",
    )
    assert env["ORDERSAGA_TEMPORAL_UI_URL"] == "http://127.0.0.1:18233"


def test_the_ui_base_is_the_dev_servers_in_dev_and_none_elsewhere_unless_set() -> None:
    dev = Settings.model_construct(mode="dev", temporal_ui_url=None)
    assert dev.temporal_ui_base == DEV_TEMPORAL_UI_URL
    production = Settings.model_construct(mode="production", temporal_ui_url=None)
    assert production.temporal_ui_base is None
    configured = Settings.model_construct(
        mode="production", temporal_ui_url="https://temporal.example.com/"
    )
    assert configured.temporal_ui_base == "https://temporal.example.com"
