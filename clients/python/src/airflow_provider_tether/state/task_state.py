"""Task state for plain tasks: tether's task-instance, task-across-runs and asset scopes from
the running task's identity, so that an incremental task keeps its watermark in tether.

    from airflow_provider_tether.state import TetherTaskState

    @task
    def load(**context):
        state = TetherTaskState.from_context(context)
        since = state.across_runs.get("watermark", default="1970-01-01")
        ...
        state.across_runs.set("watermark", new_watermark)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_tether.client import DEFAULT_CONN_ID, Scope, TetherClient
from airflow_provider_tether.hooks.tether import TetherHook


@dataclass(frozen=True)
class ScopedState:
    """get / set / delete / clear on one tether scope."""

    client: TetherClient
    scope: Scope

    def get(self, key: str, default: Any = None) -> Any:
        entry = self.client.get_state(self.scope, key)
        return default if entry is None else entry["value"]

    def entry(self, key: str) -> Any:
        """The whole entry (value, version, expiry), or ``None``."""
        return self.client.get_state(self.scope, key)

    def set(
        self, key: str, value: Any, *, retention: str | None = None, if_version: int | None = None
    ) -> int:
        """Writes ``value`` (any JSON but null); returns the key's new version. ``if_version``
        makes it a compare-and-set (0: the key must not exist)."""
        written = self.client.put_state(
            self.scope, key, value, retention=retention, if_version=if_version
        )
        return int(written["version"])

    def delete(self, key: str) -> None:
        self.client.delete_state(self.scope, key)

    def clear(self) -> None:
        self.client.clear_state(self.scope)


@dataclass(frozen=True)
class TetherTaskState:
    """The scopes a running task reaches: its own try-surviving state, its task across runs,
    and any asset."""

    client: TetherClient
    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @staticmethod
    def from_context(context: Any, tether_conn_id: str = DEFAULT_CONN_ID) -> TetherTaskState:
        ti = context["ti"]
        return TetherTaskState(
            client=TetherHook(tether_conn_id).get_conn(),
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=ti.map_index if ti.map_index is not None else -1,
        )

    @property
    def task_instance(self) -> ScopedState:
        """This task instance (survives retries; gone with the run)."""
        return ScopedState(
            self.client, Scope.task_instance(self.dag_id, self.run_id, self.task_id, self.map_index)
        )

    @property
    def across_runs(self) -> ScopedState:
        """This task across DAG runs: watermarks of incremental tasks."""
        return ScopedState(self.client, Scope.task(self.dag_id, self.task_id))

    def asset(self, name: str) -> ScopedState:
        """An asset's state, by its name or URI."""
        return ScopedState(self.client, Scope.asset(name))
