"""The provider on a real Airflow 3.3.2 deployment, started as users run it.

API server, scheduler, DAG processor and triggerer run as separate processes with the
LocalExecutor, their metadata in a database of their own on the PostgreSQL server named by
``TETHER_TEST_POSTGRES_URL``; ``tether serve`` and ``tether sim databricks`` run on loopback.
DAG runs are triggered and read through Airflow's REST API; remote jobs are counted by the
simulator (``/_sim/stats``). Each scenario prints the submissions and cancels it saw.

The scenarios run in file order and share the deployment (starting Airflow takes a while).
"""

from __future__ import annotations

import contextlib
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
import pytest

from ..conftest import free_port, sim_command, tether_bin, wait_http, write_tether_config

DAGS = Path(__file__).parent / "dags"
LIMIT = 150.0


def admin_postgres_url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but TETHER_TEST_POSTGRES_URL is not")
        pytest.skip("set TETHER_TEST_POSTGRES_URL to run the real-Airflow scenarios")
    return url


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
    sim_url: str
    #: A second simulator, behind tether's provider account ``databricks_slow``: its first
    #: submit is answered 12 s late.
    slow_sim_url: str = ""
    #: A third, behind ``databricks_long``: runs that take 15 minutes.
    long_sim_url: str = ""
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
        def reached() -> dict[str, Any] | None:
            ti = self.ti(dag_id, run_id, task_id)
            if ti["try_number"] == try_number and ti["state"] in ("failed", "upstream_failed"):
                raise AssertionError(
                    f"{dag_id}/{run_id}/{task_id} try {try_number} failed: "
                    f"{self.task_log(dag_id, run_id, task_id)}"
                )
            return ti if ti["try_number"] == try_number and ti["state"] in states else None

        return eventually(f"{dag_id}/{run_id}/{task_id} try {try_number} in {states}", reached)

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

    def job_of(self, dag_id: str) -> dict[str, Any] | None:
        jobs = self.tether(f"/v1/jobs?dag_id={dag_id}")["jobs"]
        return jobs[0] if jobs else None

    def wait_job(self, dag_id: str, state: str) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            job = self.job_of(dag_id)
            return job if job and job["state"] == state else None

        job: dict[str, Any] = eventually(f"the tether job of {dag_id} {state}", reached)
        return job

    def sim(self, url: str | None = None) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{url or self.sim_url}/_sim/stats", timeout=10).json()
        return stats


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    admin = admin_postgres_url()
    import psycopg

    folder = tmp_path_factory.mktemp("airflow")
    db_name = f"tether_airflow_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db_name}".encode())
    pg = urlparse(admin)
    airflow_db = f"postgresql+psycopg2://{pg.netloc}/{db_name}"

    binary = tether_bin()
    sim_port, tether_port, airflow_port = free_port(), free_port(), free_port()
    slow_port, long_port = free_port(), free_port()
    token = secrets.token_urlsafe(32)
    config = write_tether_config(
        folder, api_port=tether_port, sim_port=sim_port, token=token, lease="10s", poll="500ms"
    )
    with config.open("a") as f:
        f.write(
            f"""
[providers.databricks_slow]
kind = "databricks"
host = "http://127.0.0.1:{slow_port}"
token = "dapi-sim-token"
poll_initial = "500ms"
poll_max = "2s"

[providers.databricks_long]
kind = "databricks"
host = "http://127.0.0.1:{long_port}"
token = "dapi-sim-token"
poll_initial = "2s"
poll_max = "10s"
"""
        )
    dags = folder / "dags"
    shutil.copytree(DAGS, dags)
    airflow_url = f"http://127.0.0.1:{airflow_port}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(folder / "home"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__PORT": str(airflow_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{airflow_url}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW_CONN_TETHER_DEFAULT": (
            f'{{"conn_type": "tether", "host": "127.0.0.1", "port": {tether_port}, '
            f'"schema": "http", "password": "{token}"}}'
        ),
        "AIRFLOW_CONN_DATABRICKS_DEFAULT": (
            f'{{"conn_type": "databricks", "host": "127.0.0.1", "port": {sim_port}, '
            '"schema": "http", "password": "dapi-sim-token"}'
        ),
        "AIRFLOW__STATE_STORE__BACKEND": "airflow_provider_tether.state.backend.TetherStoreBackend",
        "AIRFLOW__TETHER__URL": f"http://127.0.0.1:{tether_port}",
        "AIRFLOW__TETHER__TOKEN": token,
    }
    d = Deployment(
        folder,
        env,
        airflow_url,
        f"http://127.0.0.1:{tether_port}",
        token,
        f"http://127.0.0.1:{sim_port}",
        f"http://127.0.0.1:{slow_port}",
        f"http://127.0.0.1:{long_port}",
    )
    try:
        d.start("sim", sim_command(binary, sim_port, pending="1s", running="20s"))
        slow = sim_command(binary, slow_port, pending="1s", running="10s")
        d.start("slow_sim", [*slow, "--slow-first", "1", "--slow-by", "12s"])
        d.start("long_sim", sim_command(binary, long_port, pending="1s", running="900s"))
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
        wait_http(f"{d.sim_url}/_sim/stats")
        wait_http(f"{d.slow_sim_url}/_sim/stats")
        wait_http(f"{d.long_sim_url}/_sim/stats")
        wait_http(f"{d.tether_url}/healthz")
        wait_http(f"{airflow_url}/api/v2/version", limit=120)
        yield d
    finally:
        for name in list(d.processes):
            d.stop(name)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)".encode())


