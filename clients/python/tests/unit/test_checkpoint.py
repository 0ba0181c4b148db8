"""TetherCheckpoint with tether mocked: a retry resumes where the last write left off, writes
are batched and compare-and-set, the state fits the value limit however many items there are,
and what a retry may see again is exactly the marks since the last write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_tether.client import Scope
from airflow_provider_tether.state.checkpoint import TetherCheckpoint, item_hash, shard_capacity

from .fake import FakeTether

SCOPE = Scope.task_instance("d", "r", "t")


def checkpoint(fake: FakeTether, **options: Any) -> TetherCheckpoint:
    made = TetherCheckpoint(fake.client(), SCOPE, max_value_bytes=fake.max_value_bytes, **options)
    made.load()
    return made


def work(cp: TetherCheckpoint, items: range, seen: list[int], stop_at: int | None = None) -> None:
    for item in items:
        if item == stop_at:
            return  # SIGKILL: nothing more runs, not even a flush
        if cp.done(item):
            continue
        seen.append(item)
        cp.mark(item)


def test_a_retry_resumes_and_sees_again_only_the_unwritten_marks(fake: FakeTether) -> None:
    seen: list[int] = []
    work(checkpoint(fake, flush_every=100, flush_seconds=3600), range(5000), seen, stop_at=2345)
    work(checkpoint(fake, flush_every=100, flush_seconds=3600), range(5000), seen)
    assert set(seen) == set(range(5000))
    twice = len(seen) - 5000
    assert twice == 45, "the marks after the last write (2300) up to the kill (2345)"


def test_marks_are_written_in_batches(fake: FakeTether) -> None:
    cp = checkpoint(fake, flush_every=250, flush_seconds=3600)
    for item in range(1000):
        cp.mark(item)
    assert fake.writes == 4
    cp.mark(1000)
    cp.flush()
    assert fake.writes == 5


def test_marks_are_written_after_flush_seconds_too(fake: FakeTether) -> None:
    cp = checkpoint(fake, flush_every=10_000, flush_seconds=0)
    cp.mark("a")
    cp.mark("b")
    assert fake.writes == 2


def test_the_set_is_split_into_keys_that_fit_the_value_limit(fake: FakeTether) -> None:
    fake.max_value_bytes = 400
    capacity = shard_capacity(400)
    cp = checkpoint(fake, flush_every=7, flush_seconds=3600)
    for item in range(10 * capacity + 3):
        cp.mark(f"s3://bucket/part-{item:05}.parquet")
    cp.flush()
    keys = sorted(k for _, k in fake.state)
    assert len(keys) == 11 and keys[0] == "checkpoint:checkpoint:0"
    for entry in fake.state.values():
        assert len(json.dumps(entry["value"], separators=(",", ":"))) <= 400
    again = checkpoint(fake)
    assert len(again) == 10 * capacity + 3
    assert all(again.done(f"s3://bucket/part-{i:05}.parquet") for i in range(10 * capacity + 3))
    assert not again.done("s3://bucket/part-99999.parquet")


def test_a_million_items_stay_within_keys_of_the_default_limit() -> None:
    assert shard_capacity(65_535) >= 6_000  # so a million items take at most 167 keys


def test_two_tries_writing_at_once_lose_no_mark(fake: FakeTether) -> None:
    """A try that still runs beside its retry (a worker that lost its heartbeat): each write
    is a compare-and-set, and a conflict takes the other's marks in."""
    old, new = checkpoint(fake, flush_every=3), checkpoint(fake, flush_every=3)
    for item in range(30):
        (old if item % 2 else new).mark(item)
    old.flush()
    new.flush()
    assert len(checkpoint(fake)) == 30


def test_the_cursor_only_moves_forward(fake: FakeTether) -> None:
    cp = checkpoint(fake, flush_every=1)
    cp.advance("2026-12-01")
    cp.advance("2026-12-03")
    with pytest.raises(ValueError, match="only moves forward"):
        cp.advance("2026-12-02")
    assert checkpoint(fake).cursor == "2026-12-03"
    behind, ahead = checkpoint(fake, flush_every=1000), checkpoint(fake, flush_every=1000)
    ahead.advance("2026-12-09")
    ahead.flush()
    behind.advance("2026-12-05")
    behind.flush()  # conflicts, and keeps the later cursor
    assert checkpoint(fake).cursor == "2026-12-09"


def test_a_clean_end_deletes_the_checkpoint_and_an_error_writes_it(fake: FakeTether) -> None:
    with pytest.raises(RuntimeError), checkpoint(fake, flush_every=1000) as cp:
        cp.mark("a")
        cp.advance(1)
        raise RuntimeError("the task failed")
    assert checkpoint(fake).done("a")
    with checkpoint(fake) as cp:
        cp.mark("b")
    assert fake.state == {}, "a succeeded task leaves nothing"
    with checkpoint(fake, keep=True) as cp:
        cp.mark("c")
    assert checkpoint(fake).done("c")


async def test_the_async_calls_do_the_same(fake: FakeTether) -> None:
    cp = TetherCheckpoint(fake.client(), SCOPE, flush_every=2)
    await cp.a_load()
    for item in ("x", "y", "z"):
        await cp.a_mark(item)
    await cp.a_advance(3)
    with pytest.raises(KeyError):
        async with cp:
            raise KeyError("stop")
    again = TetherCheckpoint(fake.client(), SCOPE)
    await again.a_load()
    assert (len(again), again.cursor) == (3, 3)
    async with again:
        pass
    assert fake.state == {}


@pytest.mark.parametrize("item", [1.5, None, True, ("a",)])
def test_an_item_is_text_bytes_or_an_integer(item: Any) -> None:
    with pytest.raises(TypeError, match="str, bytes or int"):
        item_hash(item)


def test_items_are_told_apart_by_type_only_as_text() -> None:
    assert item_hash(7) == item_hash("7") == item_hash(b"7")
    assert item_hash("a") != item_hash("b")


def test_a_foreign_value_under_the_key_is_refused(fake: FakeTether) -> None:
    fake.client().put_state(SCOPE, "checkpoint:checkpoint:0", {"something": "else"})
    with pytest.raises(ValueError, match="not a checkpoint"):
        checkpoint(fake)
