"""An in-memory stand-in for tether's HTTP API, behind ``httpx.MockTransport``, for the unit
tests: the routes the package calls, with tether's answers and error bodies (``{"error",
"message"}``), compare-and-set on task state, the value size limit, and injected faults.

It models what the package relies on, not tether's engine: the real server, and the decision
table behind ``POST /v1/jobs``, are tested by ``tests/integration`` and the Rust suites.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from airflow_provider_tether.client import TetherClient, TetherEndpoint

BASE = "http://tether.test"


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code, "message": message})


@dataclass
class FakeTether:
    """Jobs, task state and the calls made, by route."""

    max_value_bytes: int = 65_535
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    #: Every request, as (method, path, JSON body or None, timeout read).
    log: list[tuple[str, str, Any, float | None]] = field(default_factory=list)
    #: Statuses the next requests are answered with, first first (then as usual).
    faults: list[int] = field(default_factory=list)
    cancels: list[dict[str, Any]] = field(default_factory=list)
    writes: int = 0

    def client(self, **endpoint: Any) -> TetherClient:
        transport = httpx.MockTransport(self.handle)
        return TetherClient(
            TetherEndpoint(base_url=BASE, token="t", **endpoint),
            transport=transport,
            async_transport=transport,
        )

    def add_job(self, **fields: Any) -> dict[str, Any]:
        job_id = len(self.jobs) + 1
        job = {
            "id": job_id,
            "dag_id": "d",
            "run_id": "r",
            "task_id": "t",
            "map_index": -1,
            "name": "main",
            "generation": 1,
            "provider": "databricks",
            "try_number": 1,
            "phase": "active",
            "state": "running",
            "raw_state": "RUNNING",
            "message": None,
            "url": f"https://example.test/run/{job_id}",
            "handle": {"run_id": job_id},
            "cancel_requested_at": None,
            **fields,
        }
        self.jobs[job_id] = job
        return job

    def end(self, job_id: int, state: str = "succeeded") -> None:
        self.jobs[job_id].update(phase="terminal", state=state)

    # The transport ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = json.loads(request.content) if request.content else None
        timeout = request.extensions.get("timeout", {}).get("read")
        self.log.append((request.method, path, body, timeout))
        route = re.sub(r"/\d+(?=/|$)", "/{id}", path)
        route = re.sub(r"^/v1/state/.*/keys/.*$", "/v1/state/{scope}/keys/{key}", route)
        self.calls[f"{request.method} {route}"] += 1
        if request.headers.get("authorization") != "Bearer t":
            return error(401, "unauthorized", "no token")
        if self.faults:
            status = self.faults.pop(0)
            return error(status, "unavailable" if status == 503 else f"s{status}", "injected")
        if path == "/v1/info":
            return httpx.Response(200, json={"state_max_value_bytes": self.max_value_bytes})
        if path.startswith("/v1/state/"):
            return self._state(request.method, path, body)
        return self._jobs(request, path, body)

    def _jobs(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        if path == "/v1/jobs" and request.method == "POST":
            return self._ensure(body)
        if path == "/v1/jobs" and request.method == "GET":
            q = request.url.params
            listed = [
                j
                for j in sorted(self.jobs.values(), key=lambda j: -int(j["id"]))
                if all(j[k] == q[k] for k in ("dag_id", "run_id", "task_id") if k in q)
                and ("before_id" not in q or j["id"] < int(q["before_id"]))
            ]
            limit = int(q.get("limit", 50))
            page = listed[:limit]
            more = len(listed) > limit
            return httpx.Response(
                200, json={"jobs": page, "next_before_id": page[-1]["id"] if more else None}
            )
        if path == "/v1/jobs/wait":
            changed, errors = [], []
            for asked in body["jobs"]:
                job = self.jobs.get(asked["id"])
                if job is None:
                    errors.append({"id": asked["id"], "error": "not_found", "message": "no job"})
                elif job["state"] != asked["state"]:
                    changed.append(job)
            return httpx.Response(200, json={"changed": changed, "errors": errors})
        found = re.fullmatch(r"/v1/jobs/(\d+)(/\w+)?", path)
        if found is None:
            return error(404, "not_found", "no such route")
        job = self.jobs.get(int(found[1]))
        if job is None:
            return error(404, "not_found", f"no job {found[1]}")
        action = found[2]
        if action is None:
            return httpx.Response(200, json=job)
        if action == "/wait":
            state = request.url.params.get("state")
            if job["state"] == state:
                time.sleep(0.05)  # a long poll that did not see a change
            return httpx.Response(200, json={"changed": job["state"] != state, "job": job})
        if action == "/cancel":
            self.cancels.append({"id": job["id"], **body})
            if body.get("try_number") is not None and body["try_number"] < job["try_number"]:
                return error(409, "cancel_refused", "a later try owns the job")
            job["cancel_requested_at"] = "2026-12-06T00:00:00Z"
            return httpx.Response(200, json=job)
        if action == "/consume":
            return httpx.Response(200, json=job)
        return error(404, "not_found", "no such route")

    def _ensure(self, body: dict[str, Any]) -> httpx.Response:
        """Reattaches to the task instance's job of that name, else submits one."""
        key = ("dag_id", "run_id", "task_id", "map_index", "name")
        for job in self.jobs.values():
            if all(job[k] == body[k] for k in key):
                job["try_number"] = max(job["try_number"], body["try_number"])
                return httpx.Response(200, json={"action": "reattached", "job": job})
        job = self.add_job(
            **{k: body[k] for k in (*key, "try_number", "provider")}, state="pending"
        )
        return httpx.Response(200, json={"action": "submitted", "job": job})

    def _state(self, method: str, path: str, body: Any) -> httpx.Response:
        found = re.fullmatch(r"/v1/state/(.*)/keys/(.*)", path)
        if found is None:
            return error(404, "not_found", "no such route")
        key = (found[1], found[2])
        entry = self.state.get(key)
        if method == "GET":
            return httpx.Response(200, json=entry) if entry else error(404, "not_found", "no key")
        if method == "DELETE":
            if entry is None:
                return error(404, "not_found", "no key")
            del self.state[key]
            return httpx.Response(204)
        value = body["value"]
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
        if size > self.max_value_bytes:
            return error(
                413, "payload_too_large", f"value is {size} bytes; limit {self.max_value_bytes}"
            )
        version = 0 if entry is None else int(entry["version"])
        if body.get("if_version") is not None and body["if_version"] != version:
            return error(409, "version_conflict", f"version is {version}")
        self.writes += 1
        self.state[key] = {
            "value": value,
            "version": version + 1,
            "updated_at": "2026-12-06T00:00:00Z",
        }
        return httpx.Response(200, json=self.state[key])
