"""The provider on a real Airflow 3.3.2 deployment, started as users run it.

API server, scheduler, DAG processor and triggerer run as separate processes with the
LocalExecutor, their metadata in a database of their own on the PostgreSQL server named by
``TETHER_TEST_POSTGRES_URL``; ``tether serve`` and ``tether sim databricks`` run on loopback
(``harness.py`` starts them all).
DAG runs are triggered and read through Airflow's REST API; remote jobs are counted by the
simulator (``/_sim/stats``). Each scenario prints the submissions and cancels it saw.

The scenarios run in file order and share the deployment (starting Airflow takes a while).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import tether_bin
from .harness import KUBERNETES_TOKEN, Account, Deployment, Sim, deploy, eventually

DAGS = Path(__file__).parent / "dags"


def admin_postgres_url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI is set but TETHER_TEST_POSTGRES_URL is not")
        pytest.skip("set TETHER_TEST_POSTGRES_URL to run the real-Airflow scenarios")
    return url


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deploy(
        admin_postgres_url(),
        tmp_path_factory.mktemp("airflow"),
        tether_bin(),
        dags=DAGS,
        sims={
            "sim": Sim(pending="1s", running="20s"),
            # Behind tether's provider account ``databricks_slow``: its first submit is
            # answered 12 s late.
            "slow": Sim(
                pending="1s", running="10s", args=("--slow-first", "1", "--slow-by", "12s")
            ),
            # Behind ``databricks_long``: runs that take 15 minutes.
            "long": Sim(pending="1s", running="900s"),
            # Behind the AWS accounts: one simulator serves Batch, Step Functions, SageMaker.
            "aws": Sim(pending="1s", running="8s", kind="batch"),
            # Behind the declared accounts: Livy's and dbt Cloud's APIs.
            "livy": Sim(pending="1s", running="6s", kind="http", args=("--api", "livy")),
            "dbt": Sim(pending="1s", running="6s", kind="http", args=("--api", "dbt-cloud")),
            # Behind the Google accounts: BigQuery and Dataproc on one simulator.
            "google": Sim(pending="1s", running="10s", kind="bigquery"),
            # Behind the Kubernetes account: the API server's simulator, over TLS.
            "k8s": Sim(
                pending="1s",
                running="10s",
                kind="kubernetes",
                args=("--token", KUBERNETES_TOKEN),
            ),
        },
        accounts={
            "databricks": Account("sim", poll_initial="500ms", poll_max="2s"),
            "databricks_slow": Account("slow", poll_initial="500ms", poll_max="2s"),
            "databricks_long": Account("long", poll_initial="2s", poll_max="10s"),
            "batch": Account("aws", poll_initial="500ms", poll_max="2s", kind="batch"),
            "stepfunctions": Account(
                "aws", poll_initial="500ms", poll_max="2s", kind="stepfunctions"
            ),
            "sagemaker": Account(
                "aws", poll_initial="500ms", poll_max="2s", kind="sagemaker-training"
            ),
            "livy": Account(
                "livy", poll_initial="500ms", poll_max="2s", kind="http", example="livy.toml"
            ),
            "dbt": Account(
                "dbt", poll_initial="500ms", poll_max="2s", kind="http", example="dbt-cloud.toml"
            ),
            "bigquery": Account("google", poll_initial="500ms", poll_max="2s", kind="bigquery"),
            "k8s": Account("k8s", poll_initial="500ms", poll_max="2s", kind="kubernetes"),
        },
        airflow_databricks_sim="sim",
    ) as d:
        yield d


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
    events = [e["kind"] for e in d.events(job["id"])]
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
    # Once the run is done, as a person clears from the grid. A clear in the moment the
    # scheduler marks the run succeeded reads the run as running and leaves it so, while the
    # scheduler's success lands after it: the cleared task then waits, unscheduled, in a
    # succeeded run (our reading of 3.3.2's clear_task_instances: two CI runs waited in vain
    # for try 2 of scenario 6).
    d.wait_run("cleared_done", "r1", "success")
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
    events = [e["kind"] for e in d.events(job["id"])]
    assert "reattached" in events
    assert report("9. SIGTERM of a running task", before, d.sim()) == (1, 0)


def test_10_a_task_killed_mid_submit_is_found_by_its_retry(deployment: Deployment) -> None:
    from datetime import datetime, timezone

    d = deployment
    before = d.sim("slow")
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
    events = d.events(job["id"])
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
    assert report("10. killed mid-submit", before, d.sim("slow")) == (1, 0)


def test_11_marking_200_deferred_tasks_failed_at_once_cancels_200_runs(
    deployment: Deployment,
) -> None:
    d, n = deployment, 200
    before = d.sim("long")
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
        "11. 200 deferred tasks marked failed at once", before, d.sim("long")
    )
    assert submissions == n
    # Every run cancelled (above). A run gets one cancel request, or two when the supervisor
    # holding it sends one while the API's own is still on its way (seen: 21 of 200, on a
    # loaded 2-core machine); the simulator counts requests.
    assert n <= cancels <= 2 * n, cancels


def test_12_clearing_a_succeeded_resumable_databricks_task_runs_it_again(
    deployment: Deployment,
) -> None:
    d, before = deployment, deployment.sim()
    key = "/v1/state/task-instances/cleared_databricks/r1/submit/-1/keys/databricks_run_id"
    d.trigger("cleared_databricks", "r1")
    d.wait_try("cleared_databricks", "r1", "submit", 1, "success")
    first = d.tether(key)
    # Once the run is done, as a person clears from the grid. A clear in the moment the
    # scheduler marks the run succeeded reads the run as running and leaves it so, while the
    # scheduler's success lands after it: the cleared task then waits, unscheduled, in a
    # succeeded run (our reading of 3.3.2's clear_task_instances: two CI runs waited in vain
    # for try 2 of scenario 6).
    d.wait_run("cleared_databricks", "r1", "success")
    d.clear("cleared_databricks", "r1", "submit")
    d.wait_try("cleared_databricks", "r1", "submit", 2, "success")
    second = d.tether(key)
    print(f"\n12. run ids in tether: try 1 {first['value']}, try 2 {second['value']}")
    assert second["value"] != first["value"], "try 2 wrote the id of a run of its own"
    assert report("12. clear of a succeeded DatabricksSubmitRunOperator", before, d.sim()) == (
        2,
        0,
    )


def test_13_one_dag_mixes_batch_step_functions_and_sagemaker(deployment: Deployment) -> None:
    """TetherJobOperator, unchanged, on three AWS kinds at once; one SIGKILLed mid-run."""
    d, before = deployment, deployment.sim("aws")
    d.trigger("aws_mix", "r1")
    ti = d.wait_ti("aws_mix", "r1", "batch_job", "running")
    d.wait_job("aws_mix", "running")
    os.kill(ti["pid"], signal.SIGKILL)  # an eviction: the retry reattaches to the Batch job
    for task_id in ("batch_job", "state_machine", "training_job"):
        d.wait_ti("aws_mix", "r1", task_id, "success")
        assert d.return_value("aws_mix", "r1", task_id)["state"] == "succeeded", task_id
    jobs = d.jobs_of("aws_mix")
    assert sorted(j["provider"] for j in jobs) == ["batch", "sagemaker", "stepfunctions"]
    after = d.sim("aws")
    made = {
        k: after["submissions"].get(k, 0) - before["submissions"].get(k, 0)
        for k in ("batch", "stepfunctions", "sagemaker-training")
    }
    print(f"\n13. AWS mix: simulator made {made}, by key {after['by_key']}")
    assert made == {"batch": 1, "stepfunctions": 1, "sagemaker-training": 1}
    assert all(n == 1 for n in after["by_key"].values()), after["by_key"]
    assert after["cancels"] == before["cancels"]


def test_14_declared_providers_run_a_livy_batch_and_a_dbt_cloud_job(
    deployment: Deployment,
) -> None:
    """TetherJobOperator, unchanged, on two APIs described in tether's config (kind = "http")."""
    d = deployment
    livy, dbt = d.sim("livy"), d.sim("dbt")
    d.trigger("declared_apis", "r1")
    for task_id in ("livy_batch", "dbt_job"):
        d.wait_ti("declared_apis", "r1", task_id, "success")
        assert d.return_value("declared_apis", "r1", task_id)["state"] == "succeeded", task_id
    jobs = d.jobs_of("declared_apis")
    assert sorted(j["provider"] for j in jobs) == ["dbt", "livy"]
    for name, before in (("livy", livy), ("dbt", dbt)):
        after = d.sim(name)
        made = after["submissions"] - before["submissions"]
        print(f"\n14. {name}: simulator made {made} job(s), by key {after['by_key']}")
        assert made == 1, name
        assert all(n == 1 for n in after["by_key"].values()), after["by_key"]
        assert after["cancels"] == before["cancels"], name


