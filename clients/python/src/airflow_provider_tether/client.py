"""TetherClient: every HTTP call to tether's API (jobs and task state), sync and async.

This module imports nothing of Airflow, so that scripts and other schedulers can use tether's
API with ``httpx`` and ``tenacity`` alone (``from airflow_provider_tether.client import
TetherClient``). Inside Airflow, :class:`~airflow_provider_tether.hooks.tether.TetherHook`
builds the client from an Airflow connection.

It owns the wire: the base URL and token, timeouts, retries with jittered backoff on connection
errors, on 503 (tether answers 503 while its database is out of reach) and on 429 (too many
long polls open at once), and :class:`TetherApiError`, which carries tether's error code and
message.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import tenacity

DEFAULT_CONN_ID = "tether_default"
#: Seconds a single request may take, beyond the long-poll time it asks for.
DEFAULT_TIMEOUT = 30.0
#: Attempts of one call on connection errors and 503 and 429 answers.
DEFAULT_ATTEMPTS = 6
#: The size limit of one task-state value when tether does not say its own (Airflow's).
DEFAULT_MAX_VALUE_BYTES = 65_535


class TetherApiError(Exception):
    """tether answered with an error: its HTTP status, its stable error code
    (``invalid_request``, ``forbidden``, ``not_found``, ``version_conflict``,
    ``unavailable``, ...) and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"tether: {code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TetherEndpoint:
    """Where tether is and how to reach it: every setting that changes how a request is made
    (a shared waiter is keyed by the whole endpoint, so that two tasks with other timeouts or
    attempts never share one)."""

    base_url: str
    token: str | None
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(frozen=True)
class Scope:
    """A task-state scope of tether's API: its path under ``/v1/state``."""

    path: str

    @staticmethod
    def task_instance(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Scope:
        """One task instance: survives its retries, gone with its run."""
        return Scope(f"task-instances/{_seg(dag_id)}/{_seg(run_id)}/{_seg(task_id)}/{map_index}")

    @staticmethod
    def task(dag_id: str, task_id: str) -> Scope:
        """The task across runs: where watermarks live."""
        return Scope(f"tasks/{_seg(dag_id)}/{_seg(task_id)}")

    @staticmethod
    def asset(name: str) -> Scope:
        return Scope(f"assets/{_seg(name)}")


def _seg(text: str) -> str:
    return quote(text, safe="")


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, TetherApiError) and error.status in (429, 503)


def raise_for(response: httpx.Response) -> None:
    """Raises :class:`TetherApiError` for an error answer, with tether's code and message."""
    if response.is_success:
        return
    try:
        body = response.json()
        code, message = str(body.get("error", "")), str(body.get("message", response.text))
    except (ValueError, AttributeError):
        code, message = "", response.text
    raise TetherApiError(response.status_code, code or f"http_{response.status_code}", message)


#: The async clients of this process: one per event loop (an ``httpx.AsyncClient`` is bound to
#: the loop it first ran on), shared by every TetherClient in it. Weak keys: a loop that is
#: gone takes its client with it.
_ASYNC_HTTP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _shared_async_http() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _ASYNC_HTTP.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=None))
        _ASYNC_HTTP[loop] = client
    return client


