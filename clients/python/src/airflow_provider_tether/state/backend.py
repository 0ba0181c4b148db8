"""TetherStoreBackend: Airflow's task state store (``[state_store] backend``) kept in tether.

Airflow builds the backend once, with no arguments, wherever its Execution API runs (the API
server, and in-process for the triggerer and ``airflow tasks test``), so it is configured from
Airflow's configuration: ``[tether] url`` and ``[tether] token`` (or the environment variables
``AIRFLOW__TETHER__URL`` / ``AIRFLOW__TETHER__TOKEN``), falling back to ``TETHER_URL`` /
``TETHER_TOKEN``. The token must be an admin token: the backend serves every DAG.

- ``TaskScope`` maps to tether's task-instance scope; ``AssetScope`` to tether's asset scope,
  named by the asset's URI, else its name, else ``airflow-asset-<id>`` (server-side callers
  pass only the id, so the same asset is one tether scope as long as it is addressed the same
  way).
- Values are Airflow's JSON strings, stored verbatim (as a JSON string in tether) and returned
  unchanged.
- ``expires_at`` becomes tether's retention (``None``: ``never``); expired keys are removed by
  tether's own scheduled GC, so ``cleanup()`` does nothing.
- A clear reruns. Airflow 3.3.2 keeps a task instance's state when a person clears it, so an
  operator built on ``ResumableJobMixin`` (``DatabricksSubmitRunOperator``, say) finds the run
  id of the try that already succeeded, sees ``SUCCESS``, and reruns nothing. The backend
  therefore hides a task-instance key last written before an earlier try of that task
  instance *succeeded* (that try took the result; Airflow's ``task_instance_history`` says
  when it ended): the cleared task submits a new run and writes its id. A key written after
  the last success, as after an eviction, is read as usual, so a retry still reattaches.
  ``[tether] rerun_after_clear = False`` turns this off. The two times come from two clocks
  (tether's and Airflow's API server's): they must agree to within the time a job takes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from airflow.state import AssetScope, BaseStoreBackend, StoreScope, TaskScope

from airflow_provider_tether._compat import (
    core_conf_boolean,
    core_conf_get,
    last_success_of_an_earlier_try,
)
from airflow_provider_tether.client import (
    Scope,
    TetherClient,
    TetherEndpoint,
    endpoint_from_env,
)

log = logging.getLogger(__name__)

#: When the latest earlier try of a task instance that succeeded ended:
#: ``(dag_id, run_id, task_id, map_index, session) -> datetime | None``.
LastSuccess = Callable[[str, str, str, int, Any], "datetime | None"]


def configured_endpoint() -> TetherEndpoint:
    """``[tether] url`` / ``token`` from Airflow's configuration, else the environment."""
    url = core_conf_get("tether", "url")
    if url:
        return TetherEndpoint(base_url=url.rstrip("/"), token=core_conf_get("tether", "token"))
    endpoint = endpoint_from_env()
    if endpoint is None:
        raise ValueError(
            "TetherStoreBackend needs [tether] url (AIRFLOW__TETHER__URL) or TETHER_URL"
        )
    return endpoint


def tether_scope(scope: StoreScope) -> Scope:
    """The tether scope of an Airflow scope."""
    if isinstance(scope, TaskScope):
        return Scope.task_instance(scope.dag_id, scope.run_id, scope.task_id, scope.map_index)
    if isinstance(scope, AssetScope):
        name = scope.uri or scope.name or f"airflow-asset-{scope.asset_id}"
        return Scope.asset(name)
    raise TypeError(f"unknown state store scope {scope!r}")


def retention(expires_at: datetime | None) -> str:
    """tether's retention for Airflow's ``expires_at`` (whole seconds, at least one)."""
    if expires_at is None:
        return "never"
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    seconds = int((expires_at - datetime.now(timezone.utc)).total_seconds())
    return f"{max(seconds, 1)}s"


def stored(entry: Any) -> str | None:
    """Airflow's JSON string of a tether entry (a value tether wrote itself is encoded)."""
    if entry is None:
        return None
    value = entry["value"]
    return value if isinstance(value, str) else json.dumps(value)


