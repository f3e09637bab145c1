"""A NATS JetStream sink: each row change exactly once into the stream.

The messages of :mod:`binlogkit.cdc.broker_layout` (its module doc has the
field table), one subject per table:
``<prefix>.<server>.<schema>.<table>`` (partitioned: ``....<table>.<n>``;
DDL naming no table: ``<prefix>.<server>.<schema>``), names as
:func:`~binlogkit.cdc.broker_layout.nats_token` encodes them. The headers
are the layout's fields plus ``Nats-Msg-Id`` (= field ``id``); the data is
the message's JSON payload. One stream (``stream``) captures
``<prefix>.<server>.>``; created if missing (file storage, ``replicas``,
``duplicate_window``), see :func:`ensure_stream`.

``write`` buffers (at most ``max_buffer`` transactions, then it flushes
itself); ``flush`` publishes the buffered transactions in order: the
messages of one transaction pipelined, and the next transaction only once
every message of this one has its PubAck, so no retry can store a message
of a later transaction before one of an earlier transaction on the same
subject. A failed publish (timeout, no responders, lost connection,
JetStream API error such as a 503 during a leader election) is sent again
with the same ``Nats-Msg-Id`` after exponential backoff (``backoff`` ..
``max_backoff``). Connecting, also the first time, is retried by nats-py
every ``min(max_backoff, 2)`` seconds, on every server of ``url`` (a
comma-separated list for a cluster) and those the cluster announces.
``flush`` raises :class:`NatsSinkError` only after ``retry_for`` seconds of
continuous failure (None: never).

The guarantee: **exactly once into the stream**, as long as a message is
published again within ``duplicate_window`` of its first attempt: JetStream
then drops the copy (a PubAck with ``duplicate``, counted in
:attr:`NatsJetStreamSink.duplicates`). After a crash the consumer redelivers
only the last unacknowledged batch, so the window must exceed the time the
tail process can stay down before it restarts. Snapshot rows (op ``r``) are
at least once: their IDs are unique per snapshot, so a snapshot taken again
is stored again. Within one transaction, a retry can store two messages of
one subject out of ``seq`` order (an earlier one failed while a later one
was stored, e.g. across a stream leader change); never interleaved with
another transaction: readers order a transaction's messages by ``seq``.

nats-py is asyncio-only: the sink runs a private event loop in a daemon
thread; its API is synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Self, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType, StreamConfig, StreamInfo

from binlogkit.cdc.broker_layout import Format, Layout, Message, nats_subject, nats_token
from binlogkit.cdc.broker_urls import mask_servers
from binlogkit.cdc.model import SinkError, Txn
from binlogkit.cdc.sinks import BufferedSink

__all__ = ["NatsJetStreamSink", "NatsSinkError", "ensure_stream", "mask_servers"]

T = TypeVar("T")
_RETRYABLE = (nats.errors.Error, OSError)  # OSError includes TimeoutError
_FATAL = (nats.errors.MaxPayloadError, nats.errors.BadSubjectError, nats.errors.BadHeaderError)
_WINDOW = 512  # messages of one transaction in flight at once


class NatsSinkError(SinkError):
    """The sink gave up or is misconfigured (one line, no password)."""


def _servers(url: str) -> list[str]:
    servers = [s.strip() for s in url.split(",") if s.strip()]
    if not servers:
        raise ValueError("no NATS server URL given")
    return servers


def _text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _covers(pattern: str, subject: str) -> bool:
    """Whether the stream subject ``pattern`` matches every subject that
    ``subject`` (which may end in ``>``) matches."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, tok in enumerate(pat):
        if tok == ">":
            return i < len(sub)
        if i >= len(sub) or sub[i] == ">" or tok not in ("*", sub[i]):
            return False
    return len(pat) == len(sub)


def stream_subject(prefix: str, server: str) -> str:
    """The subjects the stream captures: ``<prefix>.<server>.>``."""
    return f"{prefix}.{nats_token(server)}.>"


async def _ensure(js: JetStreamContext, stream: str, subject: str, *, replicas: int,
                  duplicate_window: float, create: bool) -> StreamInfo:
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        if not create:
            raise NatsSinkError(f"stream {stream} does not exist (and create is off)") from None
        config = StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE,
                              num_replicas=replicas, duplicate_window=duplicate_window)
        try:
            return await js.add_stream(config)
        except nats.js.errors.BadRequestError as exc:  # e.g. overlapping subjects, replicas
            raise NatsSinkError(f"cannot create stream {stream}: {_text(exc)}") from exc
    if not any(_covers(s, subject) for s in info.config.subjects or ()):
        raise NatsSinkError(f"stream {stream} captures {info.config.subjects}, "
                            f"not {subject}")
    return info