@pytest.mark.parametrize(
    ("dag_id", "waiting"), [("timed_out", "running"), ("timed_out_deferred", "deferred")]
)
def test_15_execution_timeout_cancels_the_job_and_the_retry_submits_anew(
    deployment: Deployment, dag_id: str, waiting: str
) -> None:
    """The user's limit ends the job: Airflow's timeout in the worker (then ``on_kill``), or
    the deferral timeout the operator sets from what is left of it (no ``on_kill``)."""
    d, before = deployment, deployment.sim("long")
    d.trigger(dag_id, "r1")
    d.wait_try(dag_id, "r1", "job", 1, waiting)
    d.wait_job(dag_id, "running")
    d.wait_try(dag_id, "r1", "job", 2, "running", "deferred")

    def generations() -> Any:
        jobs = {j["generation"]: j for j in d.jobs_of(dag_id)}
        ready = 2 in jobs and jobs[2]["state"] == "running" and jobs[1]["state"] == "cancelled"
        return jobs if ready else None

    jobs = eventually("generation 1 cancelled and generation 2 running", generations)
    assert "execution_timeout" in jobs[1]["cancel_reason"], jobs[1]
    assert jobs[2]["cancel_requested_at"] is None
    after_timeout = report(f"15. execution_timeout while {waiting}", before, d.sim("long"))
    assert after_timeout == (2, 1), "one cancel for the timeout, and the retry's new run"
    # Try 2 would time out too: stop it as a person does, so the run ends now.
    d.api("PATCH", f"/dags/{dag_id}/dagRuns/r1/taskInstances/job", {"new_state": "failed"})
    eventually(
        "generation 2 cancelled",
        lambda: all(j["state"] == "cancelled" for j in d.jobs_of(dag_id)) or None,
    )


