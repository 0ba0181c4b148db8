"""The shared waiter: every wait of one event loop for tether jobs, as one long-poll.

A triggerer holding hundreds of tether triggers holds one ``POST /v1/jobs/wait`` per thousand
jobs, not one request per trigger. Waits are shared only between clients that would make the
same request: the waiter is keyed by the whole endpoint (base URL, token, request timeout and
attempts), by the long-poll time and by the client's transport, so that no trigger's settings
silently apply to another's. Like :mod:`airflow_provider_tether.client`, it imports nothing of
Airflow.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from airflow_provider_tether.client import TetherApiError, TetherClient, TetherEndpoint

#: The most jobs one ``POST /v1/jobs/wait`` may name (tether's limit).
MAX_WAIT_JOBS = 1000
#: How long a new wait lets others join before the open long-poll is renewed with it.
JOIN_DELAY = 0.1


class JobWaiter:
    """Every wait of one event loop for the jobs of one endpoint, as one long-poll.

    A job's waiters register a future; the waiter keeps one ``POST /v1/jobs/wait`` open for
    all registered jobs (one per thousand), resolves the futures of the jobs tether reports
    changed (or gone: not found, forbidden), and opens the next. A job registered while a
    request is open renews it, after a tenth of a second in which others may join. A failed
    request (after the client's retries) fails every wait that it served.
    """

    def __init__(self, client: TetherClient, timeout: int) -> None:
        self._client = client
        self._timeout = timeout
        #: Job id -> (the state its first waiter knows, the waiters' futures).
        self._jobs: dict[int, tuple[str | None, list[asyncio.Future[Any]]]] = {}
        self._grown = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def wait(self, job_id: int, state: str | None) -> Any:
        """``{"changed": True, "job": ...}`` once the job's state differs from ``state``;
        raises :class:`TetherApiError` if tether cannot show the job."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if job_id in self._jobs:
            self._jobs[job_id][1].append(future)
        else:
            self._jobs[job_id] = (state, [future])
            self._grown.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        try:
            return await future
        finally:
            waiting = self._jobs.get(job_id)
            if waiting is not None and future in waiting[1]:
                waiting[1].remove(future)
                if not waiting[1]:
                    del self._jobs[job_id]

    async def _run(self) -> None:
        while self._jobs:
            self._grown.clear()
            listed = [{"id": i, "state": state} for i, (state, _) in self._jobs.items()]
            polls = {
                asyncio.ensure_future(
                    self._client.a_wait_jobs(listed[at : at + MAX_WAIT_JOBS], self._timeout)
                )
                for at in range(0, len(listed), MAX_WAIT_JOBS)
            }
            grown = asyncio.ensure_future(self._grown.wait())
            done, pending = await asyncio.wait({*polls, grown}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            for poll in done & polls:
                error = poll.exception()
                if error is not None:
                    self._fail_all(error)
                    return
                self._answer(poll.result())
            if grown in done and not done & polls:
                await asyncio.sleep(JOIN_DELAY)  # let the other new waiters join

    def _answer(self, answer: Any) -> None:
        for job in answer["changed"]:
            for future in self._jobs.pop(job["id"], (None, []))[1]:
                if not future.done():
                    future.set_result({"changed": True, "job": job})
        for gone in answer["errors"]:
            status = 403 if gone["error"] == "forbidden" else 404
            error = TetherApiError(status, gone["error"], gone["message"])
            for future in self._jobs.pop(gone["id"], (None, []))[1]:
                if not future.done():
                    future.set_exception(error)

    def _fail_all(self, error: BaseException) -> None:
        waiting, self._jobs = self._jobs, {}
        for _, futures in waiting.values():
            for future in futures:
                if not future.done():
                    future.set_exception(error)


#: What makes two waits shareable: the endpoint (all its settings), the long-poll time, and
#: the client's transport (``None``: the network).
WaiterKey = tuple[TetherEndpoint, int, int | None]

#: The shared waiters: per event loop (futures and tasks belong to one), per key.
_WAITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[WaiterKey, JobWaiter]] = (
    weakref.WeakKeyDictionary()
)


def waiter_key(client: TetherClient, timeout: int) -> WaiterKey:
    transport = None if client.async_transport is None else id(client.async_transport)
    return (client.endpoint, timeout, transport)


def shared_waiter(client: TetherClient, timeout: int) -> JobWaiter:
    """The waiter this event loop shares among clients like ``client`` waiting ``timeout``."""
    waiters = _WAITERS.setdefault(asyncio.get_running_loop(), {})
    key = waiter_key(client, timeout)
    if key not in waiters:
        waiters[key] = JobWaiter(client, timeout)
    return waiters[key]


async def wait_for_change(
    client: TetherClient, job_id: int, state: str | None, timeout: int
) -> Any:
    """The job, once its state differs from ``state`` (or it has ended): waited for together
    with every other job this event loop waits for with the same settings, in one long-poll
    renewed every ``timeout`` seconds."""
    return await shared_waiter(client, timeout).wait(job_id, state)
