"""TetherJobOperator and TetherJobTrigger against a real `tether serve`: success returns the
summary, a retry reattaches, the deferrable path resumes from the trigger's event, a failed job
raises with the provider's message, and only a person's stop counts as a kill."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_tether.exceptions import TetherJobFailed
from airflow_provider_tether.kill import _person_stopped
from airflow_provider_tether.links import XCOM_RUN_PAGE_URL_KEY
from airflow_provider_tether.operators.job import TetherJobOperator
from airflow_provider_tether.triggers.job import TetherJobTrigger

from .conftest import Tether, databricks_spec


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


@pytest.mark.parametrize(
    ("state", "stopped"),
    [
        ("running", False),
        ("deferred", False),
        ("up_for_retry", False),
        ("queued", False),
        ("failed", True),
        ("success", True),
        ("restarting", True),
        (None, True),
    ],
)
def test_only_a_person_stops_a_task(state: str | None, stopped: bool) -> None:
    assert _person_stopped({"r1": {"load": state}}, "r1", "load", -1) is stopped
    assert _person_stopped({"r1": {"load_3": state}}, "r1", "load", 3) is stopped


def test_an_unknown_task_instance_is_never_a_stop() -> None:
    assert _person_stopped({}, "r1", "load", -1) is False
    assert _person_stopped({"r1": {"other": "failed"}}, "r1", "load", -1) is False


def test_on_kill_outside_a_task_cancels_nothing(tether: Tether) -> None:
    op = operator("unkilled", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context("unkilled", 1))
    op.on_kill()  # no Airflow supervisor to ask: the job is left running
    job = tether.client().get_job(deferred.value.trigger.job_id)
    assert job["cancel_requested_at"] is None