def ensure_stream(url: str, *, stream: str = "BINLOGKIT", prefix: str = "binlogkit",
                  server: str = "src", replicas: int = 1, duplicate_window: float = 600.0,
                  create: bool = True, timeout: float = 10.0) -> StreamInfo:
    """Create the sink's stream if missing (``create``), or check that the
    existing one captures ``<prefix>.<server>.>``; return its info. Two
    connection attempts per server, then :class:`NatsSinkError`."""
    options: dict[str, Any] = {"connect_timeout": timeout, "allow_reconnect": False,
                               "max_reconnect_attempts": 1, "reconnect_time_wait": 0.2}

    async def run() -> StreamInfo:
        nc = await nats.connect(_servers(url), error_cb=_ignore, **options)
        try:
            return await _ensure(nc.jetstream(timeout=timeout), stream,
                                 stream_subject(prefix, server), replicas=replicas,
                                 duplicate_window=duplicate_window, create=create)
        finally:
            await nc.close()

    try:
        return asyncio.run(run())
    except NatsSinkError as exc:
        raise NatsSinkError(f"nats {mask_servers(url)}: {exc}") from None
    except (*_RETRYABLE, ValueError) as exc:
        raise NatsSinkError(f"nats {mask_servers(url)}: stream {stream}: {_text(exc)}") from exc


async def _ignore(exc: Exception) -> None:
    """An error callback that keeps nats-py from logging every failed connect."""


