"""TetherJobOperator's decisions, with tether mocked: a person's stop and an expired
``execution_timeout`` cancel the job (running and deferred); a disruption never does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout, TaskDeferred
from airflow.sdk.execution_time.timeout import timeout

from airflow_provider_tether.exceptions import TetherJobFailed, TetherTaskStopped
from airflow_provider_tether.hooks.tether import TetherHook
from airflow_provider_tether.kill import _person_stopped
from airflow_provider_tether.operators import job as operator_module
from airflow_provider_tether.operators.job import TetherJobOperator

from .fake import FakeTether


class FakeTi(SimpleNamespace):
    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(try_number: int = 1, started_ago: float = 0.0) -> Any:
    started = datetime.now(timezone.utc) - timedelta(seconds=started_ago)
    ti = FakeTi(
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=-1,
        try_number=try_number,
        start_date=started,
        pushed={},
    )
    return {"ti": ti}


@pytest.fixture
def tether(fake: FakeTether, monkeypatch: pytest.MonkeyPatch) -> FakeTether:
    client = fake.client()
    monkeypatch.setattr(TetherHook, "get_conn", lambda self: client)
    return fake


def operator(**kwargs: Any) -> TetherJobOperator:
    return TetherJobOperator(task_id="t", provider="databricks", spec={}, wait_seconds=1, **kwargs)


def run_with_airflows_timeout(op: TetherJobOperator, ctx: Any, seconds: float) -> None:
    """What Airflow's task runner does with ``execution_timeout`` (``_run_execute_callable``):
    SIGALRM raises ``AirflowTaskTimeout`` in ``execute``, then it calls ``on_kill``."""
    try:
        with timeout(seconds):  # type: ignore[no-untyped-call]
            op.execute(ctx)
    except AirflowTaskTimeout:
        op.on_kill()
        raise


def test_a_running_task_past_its_execution_timeout_cancels_its_job(tether: FakeTether) -> None:
    op = operator(execution_timeout=timedelta(seconds=1))
    with pytest.raises(AirflowTaskTimeout):
        run_with_airflows_timeout(op, context(), 1)
    (job,) = tether.jobs.values()
    assert len(tether.cancels) == 1, tether.cancels
    (cancel,) = tether.cancels
    assert (cancel["id"], cancel["try_number"]) == (job["id"], 1)
    assert "execution_timeout" in cancel["reason"]


def test_a_sigterm_leaves_the_job_running(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_module, "stopped_by_a_person", lambda *_: False)
    op = operator()
    job = tether.add_job(task_id="t")
    # Waiting for the job, as execute is when Airflow's SIGTERM handler calls on_kill.
    op._job_id, op._waiting = job["id"], True
    op._identity = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 1}
    with pytest.raises(TetherTaskStopped) as stopped:
        op.on_kill()
    assert stopped.value.cancelled is False
    assert tether.cancels == []


def test_a_persons_stop_cancels_with_the_try_number(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_module, "stopped_by_a_person", lambda *_: True)
    op = operator()
    job = tether.add_job(task_id="t", try_number=2)
    op._job_id = job["id"]
    op._identity = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 2}
    op.on_kill()
    assert [(c["id"], c["try_number"]) for c in tether.cancels] == [(job["id"], 2)]


def test_a_stale_tries_stop_is_refused_quietly(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_module, "stopped_by_a_person", lambda *_: True)
    op = operator()
    job = tether.add_job(task_id="t", try_number=3)
    op._job_id = job["id"]
    op._identity = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "try_number": 2}
    op.on_kill()  # tether answers cancel_refused: a later try owns the job
    assert job["cancel_requested_at"] is None


def test_a_deferred_task_gets_what_is_left_of_its_execution_timeout(tether: FakeTether) -> None:
    op = operator(deferrable=True, execution_timeout=timedelta(minutes=10))
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(started_ago=240))
    left = deferred.value.timeout
    assert isinstance(left, timedelta)
    assert timedelta(minutes=5, seconds=55) < left <= timedelta(minutes=6)


def test_a_deferred_task_without_execution_timeout_has_no_deferral_timeout(
    tether: FakeTether,
) -> None:
    with pytest.raises(TaskDeferred) as deferred:
        operator(deferrable=True).execute(context())
    assert deferred.value.timeout is None


def test_a_deferral_that_times_out_cancels_the_job_once(tether: FakeTether) -> None:
    with pytest.raises(TaskDeferred):
        operator(deferrable=True, execution_timeout=timedelta(seconds=5)).execute(context())
    (job,) = tether.jobs.values()
    # Airflow resumes the task (a fresh operator, from the serialized DAG) only to fail it.
    resumed = operator(deferrable=True, execution_timeout=timedelta(seconds=5))
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(TaskDeferralTimeout):
        resumed.resume_execution(TRIGGER_FAIL_REPR, failure, context())
    assert [(c["id"], c["try_number"]) for c in tether.cancels] == [(job["id"], 1)]


def test_a_deferral_timeout_after_the_job_ended_cancels_nothing(tether: FakeTether) -> None:
    with pytest.raises(TaskDeferred):
        operator(deferrable=True, execution_timeout=timedelta(seconds=5)).execute(context())
    (job,) = tether.jobs.values()
    tether.end(job["id"])
    failure = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(TaskDeferralTimeout):
        operator(deferrable=True).resume_execution(TRIGGER_FAIL_REPR, failure, context())
    assert tether.cancels == []


def test_the_triggers_event_finishes_the_task(tether: FakeTether) -> None:
    job = tether.add_job(task_id="t", state="failed", phase="terminal", message="OOM")
    with pytest.raises(TetherJobFailed, match="OOM"):
        operator().resume_execution("execute_complete", {"event": {"job": job}}, context())
    done = tether.add_job(task_id="t", name="second", state="succeeded", phase="terminal")
    result = operator().execute_complete(context(), {"job": done})
    assert result["state"] == "succeeded" and result["job_id"] == done["id"]


@pytest.mark.parametrize(
    ("state", "stopped"),
    [
        ("running", False),
        ("deferred", False),
        ("queued", False),
        ("up_for_retry", False),
        ("restarting", True),
        ("failed", True),
        ("success", True),
        (None, True),
    ],
)
def test_only_a_person_stops_a_task(state: str | None, stopped: bool) -> None:
    assert _person_stopped({"r": {"t": state}}, "r", "t", -1) is stopped


def test_an_unknown_task_instance_is_never_a_stop() -> None:
    assert _person_stopped({}, "r", "t", -1) is False
    assert _person_stopped({"r": {"t_3": "failed"}}, "r", "t", 3) is True