def configured_rerun_after_clear() -> bool:
    """``[tether] rerun_after_clear`` (default true)."""
    return core_conf_boolean("tether", "rerun_after_clear", fallback=True)


def written_at(entry: Any) -> datetime:
    """When tether last wrote the entry."""
    return datetime.fromisoformat(str(entry["updated_at"]).replace("Z", "+00:00"))


class TetherStoreBackend(BaseStoreBackend):
    """Airflow's task state store in tether: versions, retention and automatic GC included."""

    def __init__(
        self,
        client: TetherClient | None = None,
        *,
        rerun_after_clear: bool | None = None,
        last_success: LastSuccess = last_success_of_an_earlier_try,
    ) -> None:
        self.client = client or TetherClient(configured_endpoint())
        self.rerun_after_clear = (
            configured_rerun_after_clear() if rerun_after_clear is None else rerun_after_clear
        )
        self._last_success = last_success

    def _taken_by_a_success(self, scope: StoreScope, key: str, entry: Any, session: Any) -> bool:
        """Whether an earlier try of the task instance succeeded after the entry's last write
        (so that try took it, and a cleared task must not be told it again)."""
        if entry is None or not self.rerun_after_clear or not isinstance(scope, TaskScope):
            return False
        ended = self._last_success(
            scope.dag_id, scope.run_id, scope.task_id, scope.map_index, session
        )
        if ended is None:
            return False
        if ended.tzinfo is None:
            ended = ended.replace(tzinfo=timezone.utc)
        if written_at(entry) > ended:
            return False
        log.info(
            "task state %r of %s/%s/%s[%s] was written before an earlier try succeeded (%s): "
            "not shown to the cleared task, which runs anew",
            key,
            scope.dag_id,
            scope.run_id,
            scope.task_id,
            scope.map_index,
            ended.isoformat(),
        )
        return True

    def get(self, scope: StoreScope, key: str, *, session: Any = None) -> str | None:
        entry = self.client.get_state(tether_scope(scope), key)
        if self._taken_by_a_success(scope, key, entry, session):
            return None
        return stored(entry)

    def set(
        self,
        scope: StoreScope,
        key: str,
        value: str,
        *,
        expires_at: datetime | None = None,
        session: Any = None,
    ) -> None:
        self.client.put_state(tether_scope(scope), key, value, retention=retention(expires_at))

    def delete(self, scope: StoreScope, key: str, *, session: Any = None) -> None:
        self.client.delete_state(tether_scope(scope), key)

    def clear(
        self, scope: StoreScope, *, all_map_indices: bool = False, session: Any = None
    ) -> None:
        self.client.clear_state(
            tether_scope(scope), all_map_indices=all_map_indices and isinstance(scope, TaskScope)
        )

    async def aget(self, scope: StoreScope, key: str, *, session: Any = None) -> str | None:
        entry = await self.client.a_get_state(tether_scope(scope), key)
        # Airflow's metadata is read synchronously, with a session of its own, off the loop.
        if await asyncio.to_thread(self._taken_by_a_success, scope, key, entry, None):
            return None
        return stored(entry)

    async def aset(
        self,
        scope: StoreScope,
        key: str,
        value: str,
        *,
        expires_at: datetime | None = None,
        session: Any = None,
    ) -> None:
        await self.client.a_put_state(
            tether_scope(scope), key, value, retention=retention(expires_at)
        )

    async def adelete(self, scope: StoreScope, key: str, *, session: Any = None) -> None:
        await self.client.a_delete_state(tether_scope(scope), key)

    async def aclear(
        self, scope: StoreScope, *, all_map_indices: bool = False, session: Any = None
    ) -> None:
        await self.client.a_clear_state(
            tether_scope(scope), all_map_indices=all_map_indices and isinstance(scope, TaskScope)
        )

    def cleanup(self) -> None:
        """Nothing to do: tether's scheduled GC (``gc.schedule``) removes expired keys."""
