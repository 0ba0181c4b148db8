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

from airflow_provider_tether._compat import supervisor_comms, task_states_of, task_states_request

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


def stopped_by_a_person(dag_id: str, run_id: str, task_id: str, map_index: int) -> bool:
    """In a task process: whether the task instance left the running states."""
    try:
        request = task_states_request(dag_id, run_id, task_id, map_index)
        answer = supervisor_comms().send(request)
        return _person_stopped(task_states_of(answer), run_id, task_id, map_index)
    except Exception:  # any failure means: do not cancel
        return False


async def stopped_by_a_person_async(dag_id: str, run_id: str, task_id: str, map_index: int) -> bool:
    """In the triggerer: whether the task instance left the running states."""
    try:
        request = task_states_request(dag_id, run_id, task_id, map_index)
        answer = await supervisor_comms().asend(request)
        return _person_stopped(task_states_of(answer), run_id, task_id, map_index)
    except Exception:  # any failure means: do not cancel
        return False
