"""Blocking driver: a live server's binlog as an iterator of events.

Connection and authentication are PyMySQL's (every auth plugin and TLS
option it has); the setup statements go through its cursor, then the dump
runs on the raw socket through :class:`~binlogkit.protocol.replica.ReplicaProtocol`.

Reconnects (``reconnect=True``) wait with exponential backoff and resume
from :attr:`ReplicaProtocol.resume`, the end of the last complete
transaction. Events of an unfinished transaction that were already yielded
are recognised when the server sends them again (same file, position and
bytes) and not yielded twice; if the server no longer has them (it crashed
before they were durable), :class:`Discard` is yielded: drop the events of
the unfinished transaction. So a consumer sees every event once, and never
a half transaction as complete.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from binlogkit.protocol.packets import ConnectionClosed, ProtocolError
from binlogkit.protocol.replica import (
    END,
    NEED_DATA,
    Flavor,
    ReplicaProtocol,
    Start,
    StreamError,
    StreamEvent,
)

Connect = Callable[[], "pymysql.connections.Connection[Any]"]
_RETRYABLE_CODES = {2003, 2006, 2013, 1053, 1927}  # can't connect, gone, lost, shutdown, killed


@dataclass(frozen=True)
class Discard:
    """The events yielded since ``file``:``pos`` belonged to a transaction the
    server no longer has (it restarted before they were durable): drop them."""

    file: str
    pos: int
    events: int


class ConnectionLost(Exception):
    """The connection ended and reconnecting is off (or gave up)."""


class ConnectError(ConnectionLost):
    """Connecting or logging in failed (a wrong password, a refused or
    unreachable host); ``code`` is the client or server error number. Raised at
    once when the stream has not started yet, or when retrying cannot help."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def _error_code(exc: BaseException) -> int | None:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return None


def _describe(exc: BaseException) -> str:
    """One line: PyMySQL's message and its error number (never the password:
    neither the client nor the server puts it in a message)."""
    if isinstance(exc, pymysql.err.MySQLError) and len(exc.args) >= 2:
        text = f"{exc.args[1]} (error {exc.args[0]})"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def server_flavor(conn: Any) -> Flavor:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    return "mariadb" if row and "mariadb" in str(row[0]).lower() else "mysql"


def _read_packet(rfile: Any) -> bytes:
    head = rfile.read(4)
    if len(head) < 4:
        raise ConnectionClosed("the server closed the connection")
    n = int.from_bytes(head[:3], "little")
    body = rfile.read(n)
    if len(body) < n:
        raise ConnectionClosed("the server closed the connection")
    return bytes(head) + body


