"""TetherJobTrigger with tether mocked: it fires on the job's end, serializes to plain JSON,
and cancels only when Airflow says a person stopped the task, even when Airflow cancels its
``on_kill`` again halfway."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_tether.hooks.tether import TetherHook
from airflow_provider_tether.triggers import job as trigger_module
from airflow_provider_tether.triggers.job import TetherJobTrigger

from .fake import FakeTether


@pytest.fixture
def tether(fake: FakeTether, monkeypatch: pytest.MonkeyPatch) -> FakeTether:
    client = fake.client()
    monkeypatch.setattr(TetherHook, "get_conn", lambda self: client)
    return fake


def person(stopped: bool, delay: float = 0.0) -> Any:
    async def check(*_: Any) -> bool:
        await asyncio.sleep(delay)
        return stopped

    return check


def trigger_for(job: dict[str, Any], try_number: int = 1) -> TetherJobTrigger:
    trigger = TetherJobTrigger(job_id=job["id"], state=job["state"], wait_seconds=1)
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=try_number)
    trigger.task_instance = ti  # type: ignore[assignment]
    return trigger


def test_the_trigger_serializes_to_plain_json() -> None:
    path, kwargs = TetherJobTrigger(job_id=7, state="running", wait_seconds=30).serialize()
    assert path == "airflow_provider_tether.triggers.job.TetherJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert TetherJobTrigger(**kwargs).serialize() == (path, kwargs)


async def test_it_fires_once_the_job_has_ended(tether: FakeTether) -> None:
    job = tether.add_job()
    trigger = trigger_for(job)
    events = trigger.run()
    first = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0.3)
    assert not first.done(), "a running job fires nothing"
    tether.end(job["id"], "failed")
    event = await asyncio.wait_for(first, 5)
    assert event.payload["job"]["state"] == "failed"


@pytest.mark.parametrize(("stopped", "cancels"), [(True, 1), (False, 0)])
async def test_on_kill_cancels_only_a_persons_stop(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch, stopped: bool, cancels: int
) -> None:
    monkeypatch.setattr(trigger_module, "stopped_by_a_person_async", person(stopped))
    job = tether.add_job()
    await trigger_for(job).on_kill()
    assert len(tether.cancels) == cancels
    if cancels:
        assert tether.cancels[0]["try_number"] == 1


async def test_on_kill_without_a_task_instance_cancels_nothing(tether: FakeTether) -> None:
    trigger = TetherJobTrigger(job_id=tether.add_job()["id"])
    await trigger.on_kill()
    assert tether.cancels == []


async def test_a_kill_survives_airflows_repeated_cancellation(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger_module, "stopped_by_a_person_async", person(True, delay=0.2))
    job = tether.add_job()
    kill = asyncio.ensure_future(trigger_for(job).on_kill())
    await asyncio.sleep(0.05)
    kill.cancel()  # the triggerer's next sync cancels the trigger again, mid on_kill
    with pytest.raises(asyncio.CancelledError):
        await kill
    for _ in range(50):
        if tether.cancels:
            break
        await asyncio.sleep(0.02)
    assert len(tether.cancels) == 1


async def test_a_stale_trigger_cannot_cancel_a_later_trys_job(
    tether: FakeTether, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trigger_module, "stopped_by_a_person_async", person(True))
    job = tether.add_job(try_number=2)
    await trigger_for(job, try_number=1).on_kill()  # refused by tether, not raised
    assert job["cancel_requested_at"] is None
