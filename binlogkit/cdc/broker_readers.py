"""Readers of the messages the broker sinks wrote (layout:
:mod:`binlogkit.cdc.broker_layout`), for ``binlogkit apply``.

A reader hands out :class:`RawMessage` s, ``(stream, position, fields,
payload)``, in order within each stream, and acknowledges them with
:meth:`~BrokerReader.ack` once the target committed them. Unacknowledged
messages come again after a restart; what was applied is skipped by the
applier (it keeps its own positions in the target).

- :class:`RedisReader` (``redis://[[user]:password@]host:port/PREFIX[?db=N]``,
  ``rediss://`` for TLS): the streams ``PREFIX:NAME:*`` (found by ``SCAN ...
  TYPE stream``, again every ``rescan`` seconds), one consumer group per
  stream (``XGROUP CREATE ... 0 MKSTREAM``), read with ``XREADGROUP``: this
  consumer's pending entries first (entries delivered to a run that died, or
  lost on the way after a connection loss), then new ones (``>``); ``XACK``
  after commit. Position: the entry ID.
- :class:`NatsReader` (``nats://[user:password@]host:port[,host:port]/STREAM``,
  ``tls://`` for TLS): one durable pull consumer over every subject of the
  JetStream stream, explicit ack, ``max_ack_pending`` bounding what is held.
  Position: the stream sequence; stream key: the subject. JetStream
  redelivers unacknowledged messages only after ``ack_wait``, so a gap in
  delivery (a restart with messages pending, a reconnect, a delivery
  sequence that jumps) recreates the consumer at its ack floor and raises
  :class:`ReaderReset`: the applier drops what it holds and gets it again,
  in order.

Broker outages are retried with exponential backoff (``retry_for`` seconds
at most, None: forever); :attr:`connected` is False meanwhile. Give up:
:class:`BrokerError`. Messages are read in batches and only from streams the
caller has room for, so buffers stay bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from binlogkit.cdc.broker_urls import BrokerURL

T = TypeVar("T")

DEFAULT_GROUP = "binlogkit-apply"


class BrokerError(Exception):
    """A broker URL is malformed or the broker stayed unreachable. The text
    never holds a password."""


class ReaderReset(Exception):  # noqa: N818 (a signal, not a failure)
    """Every unacknowledged message will be delivered again, in order: drop
    what is held (nothing of it was acknowledged)."""


@dataclass(frozen=True)
class RawMessage:
    """One message as read: its stream, position there, fields, payload.
    ``handle`` is what :meth:`BrokerReader.ack` needs (NATS: the message)."""

    stream: str
    position: str
    fields: dict[str, str]
    payload: bytes
    handle: Any = field(default=None, compare=False, repr=False)


def position_key(position: str) -> tuple[int, ...]:
    """A position as a sortable tuple: Redis ``ms-seq`` -> (ms, seq), NATS
    stream sequence -> (seq,)."""
    try:
        return tuple(int(p) for p in position.split("-"))
    except ValueError:
        raise BrokerError(f"bad position {position!r}") from None


class BrokerReader(Protocol):
    """What :class:`~binlogkit.cdc.broker_apply.Applier` reads from."""

    source_id: str  # who this reader is, for the target's position rows (no password)
    display: str  # the URL, password masked
    max_pending: int | None  # at most this many messages unacknowledged (None: no limit)

    @property
    def connected(self) -> bool: ...

    def fetch(self, timeout: float, wanted: Callable[[str], bool] | None = None,
              eager: bool = False) -> list[RawMessage]:
        """New messages (maybe none, after at most about ``timeout`` s);
        ``wanted(stream)`` False: read nothing more of that stream now;
        ``eager``: look for new streams now. May raise :class:`ReaderReset`."""
        ...

    def ack(self, messages: Sequence[RawMessage]) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ URLs


def source_id(url: BrokerURL | str, *, name: str = "src", group: str = DEFAULT_GROUP) -> str:
    """The identity apply stores its positions under: broker host:port, key
    prefix and sink name (Redis) or stream (NATS), and the consumer group or
    durable; never a password."""
    u = BrokerURL.parse(url) if isinstance(url, str) else url
    if u.kind == "redis":
        return f"redis://{u.netloc}/{u.path}/{name}#{group}"
    return f"nats://{u.netloc}/{u.path}#{group}"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


class _Outage:
    """Backoff bookkeeping for one broker: when the next try may happen and
    whether the outage has lasted longer than ``retry_for``."""

    def __init__(self, display: str, retry_for: float | None, backoff: float = 0.1,
                 max_backoff: float = 5.0) -> None:
        self.display = display
        self.retry_for = retry_for
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.since: float | None = None
        self.delay = backoff
        self.next_try = 0.0
        self.failures = 0

    def ok(self) -> None:
        self.since = None
        self.delay = self.backoff

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        if self.since is None:
            self.since = now
        if self.retry_for is not None and now - self.since >= self.retry_for:
            raise BrokerError(f"{self.display}: unreachable for {now - self.since:.1f} s, "
                              f"giving up: {_describe(exc)}") from None
        self.next_try = now + self.delay
        self.delay = min(self.delay * 2, self.max_backoff)

    def wait(self, timeout: float) -> bool:
        """Sleep until the next try is due (at most ``timeout``); True if due."""
        left = self.next_try - time.monotonic()
        if left > 0:
            time.sleep(min(left, timeout))
        return time.monotonic() >= self.next_try


# ------------------------------------------------------------------ Redis


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)


class RedisReader:
    """The Redis Streams of one sink (``PREFIX:NAME:*``) through consumer groups."""

    max_pending: int | None = None

    def __init__(self, url: BrokerURL | str, *, name: str = "src", group: str = DEFAULT_GROUP,
                 consumer: str | None = None, batch: int = 200,
                 retry_for: float | None = None, rescan: float = 2.0,
                 socket_timeout: float = 10.0) -> None:
        import redis  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        self._redis = redis
        self.url = BrokerURL.parse(url) if isinstance(url, str) else url
        if self.url.kind != "redis":
            raise BrokerError(f"{self.url.display}: not a redis:// URL")
        self.prefix = self.url.path
        self.name = name
        self.group = group
        self.consumer = consumer or group
        self.batch = max(1, batch)
        self.rescan = rescan
        self.display = self.url.display
        self.source_id = source_id(self.url, name=name, group=group)
        host, port = self.url.hosts[0]
        try:
            db = int(self.url.query.get("db", "0"))
        except ValueError:
            raise BrokerError(f"{self.display}: db must be a number") from None
        self.client = redis.Redis(
            host=host, port=port, db=db, username=self.url.user, password=self.url.password,
            ssl=self.url.scheme == "rediss", socket_timeout=socket_timeout,
            socket_connect_timeout=min(socket_timeout, 5.0), protocol=2,
            retry=Retry(NoBackoff(), 0))
        self._retryable = (redis.ConnectionError, redis.TimeoutError, ConnectionError,
                           TimeoutError, OSError)
        self.outage = _Outage(self.display, retry_for)
        self.streams: dict[str, str] = {}  # stream -> cursor: last pending ID read, or ">"
        self._scanned = 0.0
        self._unacked: dict[str, list[str]] = {}
        self.skipped_deleted = 0

    @property
    def connected(self) -> bool:
        return self.outage.since is None

    @property
    def pattern(self) -> str:
        return f"{_glob_escape(self.prefix)}:{_glob_escape(self.name)}:*"

    # -- reading --------------------------------------------------------------

    def fetch(self, timeout: float, wanted: Callable[[str], bool] | None = None,
              eager: bool = False) -> list[RawMessage]:
        if not self.outage.wait(timeout):
            return []
        try:
            self._send_acks()
            now = time.monotonic()
            if now - self._scanned >= (0.2 if eager else self.rescan):
                self._scan()
            out = self._read(wanted, pending=True, timeout=0)
            if not out:
                out = self._read(wanted, pending=False, timeout=timeout)
            self.outage.ok()
            return out
        except self._retryable as exc:
            self._connection_lost()
            self.outage.failed(exc)
            return []
        except self._redis.ResponseError as exc:
            raise BrokerError(f"{self.display}: {_describe(exc)}") from None

    def _connection_lost(self) -> None:
        with contextlib.suppress(Exception):
            self.client.connection_pool.disconnect()
        # deliveries may have been lost on the way: read this consumer's
        # pending entries again first (held ones come twice; the applier
        # drops those)
        for s in self.streams:
            self.streams[s] = "0-0"
        self._scanned = 0.0

    def _scan(self) -> None:
        found = [_s(k) for k in self.client.scan_iter(match=self.pattern, count=1000,
                                                      _type="stream")]
        for s in found:
            if s not in self.streams:
                self._create_group(s)
                self.streams[s] = "0-0"
        self._scanned = time.monotonic()

    def _create_group(self, stream: str) -> None:
        try:
            self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
        except self._redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, wanted: Callable[[str], bool] | None, *, pending: bool,
              timeout: float) -> list[RawMessage]:
        ids = {s: c for s, c in self.streams.items()
               if (c != ">") == pending and (wanted is None or wanted(s))}
        if not ids:
            if not pending:
                time.sleep(timeout)
            return []
        block = None if pending else max(1, int(timeout * 1000))
        try:
            reply: Any = self.client.xreadgroup(
                self.group, self.consumer, ids,  # type: ignore[arg-type]
                count=self.batch, block=block)
        except self._redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # a stream deleted (and maybe made again): find them anew
            for s in ids:
                self.streams.pop(s, None)
            self._scanned = 0.0
            return []
        out: list[RawMessage] = []
        got: set[str] = set()
        for name, entries in reply or []:
            stream = _s(name)
            got.add(stream)
            if pending and not entries:
                self.streams[stream] = ">"
            deleted = []
            for entry_id, fields in entries:
                eid = _s(entry_id)
                if pending:
                    self.streams[stream] = eid
                if not fields:  # pending, but trimmed or deleted from the stream
                    deleted.append(eid)
                    continue
                data = {_s(k): v for k, v in fields.items()}
                payload = data.pop("payload", b"")
                out.append(RawMessage(stream, eid, {k: _s(v) for k, v in data.items()},
                                      bytes(payload) if isinstance(payload, bytes | bytearray)
                                      else str(payload).encode()))
            if deleted:
                self.skipped_deleted += len(deleted)
                self.client.xack(stream, self.group, *deleted)
        if pending:
            for s in ids:
                if s not in got:
                    self.streams[s] = ">"
        return out

    # -- acknowledging --------------------------------------------------------

    def ack(self, messages: Sequence[RawMessage]) -> None:
        for m in messages:
            self._unacked.setdefault(m.stream, []).append(m.position)
        try:
            self._send_acks()
        except self._retryable:
            self._connection_lost()  # sent again on the next fetch

    def _send_acks(self) -> None:
        if not self._unacked:
            return
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in self._unacked.items():
            pipe.xack(stream, self.group, *ids)
        pipe.execute()
        self._unacked.clear()

    def close(self) -> None:
        with contextlib.suppress(*self._retryable):
            self._send_acks()
        self.client.close()


# ------------------------------------------------------------------ NATS


class NatsReader:
    """A JetStream stream through one durable pull consumer."""

    def __init__(self, url: BrokerURL | str, *, durable: str = DEFAULT_GROUP,
                 max_ack_pending: int = 10000, ack_wait: float = 300.0, batch: int = 200,
                 retry_for: float | None = None, connect_timeout: float = 5.0) -> None:
        self.url = BrokerURL.parse(url) if isinstance(url, str) else url
        if self.url.kind != "nats":
            raise BrokerError(f"{self.url.display}: not a nats:// URL")
        self.stream = self.url.path
        self.durable = durable
        self.max_pending: int | None = max(1, max_ack_pending)
        self.ack_wait = ack_wait
        self.batch = max(1, min(batch, max_ack_pending))
        self.connect_timeout = connect_timeout
        self.display = self.url.display
        self.source_id = source_id(self.url, group=durable)
        self.outage = _Outage(self.display, retry_for)
        self._nc: Any = None
        self._sub: Any = None
        self._expect: int | None = None  # the next delivery (consumer) sequence
        self._must_reset = False
        self._started = False  # the consumer was set up once
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="binlogkit-nats")
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self.outage.since is None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except BaseException:
            fut.cancel()
            raise

    def _servers(self) -> list[str]:
        cred = ""
        if self.url.user or self.url.password:
            from urllib.parse import quote  # noqa: PLC0415

            cred = quote(self.url.user or "", safe="")
            if self.url.password is not None:
                cred += ":" + quote(self.url.password, safe="")
            cred += "@"
        scheme = "tls" if self.url.scheme == "tls" else "nats"
        return [f"{scheme}://{cred}{h}:{p}" for h, p in self.url.hosts]

    # -- connection and consumer ------------------------------------------------

    async def _connect(self) -> None:
        import nats  # noqa: PLC0415

        if self._nc is not None and not self._nc.is_closed:
            return
        # nats.connect keeps trying forever with unlimited reconnects: probe first
        loop = asyncio.get_running_loop()
        errors = []
        def probe(host: str, port: int) -> None:
            socket.create_connection((host, port), timeout=self.connect_timeout).close()

        for host, port in self.url.hosts:
            try:
                await loop.run_in_executor(None, probe, host, port)
                break
            except OSError as exc:
                errors.append(exc)
        else:
            raise ConnectionError(f"cannot connect: {_describe(errors[-1])}")

        async def on_reconnect() -> None:
            self._must_reset = True  # deliveries may have been lost on the way

        async def on_error(exc: Exception) -> None:
            pass

        self._nc = await asyncio.wait_for(nats.connect(
            servers=self._servers(), allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=0.5, connect_timeout=self.connect_timeout,
            reconnected_cb=on_reconnect, error_cb=on_error, name="binlogkit-apply"),
            self.connect_timeout * 2)

    async def _setup(self, reset: bool) -> None:
        from nats.js import api  # noqa: PLC0415
        from nats.js.errors import NotFoundError  # noqa: PLC0415

        await self._connect()
        js = self._nc.jetstream()
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            raise ConnectionError(f"no JetStream stream {self.stream!r}") from None
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            info = None
        start = None
        if info is not None and (reset or info.num_ack_pending):
            # what was delivered and not acknowledged comes back only after
            # ack_wait, after newer messages: start again at the ack floor
            start = (info.ack_floor.stream_seq or 0) + 1
            await js.delete_consumer(self.stream, self.durable)
            info = None
            self.resets += 1
        if info is None:
            cfg = api.ConsumerConfig(
                durable_name=self.durable, ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait, max_ack_pending=self.max_pending, max_deliver=-1,
                deliver_policy=api.DeliverPolicy.ALL if start is None
                else api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                replay_policy=api.ReplayPolicy.INSTANT)
            await js.add_consumer(self.stream, cfg)
            self._expect = 1
        else:
            self._expect = (info.delivered.consumer_seq or 0) + 1
        self._sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        self._must_reset = False

    async def _fetch(self, timeout: float) -> list[Any]:
        import nats.errors  # noqa: PLC0415

        try:
            return list(await self._sub.fetch(self.batch, timeout=timeout))
        except nats.errors.TimeoutError:
            return []

    # -- the protocol -----------------------------------------------------------------

    def fetch(self, timeout: float, wanted: Callable[[str], bool] | None = None,
              eager: bool = False) -> list[RawMessage]:
        if not self.outage.wait(timeout):
            return []
        try:
            if self._sub is None or self._must_reset:
                # after the first time, what is held may have gaps: start over
                reset = self._started
                self._call(self._setup(reset), self.connect_timeout * 4 + 10)
                self._started = True
                self.outage.ok()
                if reset:
                    raise ReaderReset
            msgs = self._call(self._fetch(max(0.05, timeout)), timeout + 10)
            if not self._nc.is_connected:
                raise ConnectionError("disconnected")
        except ReaderReset:
            raise
        except Exception as exc:  # noqa: BLE001 (nats-py raises many kinds)
            if _fatal(exc):
                raise BrokerError(f"{self.display}: {_describe(exc)}") from None
            self._must_reset = self._started
            self.outage.failed(exc)
            return []
        self.outage.ok()
        out = []
        for m in msgs:
            md = m.metadata
            if self._expect is not None and md.sequence.consumer != self._expect:
                self._must_reset = True  # a delivery was lost (or is late)
                return []
            self._expect = md.sequence.consumer + 1
            headers = dict(m.headers or {})
            out.append(RawMessage(m.subject, str(md.sequence.stream),
                                  {k: str(v) for k, v in headers.items()},
                                  bytes(m.data or b""), m))
        return out

    def ack(self, messages: Sequence[RawMessage]) -> None:
        async def send() -> None:
            for m in messages:
                if m.handle is not None:
                    with contextlib.suppress(Exception):
                        await m.handle.ack()

        try:
            self._call(send(), 10.0)
        except Exception:  # noqa: BLE001 (redelivered later, skipped by position)
            pass

    def close(self) -> None:
        async def shut() -> None:
            if self._nc is not None and not self._nc.is_closed:
                with contextlib.suppress(Exception):
                    await self._nc.flush(2.0)  # the last acks
                with contextlib.suppress(Exception):
                    await self._nc.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self._call(shut(), 10.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()


def _fatal(exc: BaseException) -> bool:
    """A JetStream API error that retrying will not cure (not: unavailable,
    timeout, not found)."""
    from nats.js.errors import APIError  # noqa: PLC0415

    return isinstance(exc, APIError) and getattr(exc, "code", None) not in (
        None, 404, 408, 503)


def open_reader(url: str, *, name: str = "src", group: str = DEFAULT_GROUP,
                retry_for: float | None = None, max_pending: int = 10000) -> BrokerReader:
    """The reader for ``url`` (redis://, rediss://, nats://, tls://)."""
    parsed = BrokerURL.parse(url)
    if parsed.kind == "redis":
        return RedisReader(parsed, name=name, group=group, retry_for=retry_for)
    return NatsReader(parsed, durable=group, max_ack_pending=max_pending, retry_for=retry_for)
