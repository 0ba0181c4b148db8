"""Task state through tether: TetherTaskState for plain tasks, and TetherStoreBackend for
Airflow's `[state_store] backend`, sync and async, against a real `tether serve`."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from airflow.state import AssetScope, BaseStoreBackend, TaskScope

from airflow_provider_tether.exceptions import TetherApiError
from airflow_provider_tether.hooks.tether import Scope
from airflow_provider_tether.state import TetherTaskState
from airflow_provider_tether.state.backend import TetherStoreBackend

from ..conftest import Tether


def context(run_id: str, task: str = "load", map_index: int = -1) -> dict[str, object]:
    ti = SimpleNamespace(dag_id="state", run_id=run_id, task_id=task, map_index=map_index)
    return {"ti": ti}


def test_a_watermark_survives_into_the_next_run(tether: Tether) -> None:
    first = TetherTaskState.from_context(context("run-1"))
    assert first.across_runs.get("watermark", default="1970-01-01") == "1970-01-01"
    first.across_runs.set("watermark", "2026-12-01")
    second = TetherTaskState.from_context(context("run-2"))
    assert second.across_runs.get("watermark") == "2026-12-01"
    # Task-instance state is per run.
    first.task_instance.set("checkpoint", {"offset": 10})
    assert second.task_instance.get("checkpoint") is None
    assert first.task_instance.get("checkpoint") == {"offset": 10}


def test_compare_and_set_refuses_a_stale_writer(tether: Tether) -> None:
    state = TetherTaskState.from_context(context("cas")).task_instance
    version = state.set("cursor", 1, if_version=0)
    assert state.set("cursor", 2, if_version=version) == version + 1
    with pytest.raises(TetherApiError) as stale:
        state.set("cursor", 3, if_version=version)
    assert (stale.value.status, stale.value.code) == (409, "version_conflict")
    assert state.get("cursor") == 2
    state.delete("cursor")
    assert state.get("cursor") is None


def test_the_backend_is_airflows_kind_of_backend(tether: Tether) -> None:
    assert issubclass(TetherStoreBackend, BaseStoreBackend)


class History:
    """When earlier tries of task instances succeeded: what Airflow's ``task_instance_history``
    tells the backend in the API server (the real lookup runs in the deployment scenarios)."""

    def __init__(self) -> None:
        self.succeeded: dict[tuple[str, str, str, int], datetime] = {}

    def __call__(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, session: object
    ) -> datetime | None:
        return self.succeeded.get((dag_id, run_id, task_id, map_index))

    def a_try_succeeds(self, scope: TaskScope) -> None:
        self.succeeded[(scope.dag_id, scope.run_id, scope.task_id, scope.map_index)] = datetime.now(
            timezone.utc
        )


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def backend(tether: Tether, history: History) -> TetherStoreBackend:
    return TetherStoreBackend(tether.client(), last_success=history)


def test_values_round_trip_verbatim(backend: TetherStoreBackend) -> None:
    scope = TaskScope("backend", "r1", "submit", -1)
    raw = '{"b": 1,  "a": [1, 2.50]}'
    backend.set(scope, "databricks_run_id", raw)
    assert backend.get(scope, "databricks_run_id") == raw
    backend.set(scope, "n", "42")
    assert backend.get(scope, "n") == "42"
    backend.delete(scope, "n")
    assert backend.get(scope, "n") is None
    backend.delete(scope, "n")  # deleting a missing key is not an error


def test_expiry_maps_to_retention(backend: TetherStoreBackend, tether: Tether) -> None:
    scope = TaskScope("backend", "r1", "expiring", -1)
    backend.set(scope, "k", '"v"', expires_at=datetime.now(timezone.utc) + timedelta(hours=2))
    entry = tether.client().get_state(Scope.task_instance("backend", "r1", "expiring"), "k")
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=110) < expires - datetime.now(timezone.utc) <= timedelta(hours=2)
    backend.set(scope, "forever", '"v"')
    forever = tether.client().get_state(Scope.task_instance("backend", "r1", "expiring"), "forever")
    assert forever["expires_at"] is None


def test_clear_one_or_all_map_indices(backend: TetherStoreBackend) -> None:
    one, two = TaskScope("backend", "r2", "mapped", 0), TaskScope("backend", "r2", "mapped", 1)
    backend.set(one, "k", "1")
    backend.set(two, "k", "2")
    backend.clear(one)
    assert (backend.get(one, "k"), backend.get(two, "k")) == (None, "2")
    backend.set(one, "k", "1")
    backend.clear(one, all_map_indices=True)
    assert (backend.get(one, "k"), backend.get(two, "k")) == (None, None)


def test_asset_scopes(backend: TetherStoreBackend) -> None:
    by_uri = AssetScope(uri="s3://lake/orders", name="orders")
    backend.set(by_uri, "watermark", '"2026-12-01"')
    assert backend.get(AssetScope(uri="s3://lake/orders"), "watermark") == '"2026-12-01"'
    by_id = AssetScope(asset_id=7)
    backend.set(by_id, "k", "true")
    assert backend.get(by_id, "k") == "true"
    backend.clear(by_id)
    assert backend.get(by_id, "k") is None


async def test_async_variants(backend: TetherStoreBackend) -> None:
    scope = TaskScope("backend", "r3", "async", -1)
    await backend.aset(scope, "k", "[1, 2]")
    assert await backend.aget(scope, "k") == "[1, 2]"
    await backend.adelete(scope, "k")
    assert await backend.aget(scope, "k") is None
    await backend.aset(scope, "k", "1")
    await backend.aclear(scope)
    assert await backend.aget(scope, "k") is None


def test_a_cleared_task_does_not_read_what_a_succeeded_try_wrote(
    backend: TetherStoreBackend, history: History
) -> None:
    scope = TaskScope("backend", "r5", "submit", -1)
    backend.set(scope, "databricks_run_id", "7")
    history.a_try_succeeds(scope)  # try 1 succeeded with run 7; a person clears the task
    assert backend.get(scope, "databricks_run_id") is None, "try 2 submits anew"
    time.sleep(0.01)
    backend.set(scope, "databricks_run_id", "8")  # try 2's run
    assert backend.get(scope, "databricks_run_id") == "8", "a retry of try 2 reattaches to it"


async def test_a_cleared_task_does_not_read_it_async_either(
    backend: TetherStoreBackend, history: History
) -> None:
    scope = TaskScope("backend", "r5", "async", -1)
    await backend.aset(scope, "k", "1")
    history.a_try_succeeds(scope)
    assert await backend.aget(scope, "k") is None


def test_a_retry_after_an_eviction_reads_it(backend: TetherStoreBackend, history: History) -> None:
    scope = TaskScope("backend", "r6", "submit", -1)
    history.a_try_succeeds(scope)  # an earlier success, then a clear; then this try wrote
    time.sleep(0.01)
    backend.set(scope, "databricks_run_id", "9")
    assert backend.get(scope, "databricks_run_id") == "9"
    other = TaskScope("backend", "r6", "other", -1)  # no earlier try succeeded
    backend.set(other, "k", "1")
    assert backend.get(other, "k") == "1"
    asset = AssetScope(uri="s3://lake/r6")  # asset state is not a task instance's
    backend.set(asset, "k", "1")
    assert backend.get(asset, "k") == "1"


def test_rerun_after_clear_can_be_turned_off(tether: Tether, history: History) -> None:
    backend = TetherStoreBackend(tether.client(), rerun_after_clear=False, last_success=history)
    scope = TaskScope("backend", "r7", "submit", -1)
    backend.set(scope, "databricks_run_id", "7")
    history.a_try_succeeds(scope)
    assert backend.get(scope, "databricks_run_id") == "7"


def test_the_backend_reads_airflows_configuration(
    tether: Tether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__TETHER__URL", tether.url)
    monkeypatch.setenv("AIRFLOW__TETHER__TOKEN", tether.token)
    monkeypatch.setenv("AIRFLOW__TETHER__RERUN_AFTER_CLEAR", "False")
    backend = TetherStoreBackend()
    assert not backend.rerun_after_clear
    scope = TaskScope("backend", "r4", "configured", -1)
    backend.set(scope, "k", '"x"')
    assert backend.get(scope, "k") == '"x"'
