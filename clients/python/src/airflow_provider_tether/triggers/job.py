"""TetherJobTrigger: waits for a tether job in the triggerer, one long-poll at a time.

The trigger keeps no state but the job id and the state it last saw, so a triggerer that
restarts (or another triggerer that takes the trigger over) simply opens the next long-poll.
It never cancels on shutdown or redistribution: only ``on_kill``, after it confirmed with
Airflow that a person stopped the task (mark failed, mark success, clear), cancels the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_tether.hooks.tether import DEFAULT_CONN_ID, TetherClient, TetherHook
from airflow_provider_tether.kill import stopped_by_a_person_async

#: How long one long-poll waits at most (tether caps it with ``api.max_wait``).
WAIT_SECONDS = 60


class TetherJobTrigger(BaseTrigger):
    """Fires once the tether job ``job_id`` has finished, with its record."""

    def __init__(
        self,
        job_id: int,
        tether_conn_id: str = DEFAULT_CONN_ID,
        state: str | None = None,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_id = job_id
        self.tether_conn_id = tether_conn_id
        self.state = state
        self.wait_seconds = wait_seconds
        self._tether: TetherClient | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_tether.triggers.job.TetherJobTrigger",
            {
                "job_id": self.job_id,
                "tether_conn_id": self.tether_conn_id,
                "state": self.state,
                "wait_seconds": self.wait_seconds,
            },
        )

    async def _client(self) -> TetherClient:
        # Reading the connection is a synchronous call to Airflow's supervisor: off the loop.
        if self._tether is None:
            self._tether = await asyncio.to_thread(lambda: TetherHook(self.tether_conn_id).client())
        return self._tether

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = await self._client()
        while True:
            answer = await client.await_job(self.job_id, self.state, self.wait_seconds)
            job = answer["job"]
            self.state = job["state"]
            if job["phase"] == "terminal":
                yield TriggerEvent({"job": job})  # type: ignore[no-untyped-call]
                return

    async def on_kill(self) -> None:
        """Cancels the job, but only if a person stopped the task (Airflow also calls this
        when a trigger moves away from a stale triggerer)."""
        ti = self.task_instance
        if ti is None or not await stopped_by_a_person_async(
            ti.dag_id, ti.run_id, ti.task_id, ti.map_index
        ):
            self.log.info("tether job %s left running: not stopped by a person", self.job_id)
            return
        client = await self._client()
        # on_kill runs in the trigger's task, which Airflow has just cancelled: httpx's async
        # stack (anyio) would see that cancellation on its first await, so the call runs in
        # a thread of its own.
        await asyncio.to_thread(
            client.cancel_job, self.job_id, "the Airflow task was stopped by a user"
        )
        self.log.info("tether job %s cancelled: the task was stopped by a user", self.job_id)
