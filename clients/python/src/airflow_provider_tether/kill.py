"""Telling a person's "stop" from a disruption, before anything is cancelled.

Airflow calls ``on_kill`` both when a person acts (mark failed, mark success, clear) and when
the process is merely being stopped: a SIGTERM on deploy reaches ``BaseOperator.on_kill`` on
workers, and a trigger reassigned from a stale triggerer reaches ``BaseTrigger.on_kill``. The
task instance's state tells them apart: a person's action has already moved it out of the
running states when ``on_kill`` runs; a disruption has not. When the state cannot be read, the
job is left running: never cancelled by accident.
"""

from __future__ import annotations

from typing import Any

#: States a task instance has while Airflow still wants it to run: not a person's stop.
STILL_WANTED = frozenset(
    {"running", "deferred", "queued", "scheduled", "up_for_retry", "up_for_reschedule"}
)


def _person_stopped(task_states: dict[str, Any], run_id: str, task_id: str, map_index: int) -> bool:
    """A cleared task instance has no state (None); one marked failed or successful has left the
    running states. A task instance Airflow does not report is not taken as a stop."""
    run = task_states.get(run_id, {})
    name = task_id if map_index < 0 else f"{task_id}_{map_index}"
    if name not in run:
        return False
    state = run[name]
    return state is None or str(state) not in STILL_WANTED


def _states(answer: Any) -> dict[str, Any]:
    from airflow.sdk.execution_time.comms import TaskStatesResult

    if not isinstance(answer, TaskStatesResult):
        raise TypeError(f"unexpected answer {answer!r}")
    return answer.task_states


def _request(dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    # Airflow 3.3 offers the task-instance state to tasks and triggers only through the task
    # SDK's supervisor channel, which has no public wrapper yet.
    from airflow.sdk.execution_time.comms import GetTaskStates

    return GetTaskStates(
        dag_id=dag_id,
        run_ids=[run_id],
        task_ids=[task_id],
        map_index=map_index if map_index >= 0 else None,
    )


def stopped_by_a_person(dag_id: str, run_id: str, task_id: str, map_index: int) -> bool:
    """In a task process: whether the task instance left the running states."""
    try:
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        answer = SUPERVISOR_COMMS.send(_request(dag_id, run_id, task_id, map_index))
        return _person_stopped(_states(answer), run_id, task_id, map_index)
    except Exception:  # any failure means: do not cancel
        return False


async def stopped_by_a_person_async(dag_id: str, run_id: str, task_id: str, map_index: int) -> bool:
    """In the triggerer: whether the task instance left the running states."""
    try:
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        answer = await SUPERVISOR_COMMS.asend(_request(dag_id, run_id, task_id, map_index))
        return _person_stopped(_states(answer), run_id, task_id, map_index)
    except Exception:  # any failure means: do not cancel
        return False
