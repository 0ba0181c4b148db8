"""TetherClient against a real `tether serve`: ensure, reattach, long-poll, cancel, errors
that carry tether's code, and retries on 503 and 429."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from airflow_provider_tether.exceptions import TetherApiError
from airflow_provider_tether.hooks.tether import TetherClient, TetherEndpoint, TetherHook
from airflow_provider_tether.waiter import wait_for_change

from ..conftest import Tether, databricks_spec


def identity(task: str, try_number: int = 1) -> dict[str, object]:
    return {
        "dag_id": "hook",
        "run_id": "r1",
        "task_id": task,
        "map_index": -1,
        "try_number": try_number,
    }


def wait_until_done(client: TetherClient, job: dict[str, object]) -> dict[str, object]:
    for _ in range(30):
        if job["phase"] == "terminal":
            return job
        job = client.wait_job(int(str(job["id"])), str(job["state"]), 5)["job"]
    raise AssertionError(f"the job did not finish: {job}")


def test_ensure_reattaches_and_waits_to_success(tether: Tether) -> None:
    client = tether.client()
    first = client.ensure_job(identity("ensure"), "databricks", databricks_spec("ensure"), "main")
    assert first["action"] == "submitted"
    again = client.ensure_job(
        identity("ensure", 2), "databricks", databricks_spec("ensure"), "main"
    )
    assert again["action"] == "reattached"
    assert again["job"]["id"] == first["job"]["id"]
    job = wait_until_done(client, first["job"])
    assert job["state"] == "succeeded"
    by_key = tether.sim_stats()["by_key"]
    assert isinstance(by_key, dict)
    assert by_key[job["idempotency_key"]] == 1


def test_cancel_reaches_the_provider(tether: Tether) -> None:
    client = tether.client()
    job = client.ensure_job(identity("cancel"), "databricks", databricks_spec("c"), "main")["job"]
    client.cancel_job(job["id"], "test")
    done = wait_until_done(client, client.get_job(job["id"]))
    assert done["state"] == "cancelled"


def test_errors_carry_tethers_code_and_message(tether: Tether) -> None:
    client = tether.client()
    with pytest.raises(TetherApiError) as bad:
        client.ensure_job(identity("bad"), "nowhere", {}, "main")
    assert (bad.value.status, bad.value.code) == (400, "invalid_request")
    assert "nowhere" in bad.value.message
    anonymous = TetherClient(TetherEndpoint(base_url=tether.url, token="not-a-token"))
    with pytest.raises(TetherApiError) as denied:
        anonymous.get_job(1)
    assert denied.value.status == 401


def test_the_hook_reads_the_airflow_connection(tether: Tether) -> None:
    endpoint = TetherHook().endpoint()
    assert endpoint.base_url == tether.url
    assert endpoint.token == tether.token


def wait_requests(tether: Tether) -> int:
    """How many ``POST /v1/jobs/wait`` tether has answered (its Prometheus counter)."""
    text = httpx.get(
        f"{tether.url}/metrics", headers={"Authorization": f"Bearer {tether.token}"}
    ).text
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("tether_http_request_seconds_count") and 'route="/v1/jobs/wait"' in line
    )


def many_jobs(tether: Tether, prefix: str, n: int) -> list[int]:
    client = tether.client()
    return [
        client.ensure_job(identity(f"{prefix}{i}"), "databricks", databricks_spec(prefix), "main")[
            "job"
        ]["id"]
        for i in range(n)
    ]


async def test_waits_for_many_jobs_share_one_long_poll(tether: Tether) -> None:
    ids = many_jobs(tether, "shared", 20)
    client = tether.client()
    # Every job has ended: each wait below is answered by the first reading, so the number
    # of requests depends on how the waits were gathered, not on when the jobs changed.
    for i in ids:
        wait_until_done(client, client.get_job(i))
    before = wait_requests(tether)
    answers = await asyncio.gather(*(wait_for_change(client, i, "pending", 10) for i in ids))
    assert [a["job"]["id"] for a in answers] == ids
    assert all(a["changed"] and a["job"]["state"] != "pending" for a in answers), answers
    used = wait_requests(tether) - before
    assert used == 1, f"{used} long-polls for {len(ids)} jobs"


async def test_a_missing_job_fails_its_own_wait_only(tether: Tether) -> None:
    (real,) = many_jobs(tether, "beside-missing", 1)
    client = tether.client()
    results: tuple[Any, ...] = await asyncio.gather(
        wait_for_change(client, 999_999, "pending", 10),
        wait_for_change(client, real, "pending", 10),
        return_exceptions=True,
    )
    missing, found = results
    assert isinstance(missing, TetherApiError) and missing.status == 404, missing
    assert isinstance(found, dict) and found["job"]["id"] == real


async def test_a_cancelled_wait_leaves_the_others_waiting(tether: Tether) -> None:
    first, second = many_jobs(tether, "cancelled-wait", 2)
    client = tether.client()
    leaving = asyncio.ensure_future(wait_for_change(client, first, "pending", 10))
    staying = asyncio.ensure_future(wait_for_change(client, second, "pending", 10))
    await asyncio.sleep(0)
    leaving.cancel()
    answer = await asyncio.wait_for(staying, 15)
    assert answer["job"]["id"] == second
    assert leaving.cancelled()
