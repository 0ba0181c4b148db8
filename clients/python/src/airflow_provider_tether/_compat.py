"""The one place this package reaches into Airflow's non-public modules.

Airflow 3.3 offers a task instance's state to tasks and triggers only through the task SDK's
supervisor channel (``airflow.sdk.execution_time``), which has no public wrapper yet; an extra
link reads its XCom through the same package (as Airflow's own providers do, through
``airflow.providers.common.compat.sdk``); and the configuration moved into the task SDK
(``airflow.sdk.configuration``), while the state store backend, which runs inside Airflow's API
server, reads the core's (``airflow.configuration``) and which earlier tries of a task instance
succeeded from Airflow's metadata models. When Airflow publishes these, only this module
changes. Every import is made inside the function that needs it, so that importing this module
costs nothing and needs no running Airflow component.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def conf_boolean(section: str, key: str, fallback: bool) -> bool:
    """A boolean option of Airflow's configuration."""
    from airflow.sdk.configuration import conf

    return bool(conf.getboolean(section, key, fallback=fallback))


def core_conf_get(section: str, key: str) -> str | None:
    """An option of the Airflow core's configuration (where the API server runs)."""
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return None if value is None else str(value)


def core_conf_boolean(section: str, key: str, fallback: bool) -> bool:
    """A boolean option of the Airflow core's configuration."""
    from airflow.configuration import conf

    return bool(conf.getboolean(section, key, fallback=fallback))


def xcom_value(key: str, ti_key: Any) -> Any:
    """The XCom ``key`` of the task instance ``ti_key`` (what an extra link shows)."""
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(key=key, ti_key=ti_key)


def task_states_request(dag_id: str, run_id: str, task_id: str, map_index: int) -> Any:
    """The supervisor message that asks for one task instance's state."""
    from airflow.sdk.execution_time.comms import GetTaskStates

    return GetTaskStates(
        dag_id=dag_id,
        run_ids=[run_id],
        task_ids=[task_id],
        map_index=map_index if map_index >= 0 else None,
    )


def task_states_of(answer: Any) -> dict[str, Any]:
    """The states in the supervisor's answer, by run id and task."""
    from airflow.sdk.execution_time.comms import TaskStatesResult

    if not isinstance(answer, TaskStatesResult):
        raise TypeError(f"unexpected answer {answer!r}")
    return answer.task_states


def supervisor_comms() -> Any:
    """The channel to Airflow's task supervisor of this process (a task, or the triggerer)."""
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    return SUPERVISOR_COMMS


def last_success_of_an_earlier_try(
    dag_id: str, run_id: str, task_id: str, map_index: int, session: Any
) -> datetime | None:
    """When the latest earlier try of this task instance that *succeeded* ended, from
    Airflow's metadata database (``task_instance_history``, where a clear or a retry files the
    try it ends); ``None`` if no earlier try succeeded. Runs where the Execution API runs (the
    API server): ``session`` is its SQLAlchemy session, or ``None`` for a session of its own."""
    from airflow.models.taskinstancehistory import TaskInstanceHistory as TIH
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import func, select

    query = select(func.max(TIH.end_date)).where(
        TIH.dag_id == dag_id,
        TIH.run_id == run_id,
        TIH.task_id == task_id,
        TIH.map_index == map_index,
        TIH.state == TaskInstanceState.SUCCESS,
    )
    if session is not None:
        ended: datetime | None = session.scalar(query)
        return ended
    with create_session() as own:
        ended = own.scalar(query)
        return ended
