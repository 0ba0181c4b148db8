"""TetherJobOperator and TetherJobTrigger against a real `tether serve`: success returns the
summary, a retry reattaches, the deferrable path resumes from the trigger's event, a failed job
raises with the provider's message, and only a person's stop counts as a kill."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_tether.exceptions import TetherJobFailed
from airflow_provider_tether.links import XCOM_RUN_PAGE_URL_KEY
from airflow_provider_tether.operators.job import TetherJobOperator
from airflow_provider_tether.triggers.job import TetherJobTrigger

from ..conftest import Tether, databricks_spec


class FakeTi(SimpleNamespace):
    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(task: str, try_number: int) -> Any:
    ti = FakeTi(
        dag_id="ops", run_id="r1", task_id=task, map_index=-1, try_number=try_number, pushed={}
    )
    return {"ti": ti}


def operator(task: str, **kwargs: Any) -> TetherJobOperator:
    return TetherJobOperator(
        task_id=task, provider="databricks", spec=databricks_spec(task), wait_seconds=5, **kwargs
    )


def test_success_returns_the_summary_and_pushes_the_run_page(tether: Tether) -> None:
    ctx = context("plain", 1)
    result = operator("plain").execute(ctx)
    assert result["state"] == "succeeded"
    assert result["handle"]["run_id"] > 0
    assert ctx["ti"].pushed[XCOM_RUN_PAGE_URL_KEY] == result["url"]
    assert "#job/runs/" in result["url"]


async def test_deferred_then_retried_reattaches_and_completes(tether: Tether) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        operator("deferred", deferrable=True).execute(context("deferred", 1))
    trigger = deferred.value.trigger
    assert isinstance(trigger, TetherJobTrigger)
    # A triggerer restart re-creates the trigger from its serialized form.
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_tether.triggers.job.TetherJobTrigger"
    revived = TetherJobTrigger(**kwargs)
    # A retry after an eviction ensures again: the same job, nothing submitted.
    with pytest.raises(TaskDeferred) as again:
        operator("deferred", deferrable=True).execute(context("deferred", 2))
    assert again.value.trigger.job_id == trigger.job_id
    events = [e async for e in revived.run()]
    assert len(events) == 1
    result = operator("deferred").execute_complete(context("deferred", 2), events[0].payload)
    assert result["state"] == "succeeded"
    by_key = tether.sim_stats()["by_key"]
    assert isinstance(by_key, dict)
    job = tether.client().get_job(trigger.job_id)
    assert by_key[job["idempotency_key"]] == 1


def test_a_cancelled_job_raises_with_its_state(tether: Tether) -> None:
    client = tether.client()
    ident = {
        "dag_id": "ops",
        "run_id": "r1",
        "task_id": "failing",
        "map_index": -1,
        "try_number": 1,
    }
    job = client.ensure_job(ident, "databricks", databricks_spec("failing"), "main")["job"]
    client.cancel_job(job["id"], "test")
    with pytest.raises(TetherJobFailed) as failed:
        operator("failing").execute(context("failing", 1))
    assert failed.value.state == "cancelled"


def test_on_kill_outside_a_task_cancels_nothing(tether: Tether) -> None:
    op = operator("unkilled", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context("unkilled", 1))
    op.on_kill()  # no Airflow supervisor to ask: the job is left running
    job = tether.client().get_job(deferred.value.trigger.job_id)
    assert job["cancel_requested_at"] is None


def test_a_completed_try_consumes_its_result_and_a_clear_runs_anew(tether: Tether) -> None:
    first = operator("consumed").execute(context("consumed", 1))
    job = tether.client().get_job(first["job_id"])
    assert job["consumed_try"] == 1
    # A clear starts the next try: it runs the job again (a new generation), once.
    second = operator("consumed").execute(context("consumed", 2))
    assert second["generation"] == 2
    assert second["job_id"] != first["job_id"]


def test_sigterm_ends_the_wait_at_once_and_leaves_the_job_running(tether: Tether) -> None:
    import os
    import signal
    import threading
    import time

    from airflow_provider_tether.exceptions import TetherTaskStopped

    # The signal goes to the process (as Airflow's supervisor sends it), and may reach any of
    # its threads: here it comes from another thread, the worst case.
    op = operator("evicted")
    previous = signal.signal(signal.SIGTERM, lambda *_: op.on_kill())  # as Airflow's runner
    sent: list[float] = []

    def signal_once_waiting() -> None:
        # Once the job is ensured and execute waits for it (however long the ensure took on a
        # loaded machine), then 0.3 s into that wait.
        while op._job_id is None or not op._waiting:
            time.sleep(0.01)
        time.sleep(0.3)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        threading.Thread(target=signal_once_waiting, daemon=True).start()
        with pytest.raises(TetherTaskStopped) as stopped:
            op.execute(context("evicted", 1))
        took = time.monotonic() - sent[0]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert took < 1.0, f"the wait ended {took:.2f} s after the signal"
    assert stopped.value.cancelled is False
    assert stopped.value.job_id is not None
    job = tether.client().get_job(stopped.value.job_id)
    assert job["cancel_requested_at"] is None, "not a person's stop: the job runs on"


def test_the_connection_test_button(tether: Tether) -> None:
    from airflow_provider_tether.hooks.tether import TetherHook

    ok, message = TetherHook().test_connection()
    assert ok, message