def test_16_a_checkpointed_task_resumes_after_a_sigkill(deployment: Deployment) -> None:
    """5,000 items; the task process is SIGKILLed part-way; the retry skips what the
    checkpoint holds. An item may be seen twice only if it was marked after the last write."""
    d = deployment
    seen_file = d.folder / "checkpoint-seen.txt"

    def lines() -> list[str]:
        return seen_file.read_text().splitlines() if seen_file.exists() else []

    d.trigger("checkpointed", "r1")
    ti = d.wait_try("checkpointed", "r1", "convert", 1, "running")
    eventually("1,500 items done", lambda: len(lines()) >= 1500 or None)
    os.kill(ti["pid"], signal.SIGKILL)  # an eviction: no flush, no on_kill
    at_kill = len(lines())
    d.wait_try("checkpointed", "r1", "convert", 2, "success")
    seen = lines()
    result = d.return_value("checkpointed", "r1", "convert")
    twice = len(seen) - len(set(seen))
    print(
        f"\n16. checkpoint: killed after {at_kill} items; the retry skipped "
        f"{result['skipped']} and processed {result['processed']}; {len(set(seen))} distinct "
        f"items, {twice} seen twice (at most {200} may be: the marks after the last write)"
    )
    assert len(set(seen)) == 5000, "every item processed"
    assert twice <= 200, f"{twice} items seen twice"
    assert result["skipped"] >= at_kill - 200
    keys = "/v1/state/task-instances/checkpointed/r1/convert/-1/keys"
    assert d.tether(keys)["entries"] == [], "the finished task's checkpoint is deleted"


def test_17_a_bigquery_job_runs_from_a_dag(deployment: Deployment) -> None:
    """TetherJobOperator, unchanged, on a BigQuery job (tether signs its Google tokens with a
    service account's key); the task process is SIGKILLed while the job runs, and the retry
    reattaches to the same BigQuery job."""
    d, before = deployment, deployment.sim("google")
    d.trigger("bigquery_job", "r1")
    ti = d.wait_ti("bigquery_job", "r1", "rollup", "running")
    d.wait_job("bigquery_job", "running")
    os.kill(ti["pid"], signal.SIGKILL)  # an eviction
    d.wait_ti("bigquery_job", "r1", "rollup", "success")
    assert d.return_value("bigquery_job", "r1", "rollup")["state"] == "succeeded"
    after = d.sim("google")
    made = after["submissions"] - before["submissions"]
    print(
        f"\n17. BigQuery: simulator made {made} job(s), by key {after['by_key']}, verified "
        f"{after['signed_tokens_verified']} signed tokens"
    )
    assert made == 1
    assert all(n == 1 for n in after["by_key"].values()), after["by_key"]
    assert after["signed_tokens_verified"] > before["signed_tokens_verified"]
    assert after["cancels"] == before["cancels"]


def test_18_a_kubernetes_job_runs_from_a_dag(deployment: Deployment) -> None:
    """TetherJobOperator, unchanged, on a Kubernetes Job (kube-rs through a kubeconfig, over
    TLS); the task process is SIGKILLed while the Job runs, and the retry reattaches to the
    same Job (its name from the key, its uid checked), never a second one."""
    d, before = deployment, deployment.sim("k8s")
    d.trigger("kubernetes_job", "r1")
    ti = d.wait_ti("kubernetes_job", "r1", "etl", "running")
    d.wait_job("kubernetes_job", "running")
    os.kill(ti["pid"], signal.SIGKILL)  # an eviction
    d.wait_ti("kubernetes_job", "r1", "etl", "success")
    result = d.return_value("kubernetes_job", "r1", "etl")
    assert result["state"] == "succeeded", result
    after = d.sim("k8s")
    made = after["submissions"] - before["submissions"]
    print(f"\n18. Kubernetes: simulator made {made} Job(s), by key {after['by_key']}")
    assert made == 1
    assert all(n == 1 for n in after["by_key"].values()), after["by_key"]
    assert after["cancels"] == before["cancels"]
