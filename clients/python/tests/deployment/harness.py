"""A real Airflow 3.3.2 deployment beside a real ``tether serve``, started as users run them.

API server, scheduler, DAG processor and triggerer run as separate processes with the
LocalExecutor, their metadata in a database of their own on a PostgreSQL server; ``tether
serve`` (SQLite) and ``tether sim databricks`` simulators run on loopback. Both the scenarios
(``test_real_airflow.py``) and the triggerer benchmark (``triggerer_cost.py``) start one with
:func:`deploy`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from ..conftest import REPO, free_port, sim_command, wait_http

LIMIT = 150.0


def eventually(what: str, check: Callable[[], Any], limit: float = LIMIT) -> Any:
    """Polls ``check`` until it returns something truthy."""
    start = time.monotonic()
    last: Any = None
    while time.monotonic() - start < limit:
        try:
            last = check()
            if last:
                return last
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class Deployment:
    folder: Path
    env: dict[str, str]
    airflow_url: str
    tether_url: str
    tether_token: str
    #: The Databricks simulators by name (``tether sim databricks``), their base URLs.
    sims: dict[str, str]
    #: Airflow's metadata database (a PostgreSQL URL), for what the REST API does not show.
    metadata_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # Processes ---------------------------------------------------------------------------

    def start(self, name: str, args: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        # A session of its own: Airflow's components fork workers and log servers, and the
        # whole group is stopped (or killed) at once.
        self.processes[name] = subprocess.Popen(
            args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def airflow(self, component: str) -> None:
        self.start(component, [str(Path(sys.executable).parent / "airflow"), component])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(30)

    def stop(self, name: str) -> None:
        """SIGTERM, as an operator stops a component; SIGKILL if it is still up 30 s later
        (a scheduler busy shutting down its executor can take that long on a loaded machine)."""
        process = self.processes[name]
        try:
            self.kill(name, signal.SIGTERM)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)

    # Airflow's REST API ------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.airflow_url}/api/v2{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def trigger(self, dag_id: str, run_id: str) -> None:
        eventually(f"DAG {dag_id} parsed", lambda: self._dag_known(dag_id))
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "dag_run_id": run_id})

    def _dag_known(self, dag_id: str) -> bool:
        r = httpx.get(f"{self.airflow_url}/api/v2/dags/{dag_id}", timeout=10)
        return r.status_code == 200

    def ti(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        ti: dict[str, Any] = self.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        )
        return ti

    def wait_ti(self, dag_id: str, run_id: str, task_id: str, *states: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            ti = self.ti(dag_id, run_id, task_id)
            if ti["state"] in ("failed", "upstream_failed") and "failed" not in states:
                raise AssertionError(
                    f"{dag_id}/{run_id}/{task_id} failed: {self.task_log(dag_id, run_id, task_id)}"
                )
            return ti if ti["state"] in states else None

        ti: dict[str, Any] = eventually(f"{dag_id}/{run_id}/{task_id} in {states}", reached)
        return ti

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        folder = (
            self.folder
            / "home"
            / "logs"
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
        )
        return "\n".join(p.read_text()[-3000:] for p in sorted(folder.glob("*.log")))

    def wait_run(self, dag_id: str, run_id: str, *states: str) -> dict[str, Any]:
        """Waits for the DAG run to be in one of ``states``."""

        def reached() -> dict[str, Any] | None:
            run: dict[str, Any] = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in states else None

        run: dict[str, Any] = eventually(f"DAG run {dag_id}/{run_id} in {states}", reached)
        return run

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        """Clears one task instance, as a person does from the grid (whatever its state)."""
        body = {
            "dry_run": False,
            "only_failed": False,
            "task_ids": [task_id],
            "dag_run_id": run_id,
            "reset_dag_runs": True,
        }
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances", body)

    def wait_try(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, *states: str
    ) -> Any:
        seen: list[str] = []

        def reached() -> dict[str, Any] | None:
            ti = self.ti(dag_id, run_id, task_id)
            now = f"try {ti['try_number']} {ti['state']}"
            if not seen or seen[-1] != now:
                seen.append(now)
            if ti["try_number"] == try_number and ti["state"] in ("failed", "upstream_failed"):
                raise AssertionError(
                    f"{dag_id}/{run_id}/{task_id} try {try_number} failed: "
                    f"{self.task_log(dag_id, run_id, task_id)}"
                )
            return ti if ti["try_number"] == try_number and ti["state"] in states else None

        try:
            return eventually(f"{dag_id}/{run_id}/{task_id} try {try_number} in {states}", reached)
        except AssertionError as e:
            # What the task instance went through, and tether's jobs for the DAG.
            jobs = [
                (j["generation"], j["state"], j["try_number"], j.get("consumed_try"))
                for j in self.jobs_of(dag_id)
            ]
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            raise AssertionError(
                f"{e}; the task instance was {seen}; the DAG run is {run}; tether's jobs {jobs}"
            ) from e

    def jobs_of(self, dag_id: str) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.tether(f"/v1/jobs?dag_id={dag_id}")["jobs"]
        return jobs

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (the API answers 100 at a time)."""
        tis: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(tis)}",
            )
            tis.extend(page["task_instances"])
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis

    def return_value(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.api("GET", path)["value"]

    # tether and the simulator ------------------------------------------------------------

    def tether(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tether_token}"}
        response = httpx.get(f"{self.tether_url}{path}", headers=headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def events(self, job_id: int) -> list[dict[str, Any]]:
        """A job's whole event log, oldest first (read a page at a time)."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.tether(f"/v1/jobs/{job_id}/events?limit=1000&after_id={after}")
            events.extend(page["events"])
            if page["next_after_id"] is None:
                return events
            after = page["next_after_id"]

    def job_of(self, dag_id: str) -> dict[str, Any] | None:
        jobs = self.tether(f"/v1/jobs?dag_id={dag_id}")["jobs"]
        return jobs[0] if jobs else None

    def wait_job(self, dag_id: str, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job_of(dag_id)
            return job if job and job["state"] == state else None

        job: dict[str, Any] = eventually(f"the tether job of {dag_id} {state}", reached)
        return job

    def metadata(self, sql: str) -> Any:
        """The first column of the first row of a query of Airflow's metadata database."""
        import psycopg

        with psycopg.connect(self.metadata_url) as conn:
            row = conn.execute(sql.encode()).fetchone()
            return row[0] if row else None

    def sim(self, name: str = "sim") -> dict[str, Any]:
        """The counters of simulator ``name`` (submissions, cancels, requests, ...)."""
        stats: dict[str, Any] = httpx.get(
            f"{self.sims[name]}/_sim/stats", timeout=10, verify=False
        ).json()
        return stats


@dataclass(frozen=True)
class Sim:
    """A ``tether sim KIND``: how long its jobs stay pending, then running. The AWS simulator
    (any AWS kind) serves every AWS kind on its port."""

    pending: str
    running: str
    args: tuple[str, ...] = ()
    kind: str = "databricks"


@dataclass(frozen=True)
class Account:
    """A tether provider account (``[providers.NAME]``) of ``kind`` on a simulator."""

    sim: str
    poll_initial: str
    poll_max: str
    kind: str = "databricks"
    #: For ``kind = "http"``: the example description in ``config/`` (``livy.toml``).
    example: str = ""


@contextlib.contextmanager
def deploy(
    admin_url: str,
    folder: Path,
    binary: str,
    *,
    dags: Path,
    sims: dict[str, Sim],
    accounts: dict[str, Account],
    airflow_databricks_sim: str,
    lease: str = "10s",
    max_wait: str = "10s",
) -> Iterator[Deployment]:
    """Starts the simulators, ``tether serve`` with ``accounts``, and Airflow (its metadata in
    a new database on ``admin_url``'s server, its DAGs a copy of ``dags``); Airflow's
    ``databricks_default`` connection points at simulator ``airflow_databricks_sim`` and
    ``[state_store] backend`` is tether's. Everything is stopped, and the database dropped, on
    the way out."""
    import psycopg

    db_name = f"tether_airflow_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db_name}".encode())
    pg = urlparse(admin_url)
    airflow_db = f"postgresql+psycopg2://{pg.netloc}/{db_name}"

    sim_ports = {name: free_port() for name in sims}
    tether_port, airflow_port = free_port(), free_port()
    token = secrets.token_urlsafe(32)
    config = folder / "tether.toml"
    config.write_text(
        tether_config(folder, tether_port, token, lease, max_wait, accounts, sim_ports)
    )
    shutil.copytree(dags, folder / "dags")
    airflow_url = f"http://127.0.0.1:{airflow_port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(folder / "home"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__PORT": str(airflow_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        # A deferral past its timeout is failed at the scheduler's next check (15 s by
        # default): checked every 2 s, so that the timeout scenario does not wait for it.
        "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_CONN_TETHER_DEFAULT": (
            f'{{"conn_type": "tether", "host": "127.0.0.1", "port": {tether_port}, '
            f'"schema": "http", "password": "{token}"}}'
        ),
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": (
            '{"conn_type": "databricks", "host": "127.0.0.1", '
            f'"port": {sim_ports[airflow_databricks_sim]}, '
            '"schema": "http", "password": "dapi-sim-token"}'
        ),
        "AIRFLOW__STATE_STORE__BACKEND": "airflow_provider_tether.state.backend.TetherStoreBackend",
        "AIRFLOW__TETHER__URL": f"http://127.0.0.1:{tether_port}",
        "AIRFLOW__TETHER__TOKEN": token,
        # The AWS simulator's key pair, which `tether serve` signs with.
        "AWS_ACCESS_KEY_ID": "AKIATETHERSIMULATOR",
        "AWS_SECRET_ACCESS_KEY": "tether-simulator-secret-key-0123456789",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    d = Deployment(
        folder,
        env,
        airflow_url,
        f"http://127.0.0.1:{tether_port}",
        token,
        {name: f"{scheme(sims[name].kind)}://127.0.0.1:{port}" for name, port in sim_ports.items()},
        pg._replace(path=f"/{db_name}").geturl(),
    )
    try:
        for name, sim in sims.items():
            command = sim_command(
                binary, sim_ports[name], pending=sim.pending, running=sim.running, kind=sim.kind
            )
            d.start(name, [*command, *sim.args])
        d.start("tether", [binary, "--config", str(config), "serve"])
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run(
            [airflow, "db", "migrate"],
            env=env,
            check=True,
            stdout=(folder / "migrate.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for component in ("api-server", "scheduler", "dag-processor", "triggerer"):
            d.airflow(component)
        for url in d.sims.values():
            wait_http(f"{url}/_sim/stats")
        wait_http(f"{d.tether_url}/healthz")
        wait_http(f"{airflow_url}/api/v2/version", limit=120)
        yield d
    finally:
        for name in list(d.processes):
            d.stop(name)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)".encode())


def tether_config(
    folder: Path,
    port: int,
    token: str,
    lease: str,
    max_wait: str,
    accounts: dict[str, Account],
    sim_ports: dict[str, int],
) -> str:
    """tether's config: SQLite in ``folder``, the API on ``port`` with ``token`` as its admin
    token, one provider account per entry of ``accounts``."""
    text = f"""
[database]
url = "sqlite://{folder}/tether.db"

[supervisor]
lease = "{lease}"

[api]
listen = "127.0.0.1:{port}"
admin_token_sha256 = ["{hashlib.sha256(token.encode()).hexdigest()}"]
max_wait = "{max_wait}"
"""
    for name, account in accounts.items():
        url = f"{scheme(account.kind)}://127.0.0.1:{sim_ports[account.sim]}"
        if account.kind == "http":
            text += declared_account(name, account, url)
            continue
        if account.kind == "databricks":
            where = f'host = "{url}"\ntoken = "dapi-sim-token"'
        elif account.kind in GOOGLE_KINDS:
            where = google_account(folder, url, account.kind)
        elif account.kind == "kubernetes":
            where = kubernetes_account(folder, url)
        else:
            where = f'region = "us-east-1"\nendpoint_url = "{url}"'

        text += f"""
[providers.{name}]
kind = "{account.kind}"
{where}
poll_initial = "{account.poll_initial}"
poll_max = "{account.poll_max}"
"""
    return text


def scheme(kind: str) -> str:
    """How a simulator of ``kind`` is reached: the Kubernetes API server's over TLS."""
    return "https" if kind == "kubernetes" else "http"


#: The bearer token the Kubernetes simulator of the deployment accepts (``--token``).
KUBERNETES_TOKEN = "tether-airflow-k8s-token"


def kubernetes_account(folder: Path, url: str) -> str:
    """The fields of a Kubernetes account on the simulator at ``url``: a kubeconfig with its
    token. The simulator's CA is made when it starts, after this config is written, so the
    kubeconfig skips the server's certificate check (the adapter's CA path is proven in
    ``providers/kubernetes/tests``)."""
    path = folder / "kubeconfig.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: sim\n  cluster:\n    server: {url}\n"
        "    insecure-skip-tls-verify: true\n"
        f"users:\n- name: sim\n  user:\n    token: {KUBERNETES_TOKEN}\n"
        "contexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\n"
        "    namespace: default\ncurrent-context: sim\n"
    )
    return f'kubeconfig = "{path}"'


#: The kinds of tether's Google crate, whose simulator (``tether sim bigquery``) serves all.
GOOGLE_KINDS = ("bigquery", "dataproc-job", "dataproc-batch")


def google_account(folder: Path, url: str, kind: str) -> str:
    """The fields of a Google account on the simulator at ``url``: its project, a location,
    and a key file of the service account it trusts (the workspace's test-only key pair, the
    one the simulator writes for itself), so that tether signs its tokens as it would for
    Google."""
    key = folder / "google-sim-key.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "tether-sim",
                "private_key_id": "tether-sim-key-1",
                "private_key": (REPO / "providers/core/testdata/test-only-rsa-key.pem").read_text(),
                "client_email": "tether-sim@tether-sim.iam.gserviceaccount.com",
                "token_uri": f"{url}/token",
            }
        )
    )
    location = "US" if kind == "bigquery" else "us-central1"
    return (
        f'project = "tether-sim"\nlocation = "{location}"\nendpoint = "{url}"\n'
        f'credentials_file = "{key}"'
    )


def declared_account(name: str, account: Account, url: str) -> str:
    """The provider tables of the example description ``config/<account.example>``, as the
    account ``name``, pointed at ``url``, polled as ``account`` says."""
    lines, inside = [], False
    for line in (REPO / "config" / account.example).read_text().splitlines():
        if line.startswith("["):
            inside = line.startswith("[providers.")
            if inside:
                table = line.strip("[]").split(".", 2)
                line = "[" + ".".join(["providers", name, *table[2:]]) + "]"
        key = line.split("=", 1)[0].strip()
        # The simulators' secrets in the file itself: every `tether` command the tests run
        # reads this config, not only `tether serve`.
        line = {
            "password_env": 'password = "livy-sim-password"',
            "token_env": 'token = "dbt-sim-token"',
        }.get(key, line)
        if inside and key not in ("base_url", "poll_initial", "poll_max", "rate_limit_per_second"):
            lines.append(line)
        if inside and line == f"[providers.{name}]":
            lines += [
                f'base_url = "{url}"',
                f'poll_initial = "{account.poll_initial}"',
                f'poll_max = "{account.poll_max}"',
            ]
    return "\n" + "\n".join(lines) + "\n"
