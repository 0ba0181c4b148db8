"""TetherJobTrigger: waits for a tether job in the triggerer, one long-poll at a time.

The trigger keeps no state but the job id and the state it last saw, so a triggerer that
restarts (or another triggerer that takes the trigger over) simply opens the next long-poll.
It never cancels on shutdown or redistribution: only ``on_kill``, after it confirmed with
Airflow that a person stopped the task (mark failed, mark success, clear), cancels the job.

Airflow re-sends its cancellation to a trigger being killed at every sync with the trigger
runner, which would interrupt a slow ``on_kill`` halfway (after the check, before the cancel):
the check-and-cancel runs as a task of its own that outlives those interruptions. Its cancel
names the task's try, so that tether refuses it once a later try (after a clear) owns the job.
The triggers of a triggerer wait together: one long-poll for all their jobs
(:mod:`airflow_provider_tether.waiter`), not one open request per trigger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_tether.client import DEFAULT_CONN_ID, TetherApiError, TetherClient
from airflow_provider_tether.hooks.tether import TetherHook
from airflow_provider_tether.kill import stopped_by_a_person_async
from airflow_provider_tether.waiter import wait_for_change

#: How long one long-poll waits at most (tether caps it with ``api.max_wait``).
WAIT_SECONDS = 60

#: The check-and-cancel tasks in flight: held here so that none is garbage-collected while
#: the trigger that started it is gone.
_KILLS: set[asyncio.Task[None]] = set()


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
            self._tether = await asyncio.to_thread(TetherHook(self.tether_conn_id).get_conn)
        return self._tether

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = await self._client()
        while True:
            answer = await wait_for_change(client, self.job_id, self.state, self.wait_seconds)
            job = answer["job"]
            self.state = job["state"]
            if job["phase"] == "terminal":
                yield TriggerEvent({"job": job})  # type: ignore[no-untyped-call]
                return

    async def on_kill(self) -> None:
        """Cancels the job, but only if a person stopped the task (Airflow also calls this
        when a trigger moves away from a stale triggerer)."""
        ti = self.task_instance
        if ti is None:
            self.log.info("tether job %s left running: no task instance to ask", self.job_id)
            return
        kill = asyncio.ensure_future(
            self._cancel_if_stopped(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)
        )
        _KILLS.add(kill)
        kill.add_done_callback(_KILLS.discard)
        # Shielded: a repeated cancellation of this coroutine leaves the task running.
        await asyncio.shield(kill)

    async def _cancel_if_stopped(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
    ) -> None:
        if not await stopped_by_a_person_async(dag_id, run_id, task_id, map_index):
            self.log.info("tether job %s left running: not stopped by a person", self.job_id)
            return
        client = await self._client()
        try:
            await client.a_cancel_job(
                self.job_id, "the Airflow task was stopped by a user", try_number
            )
        except TetherApiError as e:
            if e.code != "cancel_refused":
                raise
            self.log.info("tether job %s left running: %s", self.job_id, e.message)
            return
        self.log.info("tether job %s cancelled: the task was stopped by a user", self.job_id)
