"""A real `tether serve` (SQLite in a temp folder) and a real `tether sim databricks`, started
once per test session; the package is tested against them, not against mocks.

The tether binary is ``$TETHER_BIN``, else ``$CARGO_TARGET_DIR/debug/tether``, else the
repository's ``target/debug/tether`` (``cargo build`` first).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from airflow_provider_tether.hooks.tether import TetherClient, TetherEndpoint

REPO = Path(__file__).resolve().parents[3]


def tether_bin() -> str:
    if os.environ.get("TETHER_BIN"):
        return os.environ["TETHER_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = target / "debug" / "tether"
    if not path.exists():
        pytest.fail(f"no tether binary at {path}: run `cargo build` (or set TETHER_BIN)")
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, limit: float = 30.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            # Any certificate: only whether it answers counts (the Kubernetes simulator
            # serves TLS with a CA it made at its start).
            if httpx.get(url, timeout=1.0, verify=False).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {limit} s")


@dataclass
class Tether:
    url: str
    token: str
    sim_url: str

    def client(self) -> TetherClient:
        return TetherClient(TetherEndpoint(base_url=self.url, token=self.token))

    def sim_stats(self) -> dict[str, object]:
        stats: dict[str, object] = httpx.get(f"{self.sim_url}/_sim/stats").json()
        return stats


def sim_command(
    binary: str, port: int, *, pending: str, running: str, kind: str = "databricks"
) -> list[str]:
    """`tether sim KIND` on ``port``, jobs pending then running for these durations."""
    return [
        binary,
        "sim",
        kind,
        "--port",
        str(port),
        "--pending",
        pending,
        "--running",
        running,
    ]


def write_tether_config(
    folder: Path, *, api_port: int, sim_port: int, token: str, lease: str, poll: str
) -> Path:
    """A tether config in ``folder``: SQLite there, the API on ``api_port`` with ``token`` as
    its admin token, the Databricks simulator on ``sim_port`` polled every ``poll`` or so."""
    config = folder / "tether.toml"
    config.write_text(
        f"""
[database]
url = "sqlite://{folder}/tether.db"

[supervisor]
lease = "{lease}"

[api]
listen = "127.0.0.1:{api_port}"
admin_token_sha256 = ["{hashlib.sha256(token.encode()).hexdigest()}"]
max_wait = "10s"

[providers.databricks]
host = "http://127.0.0.1:{sim_port}"
token = "dapi-sim-token"
poll_initial = "{poll}"
poll_max = "2s"
"""
    )
    return config


@pytest.fixture(scope="session")
def tether(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tether]:
    folder = tmp_path_factory.mktemp("tether")
    binary = tether_bin()
    sim_port, api_port = free_port(), free_port()
    sim = subprocess.Popen(
        sim_command(binary, sim_port, pending="200ms", running="1s"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    token = secrets.token_urlsafe(32)
    config = write_tether_config(
        folder, api_port=api_port, sim_port=sim_port, token=token, lease="5s", poll="100ms"
    )
    serve = subprocess.Popen(
        [binary, "--config", str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "serve.err").open("w"),
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/_sim/stats")
        wait_http(f"http://127.0.0.1:{api_port}/healthz")
        os.environ["AIRFLOW_CONN_TETHER_DEFAULT"] = (
            f'{{"conn_type": "tether", "host": "127.0.0.1", "port": {api_port}, '
            f'"schema": "http", "password": "{token}"}}'
        )
        yield Tether(f"http://127.0.0.1:{api_port}", token, f"http://127.0.0.1:{sim_port}")
    finally:
        serve.terminate()
        sim.terminate()
        serve.wait(20)
        sim.wait(20)


def databricks_spec(name: str) -> dict[str, object]:
    return {
        "run_name": name,
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "dbfs:/x.py"}}],
    }
