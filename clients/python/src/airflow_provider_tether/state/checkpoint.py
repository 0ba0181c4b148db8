"""Checkpoints, the third pattern of task state: a task that works through many items records
which are done, so that its retry picks up where it left off.

    from airflow_provider_tether.state import TetherCheckpoint

    @task(retries=3)
    def convert(**context):
        with TetherCheckpoint.from_context(context) as checkpoint:
            for path in list_files():
                if checkpoint.done(path):
                    continue  # an earlier try converted it
                convert_one(path)
                checkpoint.mark(path)

What is kept, in the task instance's scope of tether's task state (it survives retries and
goes with the run): the set of items marked, as 64-bit hashes (BLAKE2b) packed eight bytes
each into keys ``checkpoint:NAME:0``, ``checkpoint:NAME:1``, ... that each fit tether's
``state.max_value_bytes`` (about 6,100 items a key at the default 65,535 bytes), and for
ordered work a cursor (``advance(position)``, read back as ``cursor``) in
``checkpoint:NAME:cursor``. The set is exact, not probabilistic: an item is taken for done only
if an item with the same 64-bit hash was marked, and two different items share one with a
probability of about n²/2⁶⁵ (1 in 37 million for a million items); no filter that answers
"probably" is used.

Writes are batched: the marks are sent when ``flush_every`` have gathered, or at the first mark
``flush_seconds`` after the last write (there is no timer thread), and always at ``flush()``
and when the ``with`` block ends. Each write is a compare-and-set on the key's version, so a
stale try that still runs beside its retry never overwrites the other's marks: a conflicting
write re-reads the key, takes the other writer's marks in (the set only grows), and writes the
union; a cursor only moves forward.

What a retry may see again: exactly the items marked since the last write that reached tether
(at most ``flush_every`` items, or ``flush_seconds`` of work), plus the item that was being
processed when the task died. Mark an item after its effect is durable, and make that effect
safe to repeat for those. A ``with`` block that ends by an exception writes the marks first;
one that ends normally means the work is done and deletes the checkpoint (``keep=True`` keeps
it), so that a clear of the succeeded task starts over.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from airflow_provider_tether.client import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_VALUE_BYTES,
    Scope,
    TetherApiError,
    TetherClient,
)

log = logging.getLogger(__name__)

#: The value's format marker: a reader refuses what it does not know.
FORMAT = "tether-checkpoint/1"
#: Marks gathered before they are written.
DEFAULT_FLUSH_EVERY = 500
#: Seconds after the last write at which the next mark writes.
DEFAULT_FLUSH_SECONDS = 10.0
#: Bytes kept free in each value beside the packed hashes (the JSON around them).
_ENVELOPE = 64

Item = str | bytes | int


def item_hash(item: Item) -> int:
    """The 64-bit hash an item is kept as (BLAKE2b of its UTF-8 text, its bytes, or the
    decimal text of an integer)."""
    if isinstance(item, bool) or not isinstance(item, str | bytes | int):
        raise TypeError(
            f"a checkpoint item is a str, bytes or int; got {type(item).__name__} {item!r}"
        )
    data = item if isinstance(item, bytes) else str(item).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def shard_capacity(max_value_bytes: int) -> int:
    """How many hashes one value of ``max_value_bytes`` holds (base64: 4 characters per 3
    bytes, 8 bytes a hash)."""
    usable = max_value_bytes - _ENVELOPE
    capacity = (usable // 4) * 3 // 8
    if capacity < 1:
        raise ValueError(f"state.max_value_bytes {max_value_bytes} is too small for a checkpoint")
    return capacity


def encode(hashes: Iterable[int]) -> dict[str, Any]:
    ordered = sorted(hashes)
    packed = struct.pack(f">{len(ordered)}Q", *ordered)
    return {"format": FORMAT, "hashes": base64.b64encode(packed).decode()}


def decode(key: str, value: Any) -> set[int]:
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise ValueError(f"task state {key!r} is not a checkpoint of format {FORMAT}: {value!r}")
    packed = base64.b64decode(value["hashes"])
    if len(packed) % 8:
        raise ValueError(f"task state {key!r} holds {len(packed)} bytes, not whole hashes")
    return set(struct.unpack(f">{len(packed) // 8}Q", packed))


class _Shard:
    """One key of the set as last read or written: its hashes and version (0: not there)."""

    def __init__(self, hashes: set[int], version: int) -> None:
        self.hashes = hashes
        self.version = version


class TetherCheckpoint:
    """Which items of a task's work are done, kept in tether across the task's retries.

    Build it with :meth:`from_context` (or :meth:`a_from_context` in async code), which reads
    what earlier tries recorded. :meth:`done` answers from memory; :meth:`mark` and
    :meth:`advance` record, and write in batches. Use it as a context manager (``with`` or
    ``async with``), or call :meth:`flush` and :meth:`finish` yourself.
    """

    def __init__(
        self,
        client: TetherClient,
        scope: Scope,
        name: str = "checkpoint",
        *,
        flush_every: int = DEFAULT_FLUSH_EVERY,
        flush_seconds: float = DEFAULT_FLUSH_SECONDS,
        keep: bool = False,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    ) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be at least 1, got {flush_every}")
        if flush_seconds < 0:
            raise ValueError(f"flush_seconds must not be negative, got {flush_seconds}")
        if not name or ":" in name:
            raise ValueError(f"a checkpoint name must be non-empty and without ':', got {name!r}")
        self.client = client
        self.scope = scope
        self.name = name
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.keep = keep
        self.capacity = shard_capacity(max_value_bytes)
        #: Every hash known done: read, written, or marked and not written yet.
        self._known: set[int] = set()
        #: Marked and not written yet, in the order marked.
        self._pending: list[int] = []
        #: The set's keys as last read or written, by index.
        self._shards: list[_Shard] = []
        self._cursor: Any = None
        self._cursor_version = 0
        self._cursor_dirty = False
        self._unwritten = 0
        self._last_write = time.monotonic()
        #: How many pending hashes the write in flight carries, and to which key.
        self._in_flight: tuple[int, int] = (0, 0)

    # Building ------------------------------------------------------------------------------

    @classmethod
    def from_context(
        cls,
        context: Any,
        name: str = "checkpoint",
        *,
        tether_conn_id: str = DEFAULT_CONN_ID,
        **options: Any,
    ) -> TetherCheckpoint:
        """The checkpoint ``name`` of the running task instance, with what earlier tries
        recorded. ``options``: ``flush_every``, ``flush_seconds``, ``keep``."""
        from airflow_provider_tether.hooks.tether import TetherHook

        client = TetherHook(tether_conn_id).get_conn()
        limit = _max_value_bytes(client.info())
        checkpoint = cls(client, _scope(context), name, max_value_bytes=limit, **options)
        checkpoint.load()
        return checkpoint

    @classmethod
    async def a_from_context(
        cls,
        context: Any,
        name: str = "checkpoint",
        *,
        tether_conn_id: str = DEFAULT_CONN_ID,
        **options: Any,
    ) -> TetherCheckpoint:
        """:meth:`from_context` for async code (the connection is read off the loop)."""
        from airflow_provider_tether.hooks.tether import TetherHook

        client = await asyncio.to_thread(TetherHook(tether_conn_id).get_conn)
        limit = _max_value_bytes(await client.a_info())
        checkpoint = cls(client, _scope(context), name, max_value_bytes=limit, **options)
        await checkpoint.a_load()
        return checkpoint

    def _key(self, index: int) -> str:
        return f"checkpoint:{self.name}:{index}"

    @property
    def _cursor_key(self) -> str:
        return f"checkpoint:{self.name}:cursor"

    def _loaded(self, index: int, entry: Any) -> bool:
        """Takes in key ``index`` as read; whether there was one."""
        if entry is None:
            return False
        hashes = decode(self._key(index), entry["value"])
        self._shards.append(_Shard(hashes, int(entry["version"])))
        self._known |= hashes
        return True

    def _cursor_loaded(self, entry: Any) -> None:
        if entry is not None:
            self._cursor = entry["value"]["cursor"]
            self._cursor_version = int(entry["version"])

    def load(self) -> None:
        """Reads what earlier tries recorded (``from_context`` does)."""
        while self._loaded(
            len(self._shards), self.client.get_state(self.scope, self._key(len(self._shards)))
        ):
            pass
        self._cursor_loaded(self.client.get_state(self.scope, self._cursor_key))

    async def a_load(self) -> None:
        while self._loaded(
            len(self._shards),
            await self.client.a_get_state(self.scope, self._key(len(self._shards))),
        ):
            pass
        self._cursor_loaded(await self.client.a_get_state(self.scope, self._cursor_key))

    # Reading and recording -----------------------------------------------------------------

    def done(self, item: Item) -> bool:
        """Whether ``item`` was marked, by this try or an earlier one."""
        return item_hash(item) in self._known

    @property
    def cursor(self) -> Any:
        """The last position given to :meth:`advance` (``None``: none yet)."""
        return self._cursor

    def __len__(self) -> int:
        """How many items are marked (by every try so far)."""
        return len(self._known)

    def _record(self, item: Item) -> None:
        h = item_hash(item)
        if h not in self._known:
            self._known.add(h)
            self._pending.append(h)
            self._unwritten += 1

    def _advance(self, position: Any) -> None:
        if position is None:
            raise ValueError("a checkpoint cursor cannot be None")
        if self._cursor is not None and _before(position, self._cursor):
            raise ValueError(
                f"the cursor only moves forward: {position!r} is before {self._cursor!r}"
            )
        self._cursor = position
        self._cursor_dirty = True
        self._unwritten += 1

    def _due(self) -> bool:
        if not self._unwritten:
            return False
        waited = time.monotonic() - self._last_write
        return self._unwritten >= self.flush_every or waited >= self.flush_seconds

    def mark(self, item: Item) -> None:
        """Records ``item`` as done; writes the batch when it is due."""
        self._record(item)
        if self._due():
            self.flush()

    async def a_mark(self, item: Item) -> None:
        self._record(item)
        if self._due():
            await self.a_flush()

    def advance(self, position: Any) -> None:
        """For ordered work: every item up to ``position`` (any JSON value; positions are
        compared with ``<``) is done. Written in the same batches as marks."""
        self._advance(position)
        if self._due():
            self.flush()

    async def a_advance(self, position: Any) -> None:
        self._advance(position)
        if self._due():
            await self.a_flush()

    # Writing -------------------------------------------------------------------------------

    def _next_write(self) -> tuple[str, Any, int] | None:
        """The next compare-and-set write a flush needs: (key, value, expected version)."""
        if self._pending:
            if not self._shards or len(self._shards[-1].hashes) >= self.capacity:
                self._shards.append(_Shard(set(), 0))
            index = len(self._shards) - 1
            shard = self._shards[index]
            taken = self._pending[: self.capacity - len(shard.hashes)]
            self._in_flight = (index, len(taken))
            return self._key(index), encode(shard.hashes | set(taken)), shard.version
        if self._cursor_dirty:
            return self._cursor_key, {"cursor": self._cursor}, self._cursor_version
        return None

    def _written(self, key: str, value: Any, answer: Any) -> None:
        version = int(answer["version"])
        if key == self._cursor_key:
            self._cursor_version = version
            self._cursor_dirty = False
            return
        index, taken = self._in_flight
        shard = self._shards[index]
        shard.hashes |= set(self._pending[:taken])
        shard.version = version
        del self._pending[:taken]

    def _conflicted(self, key: str, entry: Any) -> None:
        """Another writer came first: take its write in, so that the next write is the union
        (or the later cursor)."""
        if key == self._cursor_key:
            self._cursor_version = 0 if entry is None else int(entry["version"])
            theirs = None if entry is None else entry["value"]["cursor"]
            if theirs is not None and not _before(theirs, self._cursor):
                self._cursor = theirs
                self._cursor_dirty = False
            return
        index, _ = self._in_flight
        shard = self._shards[index]
        if entry is None:
            shard.hashes, shard.version = set(), 0
            return
        theirs = decode(key, entry["value"])
        shard.hashes, shard.version = theirs, int(entry["version"])
        self._known |= theirs
        self._pending = [h for h in self._pending if h not in theirs]

    def _flushed(self) -> None:
        self._unwritten = 0
        self._last_write = time.monotonic()

    def flush(self) -> None:
        """Writes every mark and the cursor now."""
        while (write := self._next_write()) is not None:
            key, value, version = write
            try:
                answer = self.client.put_state(self.scope, key, value, if_version=version)
            except TetherApiError as e:
                if e.code != "version_conflict":
                    raise
                self._conflicted(key, self.client.get_state(self.scope, key))
                continue
            self._written(key, value, answer)
        self._flushed()

    async def a_flush(self) -> None:
        while (write := self._next_write()) is not None:
            key, value, version = write
            try:
                answer = await self.client.a_put_state(self.scope, key, value, if_version=version)
            except TetherApiError as e:
                if e.code != "version_conflict":
                    raise
                self._conflicted(key, await self.client.a_get_state(self.scope, key))
                continue
            self._written(key, value, answer)
        self._flushed()

    def _keys(self) -> list[str]:
        """Every key of the checkpoint, the set's last key first (a clear cut short leaves a
        prefix that reads back as it was)."""
        return [self._key(i) for i in reversed(range(len(self._shards)))] + [self._cursor_key]

    def finish(self) -> None:
        """The work is done: deletes the checkpoint, so that a clear of the succeeded task
        starts over (with ``keep=True``, writes what is left instead)."""
        if self.keep:
            self.flush()
            return
        for key in self._keys():
            self.client.delete_state(self.scope, key)
        self._reset()

    async def a_finish(self) -> None:
        if self.keep:
            await self.a_flush()
            return
        for key in self._keys():
            await self.client.a_delete_state(self.scope, key)
        self._reset()

    def _reset(self) -> None:
        self._known, self._pending, self._shards = set(), [], []
        self._cursor, self._cursor_version, self._cursor_dirty = None, 0, False
        self._flushed()

    # Context managers ----------------------------------------------------------------------

    def __enter__(self) -> TetherCheckpoint:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.finish()
            return
        try:
            self.flush()
        except Exception as e:  # the task's own error is the one to report
            log.warning("checkpoint %r: the last marks could not be written (%s)", self.name, e)

    async def __aenter__(self) -> TetherCheckpoint:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            await self.a_finish()
            return
        try:
            await self.a_flush()
        except Exception as e:  # the task's own error is the one to report
            log.warning("checkpoint %r: the last marks could not be written (%s)", self.name, e)


def _before(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError as e:
        raise ValueError(f"checkpoint cursors {a!r} and {b!r} cannot be compared") from e


def _scope(context: Any) -> Scope:
    ti = context["ti"]
    map_index = ti.map_index if ti.map_index is not None else -1
    return Scope.task_instance(ti.dag_id, ti.run_id, ti.task_id, map_index)


def _max_value_bytes(info: Any) -> int:
    """tether's ``state.max_value_bytes`` from ``/v1/info`` (older tethers: Airflow's limit)."""
    return int(info.get("state_max_value_bytes", DEFAULT_MAX_VALUE_BYTES))