def report(scenario: str, before: dict[str, Any], after: dict[str, Any]) -> tuple[int, int]:
    submissions = after["submissions"] - before["submissions"]
    cancels = after["cancels"] - before["cancels"]
    print(f"\n{scenario}: simulator saw {submissions} submission(s), {cancels} cancel(s)")
    return submissions, cancels


def test_1_worker_eviction_reattaches(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("evicted", "r1")
    d.wait_job("evicted", "running")
    ti = d.wait_ti("evicted", "r1", "job", "running")
    assert ti["try_number"] == 1
    os.kill(ti["pid"], signal.SIGKILL)  # the worker's task process dies, as on eviction
    ti = d.wait_ti("evicted", "r1", "job", "success")
    assert ti["try_number"] == 2, "Airflow's own retry ran it"
    result = d.return_value("evicted", "r1", "job")
    job = d.job_of("evicted")
    assert job is not None
    assert result["state"] == "succeeded"
    assert result["handle"] == job["handle"], "the return value names the run"
    events = [e["kind"] for e in d.tether(f"/v1/jobs/{job['id']}/events")]
    assert "reattached" in events
    assert report("1. worker eviction", before, d.sim()) == (1, 0)


def test_2_triggerer_restart_while_deferred(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("deferred", "r1")
    d.wait_ti("deferred", "r1", "job", "deferred")
    d.wait_job("deferred", "running")
    d.kill("triggerer")  # SIGKILL, the whole process group
    time.sleep(2)
    d.airflow("triggerer")
    ti = d.wait_ti("deferred", "r1", "job", "success")
    assert ti["try_number"] == 1
    assert d.return_value("deferred", "r1", "job")["state"] == "succeeded"
    assert report("2. triggerer restart", before, d.sim()) == (1, 0)


@pytest.mark.parametrize(
    ("dag_id", "waiting"), [("marked_failed", "running"), ("marked_failed_deferred", "deferred")]
)
def test_3_marking_a_task_failed_cancels_the_job(
    deployment: Deployment, dag_id: str, waiting: str
) -> None:
    d, before = deployment, deployment.sim()
    d.trigger(dag_id, "r1")
    d.wait_ti(dag_id, "r1", "job", waiting)
    d.wait_job(dag_id, "running")
    d.api("PATCH", f"/dags/{dag_id}/dagRuns/r1/taskInstances/job", {"new_state": "failed"})
    job = d.wait_job(dag_id, "cancelled")
    assert job["cancel_reason"] == "the Airflow task was stopped by a user"
    assert report(f"3. marked failed while {waiting}", before, d.sim()) == (1, 1)


def test_4_databricks_operator_keeps_its_run_id_in_tether(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("databricks_resumable", "r1")
    keys = "/v1/state/task-instances/databricks_resumable/r1/submit/-1/keys"

    def recorded() -> Any:
        return [e for e in d.tether(keys)["entries"] if e["key"] == "databricks_run_id"]

    entry = eventually("databricks_run_id in tether", recorded)[0]
    shown = subprocess.run(
        [
            tether_bin(),
            "--config",
            str(d.folder / "tether.toml"),
            "state",
            "list",
            "--dag",
            "databricks_resumable",
            "--run",
            "r1",
            "--task",
            "submit",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "databricks_run_id" in shown, shown
    ti = d.wait_ti("databricks_resumable", "r1", "submit", "running")
    time.sleep(2)
    os.kill(ti["pid"], signal.SIGKILL)
    ti = d.wait_ti("databricks_resumable", "r1", "submit", "success")
    assert ti["try_number"] == 2
    print(f"\n4. run id in tether: {entry['value']} (version {entry['version']})")
    assert report("4. DatabricksSubmitRunOperator on TetherStoreBackend", before, d.sim()) == (1, 0)


def test_5_incremental_task_keeps_its_watermark(deployment: Deployment) -> None:
    d = deployment
    d.trigger("incremental", "r1")
    d.wait_ti("incremental", "r1", "load", "success")
    d.trigger("incremental", "r2")
    d.wait_ti("incremental", "r2", "load", "success")
    first = d.return_value("incremental", "r1", "load")
    second = d.return_value("incremental", "r2", "load")
    print(f"\n5. incremental: run 1 {first}, run 2 {second}")
    assert first == {"since": 0, "until": 10}
    assert second == {"since": 10, "until": 20}


def test_6_clearing_a_succeeded_task_runs_the_job_again(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("cleared_done", "r1")
    d.wait_try("cleared_done", "r1", "job", 1, "success")
    first = d.return_value("cleared_done", "r1", "job")
    d.clear("cleared_done", "r1", "job")
    d.wait_try("cleared_done", "r1", "job", 2, "success")
    second = d.return_value("cleared_done", "r1", "job")
    assert (first["generation"], second["generation"]) == (1, 2)
    assert second["job_id"] != first["job_id"]
    assert report("6. clear of a succeeded task", before, d.sim()) == (2, 0)


def test_7_clearing_a_running_task_cancels_the_run_and_starts_anew(
    deployment: Deployment,
) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("cleared_running", "r1")
    d.wait_try("cleared_running", "r1", "job", 1, "running")
    d.wait_job("cleared_running", "running")
    d.clear("cleared_running", "r1", "job")
    d.wait_try("cleared_running", "r1", "job", 2, "success")
    jobs = d.jobs_of("cleared_running")
    states = sorted((j["generation"], j["state"]) for j in jobs)
    print(f"\n7. clear of a running task: jobs {states}")
    assert states == [(1, "cancelled"), (2, "succeeded")]
    assert report("7. clear of a running task", before, d.sim()) == (2, 1)


def test_8_clearing_a_deferred_task_never_fails_it(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("cleared_deferred", "r1")
    d.wait_try("cleared_deferred", "r1", "job", 1, "deferred")
    d.wait_job("cleared_deferred", "running")
    d.clear("cleared_deferred", "r1", "job")
    d.wait_try("cleared_deferred", "r1", "job", 2, "success")
    time.sleep(3)  # a late cancel of the old try would show now
    jobs = {j["generation"]: j for j in d.jobs_of("cleared_deferred")}
    outcome = report("8. clear of a deferred task", before, d.sim())
    print(f"8. jobs: {[(g, j['state'], j['owner_try']) for g, j in sorted(jobs.items())]}")
    # Either the old run was cancelled and a new one ran, or the old one was carried on.
    assert outcome in ((2, 1), (1, 0)), outcome
    newest = jobs[max(jobs)]
    assert newest["state"] == "succeeded"
    if outcome == (1, 0):
        assert newest["owner_try"] == 2 and newest["cancel_requested_at"] is None


def test_9_sigterm_leaves_at_once_and_the_retry_reattaches(deployment: Deployment) -> None:
    d, before = deployment, deployment.sim()
    d.trigger("sigterm", "r1")
    ti = d.wait_try("sigterm", "r1", "job", 1, "running")
    d.wait_job("sigterm", "running")
    time.sleep(1)
    started = time.monotonic()
    os.kill(ti["pid"], signal.SIGTERM)  # as a deploy or a pod eviction stops the worker

    def left() -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(ti["pid"], 0)
            return False
        return True

    eventually("the task process to exit", left, limit=30)
    took = time.monotonic() - started
    job = d.job_of("sigterm")
    assert job is not None and job["cancel_requested_at"] is None, job
    ti = d.wait_try("sigterm", "r1", "job", 2, "success")
    print(f"\n9. SIGTERM: the task process exited {took:.1f} s after the signal")
    assert took < 5, f"the task left {took:.1f} s after SIGTERM"
    events = [e["kind"] for e in d.tether(f"/v1/jobs/{job['id']}/events")]
    assert "reattached" in events
    assert report("9. SIGTERM of a running task", before, d.sim()) == (1, 0)


def test_10_a_task_killed_mid_submit_is_found_by_its_retry(deployment: Deployment) -> None:
    from datetime import datetime, timezone

    d = deployment
    before = d.sim(d.slow_sim_url)
    d.trigger("killed_mid_submit", "r1")
    ti = d.wait_try("killed_mid_submit", "r1", "job", 1, "running")
    # The intent is recorded right before the submit goes out (the simulator counts a submit
    # only once it has answered it).
    intent = eventually("the intent", lambda: d.job_of("killed_mid_submit"))
    assert intent["phase"] == "submitting", intent
    time.sleep(3)
    waiting = d.job_of("killed_mid_submit")
    assert waiting is not None and waiting["phase"] == "submitting", "still waiting for the answer"
    os.kill(ti["pid"], signal.SIGKILL)  # 3 s into a 12-s submit: its request is dropped
    killed = datetime.now(timezone.utc)
    d.wait_try("killed_mid_submit", "r1", "job", 2, "success")
    job = d.job_of("killed_mid_submit")
    assert job is not None
    events = d.tether(f"/v1/jobs/{job['id']}/events")
    at = {e["kind"]: datetime.fromisoformat(e["at"]) for e in events}
    # tether finished the submission without its client (the handle recorded as the provider
    # answered, 12 s in), so try 2 reattached as soon as Airflow started it: no reconcile, no
    # wait for the dead submitter's lease (10 s) and request timeout (30 s).
    assert "submitted" in at and "recovered" not in at, events
    recorded = (at["submitted"] - at["intent"]).total_seconds()
    reattached = (at["reattached"] - killed).total_seconds()
    print(
        f"\n10. killed mid-submit: the handle recorded {recorded:.1f} s after the intent, "
        f"try 2 reattached {reattached:.1f} s after the kill"
    )
    assert 10 < recorded < 15, events
    assert reattached < 30, events
    assert report("10. killed mid-submit", before, d.sim(d.slow_sim_url)) == (1, 0)


def test_11_marking_200_deferred_tasks_failed_at_once_cancels_200_runs(
    deployment: Deployment,
) -> None:
    d, n = deployment, 200
    before = d.sim(d.long_sim_url)
    d.trigger("bulk_marked_failed", "r1")

    def all_deferred() -> bool:
        tis = d.tis("bulk_marked_failed", "r1")
        return len(tis) == n and all(ti["state"] == "deferred" for ti in tis)

    eventually(f"{n} deferred tasks", all_deferred, limit=900)
    eventually(
        f"{n} running runs",
        lambda: (
            d.tether("/v1/jobs/counts?dag_id=bulk_marked_failed")["by_state"].get("running") == n
        ),
        limit=300,
    )
    # One request marks every map index failed; Airflow cancels the 200 triggers and re-sends
    # that cancellation at each sync of the triggerer while their on_kill runs.
    d.api("PATCH", "/dags/bulk_marked_failed/dagRuns/r1/taskInstances/job", {"new_state": "failed"})

    def cancelled() -> int:
        count: int = d.tether("/v1/jobs/counts?dag_id=bulk_marked_failed")["by_state"].get(
            "cancelled", 0
        )
        return count if count == n else 0

    eventually(f"{n} cancelled runs", cancelled, limit=300)
    submissions, cancels = report(
        "11. 200 deferred tasks marked failed at once", before, d.sim(d.long_sim_url)
    )
    assert submissions == n
    # Every run cancelled (above). A run gets one cancel request, or two when the supervisor
    # holding it sends one while the API's own is still on its way (seen: 21 of 200, on a
    # loaded 2-core machine); the simulator counts requests.
    assert n <= cancels <= 2 * n, cancels
