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
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from airflow.state import AssetScope, BaseStoreBackend, StoreScope, TaskScope

from airflow_provider_tether.hooks.tether import (
    Scope,
    TetherClient,
    TetherEndpoint,
    endpoint_from_env,
)


def configured_endpoint() -> TetherEndpoint:
    """``[tether] url`` / ``token`` from Airflow's configuration, else the environment."""
    from airflow.configuration import conf

    url = conf.get("tether", "url", fallback=None)
    if url:
        return TetherEndpoint(
            base_url=url.rstrip("/"), token=conf.get("tether", "token", fallback=None)
        )
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


class TetherStoreBackend(BaseStoreBackend):
    """Airflow's task state store in tether: versions, retention and automatic GC included."""

    def __init__(self, client: TetherClient | None = None) -> None:
        self.client = client or TetherClient(configured_endpoint())

    def get(self, scope: StoreScope, key: str, *, session: Any = None) -> str | None:
        return stored(self.client.get_state(tether_scope(scope), key))

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
        return stored(await self.client.a_get_state(tether_scope(scope), key))

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
