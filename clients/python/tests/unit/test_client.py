"""TetherClient on the wire: retries (which answers, how many), errors, task-state calls."""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_tether.client import Scope, TetherApiError, TetherClient, TetherEndpoint

from .fake import FakeTether


@pytest.mark.parametrize("status", [503, 429])
def test_unavailable_and_too_many_are_retried(fake: FakeTether, status: int) -> None:
    job = fake.add_job()
    fake.faults = [status, status]
    assert fake.client().get_job(job["id"])["id"] == job["id"]
    assert fake.calls["GET /v1/jobs/{id}"] == 3


async def test_the_async_client_retries_too(fake: FakeTether) -> None:
    job = fake.add_job()
    fake.faults = [503, 503]
    assert (await fake.client().a_request("GET", f"/v1/jobs/{job['id']}"))["id"] == job["id"]
    assert fake.calls["GET /v1/jobs/{id}"] == 3


def test_retries_stop_after_the_attempts(fake: FakeTether) -> None:
    fake.faults = [503] * 10
    with pytest.raises(TetherApiError) as failed:
        fake.client(attempts=3).get_job(1)
    assert (failed.value.status, failed.value.code) == (503, "unavailable")
    assert fake.calls["GET /v1/jobs/{id}"] == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 500])
def test_other_errors_are_not_retried(fake: FakeTether, status: int) -> None:
    fake.faults = [status]
    with pytest.raises(TetherApiError) as failed:
        fake.client().get_job(1)
    assert failed.value.status == status
    assert sum(fake.calls.values()) == 1


def test_connection_errors_are_retried_then_raised() -> None:
    seen = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    client = TetherClient(
        TetherEndpoint(base_url="http://x", token="t", attempts=4),
        transport=httpx.MockTransport(refuse),
    )
    with pytest.raises(httpx.ConnectError):
        client.get_job(1)
    assert len(seen) == 4


def test_an_error_carries_tethers_code_and_message(fake: FakeTether) -> None:
    with pytest.raises(TetherApiError) as missing:
        fake.client().get_job(42)
    assert (missing.value.status, missing.value.code, missing.value.message) == (
        404,
        "not_found",
        "no job 42",
    )
    assert "not_found (404): no job 42" in str(missing.value)


def test_an_error_without_a_json_body_is_named_by_its_status() -> None:
    client = TetherClient(
        TetherEndpoint(base_url="http://x", token=None),
        transport=httpx.MockTransport(lambda _: httpx.Response(502, text="bad gateway")),
    )
    with pytest.raises(TetherApiError) as failed:
        client.request("GET", "/v1/info")
    assert (failed.value.code, failed.value.message) == ("http_502", "bad gateway")


def test_a_long_poll_waits_its_time_beyond_the_request_timeout(fake: FakeTether) -> None:
    job = fake.add_job()
    fake.client(timeout=7.0).wait_job(job["id"], "running", 30)
    method, path, _, timeout = fake.log[-1]
    assert (method, path, timeout) == ("GET", f"/v1/jobs/{job['id']}/wait", 37.0)


def test_task_state_reads_none_for_a_missing_key_and_deletes_quietly(fake: FakeTether) -> None:
    client, scope = fake.client(), Scope.task_instance("d", "r", "t")
    assert client.get_state(scope, "k") is None
    client.delete_state(scope, "k")
    client.put_state(scope, "k", {"a": 1}, if_version=0)
    with pytest.raises(TetherApiError) as stale:
        client.put_state(scope, "k", {"a": 2}, if_version=0)
    assert stale.value.code == "version_conflict"
    assert client.get_state(scope, "k")["value"] == {"a": 1}


def test_scopes_quote_every_segment() -> None:
    assert Scope.task_instance("a/b", "r 1", "t", 3).path == "task-instances/a%2Fb/r%201/t/3"
    assert Scope.asset("s3://bucket/x").path == "assets/s3%3A%2F%2Fbucket%2Fx"


def test_find_job_follows_the_pages_to_the_newest_match(fake: FakeTether) -> None:
    wanted = fake.add_job(name="main", map_index=2)
    for _ in range(700):
        fake.add_job(name="other", map_index=2)
    found = fake.client().find_job(
        {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": 2}, "main"
    )
    assert found is not None and found["id"] == wanted["id"]
    assert fake.calls["GET /v1/jobs"] == 2
    assert fake.client().find_job({**wanted, "task_id": "nobody"}, "main") is None
