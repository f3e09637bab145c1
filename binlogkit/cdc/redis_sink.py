"""A Redis Streams sink, exactly once (a :class:`~binlogkit.cdc.model.TransactionalSink`).

The messages of :mod:`binlogkit.cdc.broker_layout`, one stream per table,
``<prefix>:<server>:<schema>.<table>`` (partitioned: ``...:<n>``; DDL naming
no table: ``<prefix>:<server>:<schema>``). Each message is one entry: the
layout's fields plus ``payload`` (its JSON).

:meth:`RedisStreamsSink.write_with_checkpoint` sends the entries of one
transaction and ``SET <prefix>:<server>:checkpoint <json>`` in one
MULTI/EXEC: Redis applies all of it or none, and with AOF on a restart
(even after SIGKILL) finds the entries and their checkpoint together. A lost
connection is retried with exponential backoff (``retries``, ``backoff``,
``max_backoff``); since a MULTI/EXEC whose reply was lost may have been
applied, the stored checkpoint is read first and the transaction is not sent
again when it already holds the transaction's end position.

The plain :class:`~binlogkit.cdc.model.Sink` path (``write`` buffers,
``flush`` sends one MULTI/EXEC per buffered transaction, without checkpoint)
is at least once; the consumer uses it for snapshot batches only. At most
``max_buffer`` transactions are buffered before ``write`` flushes them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from binlogkit.cdc.broker_layout import Format, Layout, redis_stream
from binlogkit.cdc.model import Change, Checkpoint, SinkError, Txn

T = TypeVar("T")
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)


class RedisSinkError(SinkError):
    """The sink gave up (Redis unreachable after every retry)."""


class RedisStreamsSink:
    """Transactions to Redis Streams, exactly once with their checkpoint."""

    def __init__(self, url: str, *, prefix: str = "binlogkit", server: str = "src",
                 fmt: Format = "jsonl", partitions: int = 1, maxlen: int | None = None,
                 key_columns: Mapping[str, Sequence[str]] | None = None,
                 retries: int = 10, backoff: float = 0.2, max_backoff: float = 10.0,
                 socket_timeout: float = 10.0, max_buffer: int = 100,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.layout = Layout(server=server, fmt=fmt, partitions=partitions,
                             key_columns=key_columns)
        self.url = url
        self.prefix = prefix
        self.server = server
        self.fmt = fmt
        self.partitions = partitions
        self.maxlen = maxlen
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_buffer = max(1, max_buffer)
        self.sleep = sleep
        # no retries inside redis-py: a resent MULTI/EXEC could apply twice;
        # this sink retries itself, checking the checkpoint first
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
        self._buffer: list[Txn] = []
        self.attempts = 0  # failed attempts so far (for status / tests)
        # acknowledged so far (for a status line: rate, and lag = now - last commit time)
        self.acked_changes = 0
        self.acked_transactions = 0
        self.last_acked_ts_ms = 0

    # ------------------------------------------------------------- naming

    @property
    def checkpoint_key(self) -> str:
        return f"{self.prefix}:{self.server}:checkpoint"

    def stream_name(self, schema: str, table: str | None, partition: int | None = None) -> str:
        return redis_stream(self.prefix, self.server, (schema, table, partition))

    def stream_for(self, change: Change) -> str:
        src = change.source
        return self.stream_name(src.schema, src.table, self.layout.partition(change))

    # ------------------------------------------------------------ entries

    def entries(self, txn: Txn) -> list[tuple[str, dict[str, str]]]:
        """(stream, fields) of each entry of ``txn``."""
        return [(self.stream_name(*m.route), {**m.fields, "payload": m.payload.decode()})
                for m in self.layout.messages(txn)]

    def _pipeline(self, txn: Txn, checkpoint: Checkpoint | None) -> Any:
        pipe = self.client.pipeline(transaction=True)
        for stream, fields in self.entries(txn):
            if self.maxlen is None:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            else:
                pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        if checkpoint is not None:
            pipe.set(self.checkpoint_key, json.dumps(checkpoint.to_json(),
                                                     separators=(",", ":")))
        return pipe

    def _execute(self, pipe: Any) -> None:
        """Send one MULTI/EXEC (a seam for tests)."""
        pipe.execute()

    # ------------------------------------------------------------- retries

    def _retry(self, what: str, fn: Callable[[], T],
               before_retry: Callable[[], bool] | None = None) -> T | None:
        """``fn()`` with bounded exponential backoff on connection errors.
        ``before_retry()`` returning True means: already done, return None."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                if attempt and before_retry is not None and before_retry():
                    return None
                return fn()
            except _RETRYABLE as exc:
                self.attempts += 1
                self.client.connection_pool.disconnect()
                if attempt == self.retries:
                    raise RedisSinkError(f"redis {self.url}: {what} failed after "
                                         f"{self.retries + 1} attempts: {exc}") from exc
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    # -------------------------------------------------------- the protocols

    def load_checkpoint(self) -> Checkpoint | None:
        raw = self._retry("load checkpoint", lambda: self.client.get(self.checkpoint_key))
        if raw is None:
            return None
        return Checkpoint.from_json(json.loads(raw))

    def _stored_position_is(self, checkpoint: Checkpoint) -> bool:
        raw = self.client.get(self.checkpoint_key)
        if raw is None:
            return False
        return Checkpoint.from_json(json.loads(raw)).position == checkpoint.position

    def write_with_checkpoint(self, txn: Txn, checkpoint: Checkpoint) -> None:
        """The transaction's entries and ``checkpoint`` in one MULTI/EXEC."""
        self.flush()

        def send() -> None:
            self._execute(self._pipeline(txn, checkpoint))

        self._retry(f"transaction {txn.id}", send, lambda: self._stored_position_is(checkpoint))
        self._acked(txn)

    def _acked(self, txn: Txn) -> None:
        self.acked_changes += len(txn.changes)
        self.acked_transactions += 1
        self.last_acked_ts_ms = max(self.last_acked_ts_ms, txn.ts_ms)

    def write(self, txn: Txn) -> None:
        self._buffer.append(txn)
        if len(self._buffer) >= self.max_buffer:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            txn = self._buffer[0]

            def send(t: Txn = txn) -> None:
                self._execute(self._pipeline(t, None))

            self._retry(f"transaction {txn.id}", send)
            self._buffer.pop(0)
            self._acked(txn)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RedisStreamsSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
