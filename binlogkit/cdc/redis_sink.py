"""A Redis Streams sink, exactly once (a :class:`~binlogkit.cdc.model.TransactionalSink`).

The messages of :mod:`binlogkit.cdc.broker_layout`, one stream per table,
``<prefix>:<server>:<schema>.<table>`` (partitioned: ``...:<n>``; DDL naming
no table: ``<prefix>:<server>:<schema>``). Each message is one entry: the
layout's fields plus ``payload`` (its JSON).

:meth:`RedisStreamsSink.write_with_checkpoint` writes the entries of one
transaction and its checkpoint in one Lua script, which Redis, like a
MULTI/EXEC, applies whole or not at all; with AOF, a restart (even after
SIGKILL) finds the entries and their checkpoint together. The script first
checks that the stored position (``<prefix>:<server>:position``) is the one
this sink wrote last: a Redis that lost acknowledged writes (a crash with
``appendfsync`` other than ``always``, a failover to a replica that lagged)
is refused with :class:`RedisSinkError` instead of getting entries after a
hole; a new run then resumes from what Redis kept. The checkpoint is
``<prefix>:<server>:checkpoint`` (JSON, without the schema history) and
``<prefix>:<server>:history`` (the schema history, written again only when
DDL changed it).

A lost connection is retried with exponential backoff (``backoff`` ..
``max_backoff``), at most ``retries`` times and for ``retry_for`` seconds
(None: no limit). Since a script whose reply was lost may have run, the
stored position is read first, and the transaction is not sent again when
it already holds the transaction's end.

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
from binlogkit.cdc.broker_urls import mask_servers
from binlogkit.cdc.model import Checkpoint, Position, SinkError, Txn
from binlogkit.cdc.sinks import BufferedSink

T = TypeVar("T")
_RETRYABLE = (redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)


# KEYS: position, checkpoint, history, then one stream per entry. ARGV: the
# position expected, the new position, checkpoint JSON, history JSON ("" to
# keep), MAXLEN ("" for none), then per entry: 2 x field count, fields, values.
_COMMIT = """
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return redis.error_reply('BKLOST ' .. cur) end
local i = 6
for k = 4, #KEYS do
  local n = tonumber(ARGV[i])
  local fields = {}
  for j = 1, n do fields[j] = ARGV[i + j] end
  if ARGV[5] == '' then
    redis.call('XADD', KEYS[k], '*', unpack(fields))
  else
    redis.call('XADD', KEYS[k], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
  end
  i = i + n + 1
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4]) end
return 1
"""


def _token(position: Position | None) -> str:
    """A position as the short text stored under ``<prefix>:<server>:position``."""
    return "" if position is None else f"{position.file}:{position.pos}:{position.gtids}"


class RedisSinkError(SinkError):
    """The sink gave up (Redis unreachable after every retry)."""


class RedisStreamsSink(BufferedSink):
    """Transactions to Redis Streams, exactly once with their checkpoint."""

    def __init__(self, url: str, *, prefix: str = "binlogkit", server: str = "src",
                 fmt: Format = "jsonl", partitions: int = 1, maxlen: int | None = None,
                 key_columns: Mapping[str, Sequence[str]] | None = None,
                 retries: int | None = 10, retry_for: float | None = None,
                 backoff: float = 0.2, max_backoff: float = 10.0,
                 socket_timeout: float = 10.0, max_buffer: int = 100,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(max_buffer)
        self.layout = Layout(server=server, fmt=fmt, partitions=partitions,
                             key_columns=key_columns)
        self.url = url
        self.prefix = prefix
        self.server = server
        self.maxlen = maxlen
        self.retries = retries
        self.retry_for = retry_for
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        # no retries inside redis-py: a resent MULTI/EXEC could apply twice;
        # this sink retries itself, checking the checkpoint first
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
        self._written: Position | None = None  # the position this sink wrote (or loaded) last
        self._history_sent: Any = None  # the schema history object written last
        self._commit = self.client.register_script(_COMMIT)
        self.attempts = 0  # failed attempts so far (for status / tests)

    # ------------------------------------------------------------- naming

    @property
    def display_url(self) -> str:
        return mask_servers(self.url)

    @property
    def checkpoint_key(self) -> str:
        return f"{self.prefix}:{self.server}:checkpoint"

    @property
    def history_key(self) -> str:
        return f"{self.prefix}:{self.server}:history"

    @property
    def position_key(self) -> str:
        return f"{self.prefix}:{self.server}:position"

    def stream_name(self, schema: str, table: str | None, partition: int | None = None) -> str:
        return redis_stream(self.prefix, self.server, (schema, table, partition))

    # ------------------------------------------------------------ entries

    def entries(self, txn: Txn) -> list[tuple[str, dict[str, str]]]:
        """(stream, fields) of each entry of ``txn``."""
        return [(self.stream_name(*m.route), {**m.fields, "payload": m.payload.decode()})
                for m in self.layout.messages(txn)]

    def _pipeline(self, txn: Txn) -> Any:
        """The plain path: the entries of ``txn`` in one MULTI/EXEC."""
        pipe = self.client.pipeline(transaction=True)
        for stream, fields in self.entries(txn):
            if self.maxlen is None:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            else:
                pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        return pipe

    def _execute(self, pipe: Any) -> None:
        """Send one MULTI/EXEC (a seam for tests)."""
        pipe.execute()

    def _script_call(self, txn: Txn, checkpoint: Checkpoint) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of :data:`_COMMIT` for ``txn`` and ``checkpoint``."""
        entries = self.entries(txn)
        cp = checkpoint.to_json()
        history = cp.pop("schema_history")
        send_history = checkpoint.schema_history is not self._history_sent
        keys = [self.position_key, self.checkpoint_key, self.history_key]
        args = [_token(self._written), _token(checkpoint.position),
                json.dumps(cp, separators=(",", ":")),
                json.dumps(history, separators=(",", ":")) if send_history else "",
                "" if self.maxlen is None else str(self.maxlen)]
        for stream, fields in entries:
            keys.append(stream)
            args.append(str(2 * len(fields)))
            for k, v in fields.items():
                args += (k, v)
        return keys, args

    def _run_script(self, keys: list[str], args: list[str]) -> None:
        """Run the commit script once (a seam for tests)."""
        self._commit(keys=keys, args=args)

    # ------------------------------------------------------------- retries

    def _retry(self, what: str, fn: Callable[[], T],
               before_retry: Callable[[], bool] | None = None) -> T | None:
        """``fn()`` with exponential backoff on connection errors, at most
        ``retries`` times and ``retry_for`` seconds. ``before_retry()`` returning True
        means: already done, return None."""
        delay = self.backoff
        attempt = 0
        since = time.monotonic()
        while True:
            try:
                if attempt and before_retry is not None and before_retry():
                    return None
                return fn()
            except _RETRYABLE as exc:
                self.attempts += 1
                self.client.connection_pool.disconnect()
                if (self.retries is not None and attempt >= self.retries) or (
                        self.retry_for is not None
                        and time.monotonic() - since >= self.retry_for):
                    raise RedisSinkError(f"redis {self.display_url}: {what} failed after "
                                         f"{attempt + 1} attempts: {exc}") from exc
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                attempt += 1

    # -------------------------------------------------------- the protocols

    def load_checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint (and what the next write expects to find)."""
        def load() -> list[Any]:
            return list(self.client.mget([self.checkpoint_key, self.history_key]))

        got = self._retry("load checkpoint", load)
        assert got is not None
        raw, history = got
        if raw is None:
            self._written = None
            return None
        data = json.loads(raw)
        data["schema_history"] = json.loads(history) if history else {}
        cp = Checkpoint.from_json(data)
        self._written = cp.position
        return cp

    def _stored_is(self, checkpoint: Checkpoint) -> bool:
        """After a failure: whether Redis already holds ``checkpoint`` (the
        reply was lost). Raises when it holds neither that nor the position
        this sink wrote last: Redis lost acknowledged writes."""
        stored = self.client.get(self.position_key)
        stored = stored.decode() if isinstance(stored, bytes) else (stored or "")
        if stored == _token(checkpoint.position):
            return True
        if stored != _token(self._written):
            raise self._lost(stored)
        return False

    def _lost(self, stored: str) -> RedisSinkError:
        at = stored or "nothing"
        wrote = "nothing" if self._written is None else \
            f"{self._written.file}:{self._written.pos}"
        return RedisSinkError(
            f"redis {self.display_url}: its position is {at}, but this sink wrote {wrote} "
            f"last: Redis lost acknowledged transactions (a crash with appendfsync other "
            f"than 'always'?); restart to resume from what Redis kept")

    def write_with_checkpoint(self, txn: Txn, checkpoint: Checkpoint) -> None:
        """The transaction's entries and ``checkpoint`` in one atomic script,
        run only if Redis still holds the position this sink wrote last."""
        self.flush()
        keys, args = self._script_call(txn, checkpoint)

        def send() -> None:
            try:
                self._run_script(keys, args)
            except redis.ResponseError as exc:
                if str(exc).startswith("BKLOST"):
                    raise self._lost(str(exc)[7:]) from None
                raise

        self._retry(f"transaction {txn.id}", send, lambda: self._stored_is(checkpoint))
        self._written = checkpoint.position
        self._history_sent = checkpoint.schema_history
        self._acked(txn)

    def flush(self) -> None:
        while self._buffer:
            txn = self._buffer[0]

            def send(t: Txn = txn) -> None:
                self._execute(self._pipeline(t))

            self._retry(f"transaction {txn.id}", send)
            self._buffer.pop(0)
            self._acked(txn)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RedisStreamsSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