class NatsJetStreamSink(BufferedSink):
    """Transactions to a JetStream stream, exactly once (see the module doc)."""

    def __init__(self, url: str, *, stream: str = "BINLOGKIT", prefix: str = "binlogkit",
                 server: str = "src", fmt: Format = "jsonl", partitions: int = 1,
                 key_columns: Mapping[str, Sequence[str]] | None = None, replicas: int = 1,
                 duplicate_window: float = 600.0, create: bool = True,
                 ack_timeout: float = 5.0, retry_for: float | None = None,
                 backoff: float = 0.2, max_backoff: float = 5.0, max_buffer: int = 100,
                 connect_timeout: float = 2.0) -> None:
        super().__init__(max_buffer)
        self.layout = Layout(server=server, fmt=fmt, partitions=partitions,
                             key_columns=key_columns)
        self.url = url
        self.servers = _servers(url)
        self.stream = stream
        self.prefix = prefix
        self.server = server
        self.replicas = replicas
        self.duplicate_window = duplicate_window
        self.create = create
        self.ack_timeout = ack_timeout
        self.retry_for = retry_for
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.connect_timeout = connect_timeout
        self.duplicates = 0  # PubAcks with duplicate set (an earlier attempt was stored)
        self.attempts = 0  # failed attempts (rounds of publishing or connecting)
        self._failing_since: float | None = None
        self._last_error: BaseException | None = None
        self._stream_ok = False
        self._js: JetStreamContext | None = None
        self._nc = Client()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="binlogkit-nats-sink")
        self._thread.start()
        self._connecting: asyncio.Task[None] = self._call(self._start_connect())

    # ------------------------------------------------------------ naming

    def subject(self, msg: Message) -> str:
        return nats_subject(self.prefix, self.server, msg.route)

    @property
    def display_url(self) -> str:
        return mask_servers(self.url)

    # ------------------------------------------------------- event loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the sink's loop and wait for its result (cancelled
        when the wait is interrupted, e.g. by KeyboardInterrupt)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _start_connect(self) -> asyncio.Task[None]:
        return asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        """Connect, retrying forever (nats-py loops on the first connect too
        with ``max_reconnect_attempts=-1``); reconnects after losses."""
        options: dict[str, Any] = {
            "connect_timeout": self.connect_timeout, "allow_reconnect": True,
            "max_reconnect_attempts": -1, "reconnect_time_wait": min(self.max_backoff, 2.0),
            "ping_interval": 10, "max_outstanding_pings": 2}
        await self._nc.connect(self.servers, name="binlogkit-cdc", error_cb=self._on_error,
                               **options)

    async def _on_error(self, exc: Exception) -> None:
        self._last_error = exc

    async def _client(self) -> JetStreamContext:
        """The JetStream context once connected (TimeoutError while not yet),
        with the stream checked or created once."""
        done, _ = await asyncio.wait({self._connecting}, timeout=self.ack_timeout)
        if not done:
            last = f" ({_text(self._last_error)})" if self._last_error else ""
            raise TimeoutError(f"not connected{last}")
        exc = self._connecting.exception()
        if exc is not None:
            raise NatsSinkError(f"cannot connect: {_text(exc)}")
        js = self._js = self._js or self._nc.jetstream(timeout=self.ack_timeout)
        if not self._stream_ok:
            await _ensure(js, self.stream, stream_subject(self.prefix, self.server),
                          replicas=self.replicas, duplicate_window=self.duplicate_window,
                          create=self.create)
            self._stream_ok = True
        return js

    # --------------------------------------------------------- publishing

    async def _publish(self, js: JetStreamContext, msg: Message) -> PubAck:
        headers = {**msg.fields, "Nats-Msg-Id": msg.id}
        ack = await js.publish(self.subject(msg), msg.payload, timeout=self.ack_timeout,
                               headers=headers)
        if ack.stream != self.stream:
            raise NatsSinkError(f"{self.subject(msg)} was stored in stream {ack.stream}, "
                                f"not {self.stream}")
        if ack.duplicate:
            self.duplicates += 1
        return ack

    async def _round(self, todo: list[Message]) -> list[tuple[Message, BaseException]]:
        """Publish ``todo`` pipelined; return the failed messages with their errors."""
        try:
            js = await self._client()
            results = await asyncio.gather(*(self._publish(js, m) for m in todo),
                                           return_exceptions=True)
        except _RETRYABLE as exc:
            results = [exc] * len(todo)
        failed = [(m, r) for m, r in zip(todo, results, strict=True)
                  if isinstance(r, BaseException)]
        for _, err in failed:
            if isinstance(err, _FATAL) or not isinstance(err, _RETRYABLE):
                raise err
        return failed

    def _failed(self, txn: Txn, started: float, exc: BaseException) -> None:
        """Count a failed round; give up once failures lasted ``retry_for``."""
        self.attempts += 1
        if self._failing_since is None:
            self._failing_since = started
        elapsed = time.monotonic() - self._failing_since
        if self.retry_for is not None and elapsed >= self.retry_for:
            raise NatsSinkError(
                f"nats {self.display_url}: transaction {txn.id} not acknowledged after "
                f"{elapsed:.1f} s of failures ({self.attempts} failed attempts): {_text(exc)}")

    async def _send_window(self, txn: Txn, todo: list[Message]) -> None:
        delay = self.backoff
        while True:
            started = time.monotonic()
            try:
                failed = await self._round(todo)
            except (*_FATAL, NatsSinkError) as exc:
                text = str(exc) if isinstance(exc, NatsSinkError) else _text(exc)
                raise NatsSinkError(f"nats {self.display_url}: transaction {txn.id}: "
                                    f"{text}") from exc
            if len(failed) < len(todo):
                self._failing_since = None
            if not failed:
                return
            self._failed(txn, started, failed[0][1])
            todo = [m for m, _ in failed]
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _send(self, txn: Txn) -> None:
        """Publish every message of ``txn`` and wait for all its PubAcks."""
        msgs = self.layout.messages(txn)
        for i in range(0, len(msgs), _WINDOW):
            await self._send_window(txn, msgs[i:i + _WINDOW])
        self._acked(txn)

    # ------------------------------------------------------ the protocol

    def flush(self) -> None:
        """Publish the buffered transactions in order; return once all are acknowledged."""
        if self._buffer:
            self._call(self._send_buffered())

    async def _send_buffered(self) -> None:
        """One hop to the loop for the whole buffer; each transaction leaves it once acked."""
        while self._buffer:
            await self._send(self._buffer[0])
            self._buffer.pop(0)

    def close(self) -> None:
        """Close the connection and stop the loop (buffered transactions are dropped)."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(
                timeout=self.connect_timeout + 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        if not self._thread.is_alive():
            self._loop.close()

    async def _aclose(self) -> None:
        if not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._nc.close(), self.connect_timeout + 3.0)
        tasks = asyncio.all_tasks() - {asyncio.current_task()}  # nats-py's readers, pingers
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