class TetherClient:
    """tether's HTTP API, sync and async, with retries on connection errors, 503 and 429.

    Connections are kept and reused: one ``httpx.Client`` per client for the sync calls, and
    one ``httpx.AsyncClient`` per event loop, shared by every client of the process (the
    triggerer's triggers, say), each with its pool and TLS context made once rather than per
    request. ``transport`` and ``async_transport`` replace the network (tests pass
    ``httpx.MockTransport``); a client given an async transport keeps its own async clients.
    """

    def __init__(
        self,
        endpoint: TetherEndpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.async_transport = async_transport
        self._http: httpx.Client | None = None
        self._own_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _retry_policy(self) -> dict[str, Any]:
        """Connection errors, 503 and 429 are retried with jittered exponential backoff."""
        return {
            "retry": tenacity.retry_if_exception(_retryable),
            "stop": tenacity.stop_after_attempt(self.endpoint.attempts),
            "wait": tenacity.wait_random_exponential(multiplier=0.5, max=10),
            "reraise": True,
        }

    def _sync_http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(headers=self.endpoint.headers, transport=self.transport)
        return self._http

    def _async_http(self) -> httpx.AsyncClient:
        if self.async_transport is None:
            return _shared_async_http()
        loop = asyncio.get_running_loop()
        client = self._own_async.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(transport=self.async_transport)
            self._own_async[loop] = client
        return client

    def close(self) -> None:
        """Closes the sync connections (the async ones belong to their event loop)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        extra_timeout: float = 0.0,
    ) -> Any:
        """One call; the answer's JSON (``None`` for an empty answer)."""
        url = f"{self.endpoint.base_url}{path}"
        timeout = self.endpoint.timeout + extra_timeout
        for attempt in tenacity.Retrying(**self._retry_policy()):
            with attempt:
                response = self._sync_http().request(
                    method, url, json=json, params=params, timeout=timeout
                )
                raise_for(response)
                return response.json() if response.content else None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def a_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        extra_timeout: float = 0.0,
    ) -> Any:
        url = f"{self.endpoint.base_url}{path}"
        timeout = self.endpoint.timeout + extra_timeout
        async for attempt in tenacity.AsyncRetrying(**self._retry_policy()):
            with attempt:
                response = await self._async_http().request(
                    method,
                    url,
                    json=json,
                    params=params,
                    timeout=timeout,
                    headers=self.endpoint.headers,
                )
                raise_for(response)
                return response.json() if response.content else None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def info(self) -> Any:
        """What tether says of itself (``GET /v1/info``): version, database, key namespace,
        and the size limit of one task-state value."""
        return self.request("GET", "/v1/info")

    async def a_info(self) -> Any:
        return await self.a_request("GET", "/v1/info")

    # Jobs ----------------------------------------------------------------------------------

    def ensure_job(self, identity: dict[str, Any], provider: str, spec: Any, name: str) -> Any:
        """Submit the job, or reattach to the one tether has (the decision table)."""
        body = {**identity, "provider": provider, "spec": spec, "name": name}
        return self.request("POST", "/v1/jobs", json=body)

    def get_job(self, job_id: int) -> Any:
        return self.request("GET", f"/v1/jobs/{job_id}")

    def find_job(self, identity: dict[str, Any], name: str) -> Any:
        """The newest job tether has for the task instance of ``identity`` under ``name``
        (any generation, any try), or ``None``. Lists the task's jobs in this run, newest
        first, and follows the pages until one matches."""
        params: dict[str, Any] = {
            "dag_id": identity["dag_id"],
            "run_id": identity["run_id"],
            "task_id": identity["task_id"],
            "limit": 500,
        }
        while True:
            page = self.request("GET", "/v1/jobs", params=params)
            for job in page["jobs"]:
                if job["map_index"] == identity["map_index"] and job["name"] == name:
                    return job
            if page.get("next_before_id") is None:
                return None
            params["before_id"] = page["next_before_id"]

    def wait_job(self, job_id: int, state: str | None, timeout: int) -> Any:
        """Long-poll: answers when the job's state differs from ``state``, or after ``timeout``."""
        return self.request(
            "GET", f"/v1/jobs/{job_id}/wait", params=_wait(state, timeout), extra_timeout=timeout
        )

    async def a_wait_job(self, job_id: int, state: str | None, timeout: int) -> Any:
        return await self.a_request(
            "GET", f"/v1/jobs/{job_id}/wait", params=_wait(state, timeout), extra_timeout=timeout
        )

    async def a_wait_jobs(self, jobs: list[dict[str, Any]], timeout: int) -> Any:
        """One long-poll for many jobs (``POST /v1/jobs/wait``, at most 1000): answers with
        the jobs whose state differs from the one given (``changed``) and those that cannot be
        read (``errors``), or after ``timeout``."""
        return await self.a_request(
            "POST", "/v1/jobs/wait", json={"jobs": jobs, "timeout": timeout}, extra_timeout=timeout
        )

    def cancel_job(self, job_id: int, reason: str, try_number: int | None = None) -> Any:
        """Cancels the job. With ``try_number`` (a task's own ``on_kill``), tether refuses
        (409 ``cancel_refused``) once a later try owns the job."""
        return self.request("POST", f"/v1/jobs/{job_id}/cancel", json=_cancel(reason, try_number))

    async def a_cancel_job(self, job_id: int, reason: str, try_number: int | None = None) -> Any:
        return await self.a_request(
            "POST", f"/v1/jobs/{job_id}/cancel", json=_cancel(reason, try_number)
        )

    def consume_job(self, job_id: int, try_number: int) -> Any:
        """Records that try ``try_number`` took the finished job's result: a later try (a
        clear of the task) runs the job anew instead of being told this result."""
        return self.request("POST", f"/v1/jobs/{job_id}/consume", json={"try_number": try_number})

    async def a_consume_job(self, job_id: int, try_number: int) -> Any:
        return await self.a_request(
            "POST", f"/v1/jobs/{job_id}/consume", json={"try_number": try_number}
        )

    # Task state ----------------------------------------------------------------------------

    def get_state(self, scope: Scope, key: str) -> Any:
        """The entry (``{"value", "version", "expires_at", ...}``), or ``None``."""
        try:
            return self.request("GET", f"/v1/state/{scope.path}/keys/{_seg(key)}")
        except TetherApiError as e:
            if e.status == 404:
                return None
            raise

    async def a_get_state(self, scope: Scope, key: str) -> Any:
        try:
            return await self.a_request("GET", f"/v1/state/{scope.path}/keys/{_seg(key)}")
        except TetherApiError as e:
            if e.status == 404:
                return None
            raise

    def put_state(
        self,
        scope: Scope,
        key: str,
        value: Any,
        *,
        retention: str | None = None,
        if_version: int | None = None,
    ) -> Any:
        """Writes the key; with ``if_version`` a compare-and-set (0: the key must not exist),
        which tether refuses with 409 ``version_conflict`` when another writer came first."""
        body = _put_body(value, retention, if_version)
        return self.request("PUT", f"/v1/state/{scope.path}/keys/{_seg(key)}", json=body)

    async def a_put_state(
        self,
        scope: Scope,
        key: str,
        value: Any,
        *,
        retention: str | None = None,
        if_version: int | None = None,
    ) -> Any:
        body = _put_body(value, retention, if_version)
        return await self.a_request("PUT", f"/v1/state/{scope.path}/keys/{_seg(key)}", json=body)

    def delete_state(self, scope: Scope, key: str) -> None:
        try:
            self.request("DELETE", f"/v1/state/{scope.path}/keys/{_seg(key)}")
        except TetherApiError as e:
            if e.status != 404:
                raise

    async def a_delete_state(self, scope: Scope, key: str) -> None:
        try:
            await self.a_request("DELETE", f"/v1/state/{scope.path}/keys/{_seg(key)}")
        except TetherApiError as e:
            if e.status != 404:
                raise

    def clear_state(self, scope: Scope, *, all_map_indices: bool = False) -> Any:
        params = {"all_map_indices": "true"} if all_map_indices else None
        return self.request("DELETE", f"/v1/state/{scope.path}", params=params)

    async def a_clear_state(self, scope: Scope, *, all_map_indices: bool = False) -> Any:
        params = {"all_map_indices": "true"} if all_map_indices else None
        return await self.a_request("DELETE", f"/v1/state/{scope.path}", params=params)


def _wait(state: str | None, timeout: int) -> dict[str, Any]:
    params: dict[str, Any] = {"timeout": timeout}
    if state:
        params["state"] = state
    return params


def _cancel(reason: str, try_number: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason}
    if try_number is not None:
        body["try_number"] = try_number
    return body


def _put_body(value: Any, retention: str | None, if_version: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"value": value}
    if retention is not None:
        body["retention"] = retention
    if if_version is not None:
        body["if_version"] = if_version
    return body


def endpoint_from_env() -> TetherEndpoint | None:
    """``TETHER_URL`` and ``TETHER_TOKEN``, if set: how the state-store backend (and a script)
    finds tether where no Airflow connection can be read."""
    url = os.environ.get("TETHER_URL")
    if not url:
        return None
    return TetherEndpoint(base_url=url.rstrip("/"), token=os.environ.get("TETHER_TOKEN"))
