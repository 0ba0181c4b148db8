"""The shared waiter: many waits, one long poll; failures reach the right waits; waits with
other settings are never merged (issue 33, finding 2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest

from airflow_provider_tether.client import TetherApiError, TetherClient, TetherEndpoint
from airflow_provider_tether.waiter import MAX_WAIT_JOBS, shared_waiter, wait_for_change

from .fake import BASE, FakeTether


async def test_waits_for_many_jobs_share_one_long_poll(fake: FakeTether) -> None:
    ids = [fake.add_job(state="succeeded", phase="terminal")["id"] for _ in range(20)]
    client = fake.client()
    answers = await asyncio.gather(*(wait_for_change(client, i, "running", 10) for i in ids))
    assert [a["job"]["id"] for a in answers] == ids
    assert fake.calls["POST /v1/jobs/wait"] == 1


async def test_more_than_a_thousand_jobs_take_one_poll_per_thousand(fake: FakeTether) -> None:
    ids = [fake.add_job(state="succeeded")["id"] for _ in range(MAX_WAIT_JOBS + 500)]
    client = fake.client()
    await asyncio.gather(*(wait_for_change(client, i, "running", 10) for i in ids))
    sizes = sorted(len(body["jobs"]) for m, p, body, _ in fake.log if p == "/v1/jobs/wait")
    assert sizes == [500, MAX_WAIT_JOBS]


async def test_a_missing_job_fails_its_own_wait_only(fake: FakeTether) -> None:
    real = fake.add_job(state="succeeded")["id"]
    client = fake.client()
    results: tuple[Any, ...] = await asyncio.gather(
        wait_for_change(client, 999, "running", 10),
        wait_for_change(client, real, "running", 10),
        return_exceptions=True,
    )
    missing, found = results
    assert isinstance(missing, TetherApiError) and missing.status == 404
    assert isinstance(found, dict) and found["job"]["id"] == real


async def test_a_failed_poll_fails_every_wait_it_served(fake: FakeTether) -> None:
    ids = [fake.add_job()["id"] for _ in range(3)]
    fake.faults = [503] * 10
    client = fake.client(attempts=2)
    results = await asyncio.gather(
        *(wait_for_change(client, i, "running", 10) for i in ids), return_exceptions=True
    )
    assert all(isinstance(r, TetherApiError) and r.status == 503 for r in results), results


async def test_a_cancelled_wait_leaves_the_others_waiting(fake: FakeTether) -> None:
    first, second = fake.add_job()["id"], fake.add_job()["id"]
    client = fake.client()
    leaving = asyncio.ensure_future(wait_for_change(client, first, "running", 1))
    staying = asyncio.ensure_future(wait_for_change(client, second, "running", 1))
    await asyncio.sleep(0)
    leaving.cancel()
    fake.end(second)
    answer = await asyncio.wait_for(staying, 5)
    assert answer["job"]["id"] == second
    assert leaving.cancelled()


@pytest.mark.parametrize(
    "other", [{"timeout": 5.0}, {"attempts": 2}, {"token": "other"}, {"base_url": "http://b"}]
)
async def test_waits_with_other_settings_get_their_own_waiter(
    fake: FakeTether, other: dict[str, Any]
) -> None:
    transport = httpx.MockTransport(fake.handle)
    base = TetherEndpoint(base_url=BASE, token="t")

    def client(endpoint: TetherEndpoint) -> TetherClient:
        return TetherClient(endpoint, async_transport=transport)

    first, same = client(base), client(base)
    assert shared_waiter(first, 10) is shared_waiter(same, 10), "the same settings share"
    assert shared_waiter(first, 10) is not shared_waiter(client(replace(base, **other)), 10)
    assert shared_waiter(first, 10) is not shared_waiter(first, 20), "another long-poll time"


async def test_a_waiter_uses_its_own_clients_settings(fake: FakeTether) -> None:
    job = fake.add_job(state="succeeded")["id"]
    quick, slow = fake.client(timeout=1.0), fake.client(timeout=9.0)
    await wait_for_change(quick, job, "running", 10)
    await wait_for_change(slow, job, "running", 10)
    timeouts = [t for _, p, _, t in fake.log if p == "/v1/jobs/wait"]
    assert timeouts == [11.0, 19.0]
