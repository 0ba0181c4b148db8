"""TetherHook: every HTTP call to tether's API (jobs and task state), sync and async.

The operator, the trigger and the state-store backend only decide; this module owns the wire:
the base URL and token from an Airflow connection (``conn_type`` ``tether``), timeouts,
retries with jittered backoff on connection errors, on 503 (tether answers 503 while its
database is out of reach) and on 429 (too many long polls open at once), and
:class:`TetherApiError`, which carries tether's error code and message.
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

try:  # Airflow is optional at import time for the plain client (tests, scripts).
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover - Airflow is a dependency of this package
    BaseHook = object  # type: ignore[assignment,misc]

from airflow_provider_tether.exceptions import TetherApiError

DEFAULT_CONN_ID = "tether_default"
#: Seconds a single request may take, beyond the long-poll time it asks for.
DEFAULT_TIMEOUT = 30.0
#: Attempts of one call on connection errors and 503 and 429 answers.
DEFAULT_ATTEMPTS = 6


@dataclass(frozen=True)
class TetherEndpoint:
    """Where tether is and how to authenticate to it."""

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


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        code, message = str(body.get("error", "")), str(body.get("message", response.text))
    except ValueError:
        code, message = "", response.text
    raise TetherApiError(response.status_code, code or f"http_{response.status_code}", message)


class TetherClient:
    """tether's HTTP API, sync and async, with retries on connection errors, 503 and 429.

    Connections are kept and reused: one ``httpx.Client`` per client for the sync calls, and
    one ``httpx.AsyncClient`` per event loop and endpoint for the async ones, shared by every
    client of the process (the triggerer's triggers, say), each with its pool and TLS context
    made once rather than per request.
    """

    def __init__(self, endpoint: TetherEndpoint) -> None:
        self.endpoint = endpoint
        self._http: httpx.Client | None = None

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
            self._http = httpx.Client(headers=self.endpoint.headers)
        return self._http

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
        """One call; the answer's JSON, or ``None`` for 404 on a GET of a key."""
        url = f"{self.endpoint.base_url}{path}"
        timeout = self.endpoint.timeout + extra_timeout
        for attempt in tenacity.Retrying(**self._retry_policy()):
            with attempt:
                response = self._sync_http().request(
                    method, url, json=json, params=params, timeout=timeout
                )
                _raise_for(response)
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
                response = await _shared_async_http().request(
                    method,
                    url,
                    json=json,
                    params=params,
                    timeout=timeout,
                    headers=self.endpoint.headers,
                )
                _raise_for(response)
                return response.json() if response.content else None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    # Jobs ----------------------------------------------------------------------------------

    def ensure_job(self, identity: dict[str, Any], provider: str, spec: Any, name: str) -> Any:
        """Submit the job, or reattach to the one tether has (the decision table)."""
        body = {**identity, "provider": provider, "spec": spec, "name": name}
        return self.request("POST", "/v1/jobs", json=body)

    def get_job(self, job_id: int) -> Any:
        return self.request("GET", f"/v1/jobs/{job_id}")

    def wait_job(self, job_id: int, state: str | None, timeout: int) -> Any:
        """Long-poll: answers when the job's state differs from ``state``, or after ``timeout``."""
        return self.request(
            "GET", f"/v1/jobs/{job_id}/wait", params=_wait(state, timeout), extra_timeout=timeout
        )

    async def a_wait_job(self, job_id: int, state: str | None, timeout: int) -> Any:
        return await self.a_request(
            "GET", f"/v1/jobs/{job_id}/wait", params=_wait(state, timeout), extra_timeout=timeout
        )

    async def a_wait_for_change(self, job_id: int, state: str | None, timeout: int) -> Any:
        """The job, once its state differs from ``state`` (or it has ended): waited for
        together with every other job this event loop waits for at the same endpoint, in one
        long-poll (``POST /v1/jobs/wait``) renewed every ``timeout`` seconds, so that a
        triggerer holding hundreds of tether triggers holds one request, not hundreds."""
        return await _shared_waiter(self, timeout).wait(job_id, state)

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


#: The most jobs one ``POST /v1/jobs/wait`` may name (tether's limit).
MAX_WAIT_JOBS = 1000


class _JobWaiter:
    """Every wait of one event loop for the jobs of one tether endpoint, as one long-poll.

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
                asyncio.ensure_future(self._poll(listed[at : at + MAX_WAIT_JOBS]))
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
                await asyncio.sleep(0.1)  # let the other new waiters join

    async def _poll(self, listed: list[dict[str, Any]]) -> Any:
        body = {"jobs": listed, "timeout": self._timeout}
        return await self._client.a_request(
            "POST", "/v1/jobs/wait", json=body, extra_timeout=self._timeout
        )

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


#: The shared waiters: per event loop (futures and tasks belong to one), per endpoint.
_WAITERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str | None], _JobWaiter]
] = weakref.WeakKeyDictionary()


def _shared_waiter(client: TetherClient, timeout: int) -> _JobWaiter:
    waiters = _WAITERS.setdefault(asyncio.get_running_loop(), {})
    key = (client.endpoint.base_url, client.endpoint.token)
    if key not in waiters:
        waiters[key] = _JobWaiter(client, timeout)
    return waiters[key]


def _put_body(value: Any, retention: str | None, if_version: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"value": value}
    if retention is not None:
        body["retention"] = retention
    if if_version is not None:
        body["if_version"] = if_version
    return body


class TetherHook(BaseHook):
    """Airflow's way to reach tether: an Airflow connection of type ``tether``.

    The connection's host, port and schema (``http`` or ``https``) make the base URL; its
    password is the API token (an admin token, or a task token that tether signed). Extra
    fields: ``timeout`` (seconds per request) and ``attempts``.
    """

    conn_name_attr = "tether_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "tether"
    hook_name = "tether"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "API token", "schema": "Scheme (http or https)"},
            "placeholders": {"host": "127.0.0.1", "port": "8470", "schema": "http"},
        }

    def __init__(self, tether_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.tether_conn_id = tether_conn_id

    def endpoint(self) -> TetherEndpoint:
        conn = self.get_connection(self.tether_conn_id)
        scheme = conn.schema or "http"
        host = conn.host or "127.0.0.1"
        if "://" in host:
            scheme, host = host.split("://", 1)
        port = f":{conn.port}" if conn.port else ""
        extra = conn.extra_dejson
        return TetherEndpoint(
            base_url=f"{scheme}://{host.rstrip('/')}{port}",
            token=conn.password or None,
            timeout=float(extra.get("timeout", DEFAULT_TIMEOUT)),
            attempts=int(extra.get("attempts", DEFAULT_ATTEMPTS)),
        )

    def client(self) -> TetherClient:
        return TetherClient(self.endpoint())

    def test_connection(self) -> tuple[bool, str]:
        """What Airflow's "Test" button shows: tether is reachable, ready, and takes the token."""
        endpoint = self.endpoint()
        try:
            with httpx.Client(timeout=endpoint.timeout, headers=endpoint.headers) as http:
                ready = http.get(f"{endpoint.base_url}/readyz")
                if ready.status_code != 200:
                    return False, f"tether at {endpoint.base_url} is not ready: {ready.text}"
                listed = http.get(f"{endpoint.base_url}/v1/jobs", params={"limit": 1})
                _raise_for(listed)
        except httpx.HTTPError as e:
            return False, f"cannot reach tether at {endpoint.base_url}: {e}"
        except TetherApiError as e:
            return False, f"tether refused the token: {e}"
        return True, f"tether at {endpoint.base_url} is ready and accepts the token"


def endpoint_from_env() -> TetherEndpoint | None:
    """``TETHER_URL`` and ``TETHER_TOKEN``, if set: how the state-store backend finds tether
    where no Airflow connection can be read."""
    url = os.environ.get("TETHER_URL")
    if not url:
        return None
    return TetherEndpoint(base_url=url.rstrip("/"), token=os.environ.get("TETHER_TOKEN"))