class BinlogStream:
    """Events of a live server from ``start``. ``connect()`` opens a PyMySQL
    connection (the CLI's honours URLs, option files and TLS).

    ``blocking=False`` ends at the end of the server's last binlog. With
    ``semi_sync`` the ACK for a flagged event is sent when the next event is
    asked for (the consumer is done with it) or on :meth:`ack`; with
    ``auto_ack=False`` only on :meth:`ack` (e.g. once the event is stored).
    """

    def __init__(self, connect: Connect, start: Start, *, server_id: int | None = None,
                 flavor: Flavor | None = None, blocking: bool = True,
                 heartbeat: float | None = 30.0, semi_sync: bool = False,
                 verify_checksum: bool = True, auto_ack: bool = True, reconnect: bool = True,
                 max_backoff: float = 30.0, max_attempts: int | None = None,
                 on_reconnect: Callable[[int, BaseException], None] | None = None,
                 types: Collection[int] | None = None) -> None:
        self._connect = connect
        self.types = types
        self.server_id = server_id or random.randint(0x40000000, 0x7FFFFFFF)
        self.flavor = flavor
        self.start = start
        self.blocking = blocking
        self.heartbeat = heartbeat
        self.semi_sync = semi_sync
        self.verify = verify_checksum
        self.auto_ack = auto_ack
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts
        self.on_reconnect = on_reconnect
        self.proto: ReplicaProtocol | None = None
        self.conn: Any = None
        self.reconnects = 0
        self._pending_ack: StreamEvent | None = None
        self._yielded: list[tuple[str, int, bytes]] = []  # since the last resume point
        self._started = False  # a dump ran: later connection errors may be retried

    # ------------------------------------------------------------- connection

    def _open(self, start: Start) -> None:
        try:
            conn = self._connect()
        except pymysql.err.MySQLError as exc:
            raise ConnectError(f"cannot connect: {_describe(exc)}", _error_code(exc)) from exc
        try:
            flavor = self.flavor or server_flavor(conn)
            self.flavor = flavor
            with conn.cursor() as cur:
                cur.execute("SELECT @@GLOBAL.log_bin")
                row = cur.fetchone()
                if not row or str(row[0]) in ("0", "OFF"):
                    raise StreamError(1381, "binary logging is not enabled on the server")
            proto = ReplicaProtocol(flavor, start, server_id=self.server_id, types=self.types,
                                    blocking=self.blocking, heartbeat=self.heartbeat,
                                    semi_sync=self.semi_sync, verify_checksum=self.verify)
            with conn.cursor() as cur:
                for sql in proto.setup_queries():
                    cur.execute(sql)
            sock = conn._sock
            if self.heartbeat:
                sock.settimeout(max(2.5 * self.heartbeat, 5.0))
            else:
                sock.settimeout(None)
            sock.sendall(proto.register_packet())
            proto.expect_ok(_read_packet(conn._rfile))
            sock.sendall(proto.dump_packet())
        except BaseException:
            conn.close()
            raise
        if self.proto is not None:
            proto.inherit_gtids(self.proto)
        self.conn, self.proto = conn, proto
        self._started = True

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001,S110 (closing a broken socket)
                pass
            self.conn = None

    def __enter__(self) -> BinlogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- events

    def ack(self, ev: StreamEvent | None = None) -> None:
        """Send the semi-sync ACK for ``ev`` (default: the last flagged event)."""
        ev = ev or self._pending_ack
        if ev is None or self.proto is None or self.conn is None:
            return
        self.conn._sock.sendall(self.proto.ack_packet(ev))
        if ev is self._pending_ack:
            self._pending_ack = None

    def __iter__(self) -> Iterator[StreamEvent | Discard]:
        """Errors: :class:`ConnectError` (connecting or logging in failed),
        :class:`StreamError` (the server refused the dump, e.g. 1236 for a
        purged position), :class:`ConnectionLost`. Before the first dump runs
        nothing is retried; afterwards only lost connections, refused
        connections (a restarting server) and server shutdowns are."""
        start = self.start
        attempt = 0
        while True:
            try:
                if self.conn is None:
                    self._open(start)
                    attempt = 0
                yield from self._events()
                return
            except (ConnectError, StreamError, OSError, ProtocolError,
                    pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                self.close()
                error = self._retryable(exc)
            attempt += 1
            start, delay = self._next_attempt(attempt, error, start)
            time.sleep(delay)

    def _events(self) -> Iterator[StreamEvent | Discard]:
        proto, conn = self.proto, self.conn
        assert proto is not None and conn is not None
        rfile = conn._rfile
        replay = list(self._yielded)  # events yielded before a reconnect, to recognise
        point = proto.resume_point
        while True:
            item = proto.next_event()
            if item is NEED_DATA:
                if self._pending_ack is not None and self.auto_ack:
                    self.ack()
                try:
                    data = rfile.read1(1 << 20)
                except TimeoutError as exc:
                    raise OSError("no event or heartbeat within the read timeout") from exc
                proto.receive_data(data)
                continue
            if item is END:
                if replay:  # the server has nothing more: the rest is gone
                    yield self._discard(replay)
                return
            assert isinstance(item, StreamEvent)
            now = proto.resume_point
            moved, point = now != point, now
            if not replay and self._pending_ack is None and not item.ack:
                # the common case: nothing to recognise, nothing to acknowledge
                if item.in_file:
                    if moved:
                        self._yielded = []
                    else:
                        self._yielded.append((item.file, item.pos, item.raw))
                yield item
                continue
            out = self._admit(item, replay, moved)
            if not out:
                continue
            if self._pending_ack is not None and self.auto_ack:
                self.ack()
            if item.ack:
                self._pending_ack = item
            yield from out

    def _discard(self, replay: list[tuple[str, int, bytes]]) -> Discard:
        self._yielded = self._yielded[:len(self._yielded) - len(replay)]
        return Discard(replay[0][0], replay[0][1], len(replay))

    # shared with the asyncio driver (binlogkit.protocol.aio)

    def _retryable(self, exc: BaseException) -> BaseException:
        """Raise for a failure reconnecting cannot help (or that may not be
        retried yet); else return it."""
        if isinstance(exc, ConnectError):
            if not (self.reconnect and self._started and exc.code in _RETRYABLE_CODES):
                raise exc
        elif isinstance(exc, StreamError):
            if not (self.reconnect and self._started) or exc.code not in _RETRYABLE_CODES:
                raise exc
        elif isinstance(exc, ProtocolError) and not isinstance(exc, ConnectionClosed):
            raise exc  # not what the protocol allows: a reconnect would meet it again
        elif isinstance(exc, (OSError, ProtocolError, pymysql.err.OperationalError,
                              pymysql.err.InterfaceError)):
            code = _error_code(exc)
            if not (self.reconnect and self._started) or (
                    code is not None and code not in _RETRYABLE_CODES):
                what = "connection lost" if self._started else "cannot start the dump"
                raise ConnectionLost(f"{what}: {_describe(exc)}") from exc
        else:
            raise exc
        return exc

    def _next_attempt(self, attempt: int, error: BaseException,
                      start: Start) -> tuple[Start, float]:
        """Where reconnect attempt ``attempt`` starts and how long to wait before it."""
        if self.max_attempts is not None and attempt > self.max_attempts:
            raise ConnectionLost(f"gave up after {attempt - 1} reconnect attempts: "
                                 f"{_describe(error)}") from error
        if self.proto is not None and self.proto.resume.file:
            # the same server: its file and position are exact (GTIDs would
            # make it send each file's header again)
            start = self.proto.resume.start(use_gtids=False)
        self.reconnects += 1
        delay = min(self.max_backoff, 0.25 * 2 ** min(attempt - 1, 10))
        if self.on_reconnect is not None:
            self.on_reconnect(attempt, error)
        return start, delay

    def _admit(self, item: StreamEvent, replay: list[tuple[str, int, bytes]],
               moved: bool) -> list[StreamEvent | Discard]:
        """What to hand on for ``item``: nothing for an event yielded before a
        reconnect (``replay``, consumed in place), a :class:`Discard` first when
        the server no longer has them; ``moved``: the resume point moved."""
        out: list[StreamEvent | Discard] = []
        if item.in_file and replay:
            key = (item.file, item.pos, item.raw)
            if key == replay[0]:
                replay.pop(0)
                return out
            if (item.file, item.pos) < replay[0][:2]:
                return out  # before the unfinished transaction: yielded already
            out.append(self._discard(replay))
            replay.clear()
        if item.in_file:
            # events since the resume point are sent again after a reconnect
            if moved:
                self._yielded = []
            else:
                self._yielded.append((item.file, item.pos, item.raw))
        out.append(item)
        return out
