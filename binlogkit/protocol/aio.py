"""asyncio driver: a live server's binlog as an async iterator of events.

The same :class:`~binlogkit.protocol.replica.ReplicaProtocol` and the same
options, reconnect and resume rules as :class:`~binlogkit.protocol.blocking.BinlogStream`
(it is a subclass: connecting, the setup statements, the register and dump
commands, the recognition of events already yielded before a reconnect and
the choice of what to retry are the blocking driver's own code)::

    async with AsyncBinlogStream(srv.connect, Start("binlog.000001", 4)) as stream:
        async for ev in stream:
            ...

Connecting, logging in and the setup statements are PyMySQL's, blocking: they
run in a worker thread (:func:`asyncio.to_thread`). Then the dump is read on
the event loop: a plain TCP (or Unix) socket is made non-blocking and read
with ``loop.sock_recv``, ACKs go out with ``loop.sock_sendall``.

A TLS connection is the exception: PyMySQL's socket is then an
:class:`ssl.SSLSocket` whose TLS session lives in that object. The event
loop's ``sock_*`` methods refuse SSL sockets, and asyncio cannot take over an
established TLS session (``start_tls`` would start a new handshake), so each
read is ``asyncio.to_thread(sock.recv, n)`` on the blocking socket (with the
heartbeat read timeout), one read at a time. ACKs are sent from the reading
task between reads, never while a read is in flight (an OpenSSL connection
must not read and write from two threads at once): call :meth:`ack` from the
task that iterates.

Cancelling the task that iterates (or leaving ``async with``) closes the
connection; the server ends the dump when it next writes to it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from binlogkit.protocol.blocking import BinlogStream, Discard
from binlogkit.protocol.replica import END, NEED_DATA, StreamEvent

_READ = 1 << 20


class AsyncBinlogStream(BinlogStream):
    """Events of a live server from ``start``, for ``async for``; the
    arguments are :class:`BinlogStream`'s. Iterate it once (a second
    ``async for`` continues where the first stopped, on the same connection).

    With ``semi_sync`` the ACK for a flagged event is sent when the next
    event is asked for, or on ``await stream.ack()`` (``auto_ack=False``:
    only then).
    """

    _tls = False
    _sock: socket.socket | None = None

    # ------------------------------------------------------------- connection

    async def _aopen(self, start: Any) -> None:
        """:meth:`BinlogStream._open` in a worker thread. If the caller is
        cancelled meanwhile, the connection is closed once the thread is done."""
        fut = asyncio.ensure_future(asyncio.to_thread(self._open, start))
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            fut.add_done_callback(lambda _: self.close())
            raise
        sock = self.conn._sock
        self._sock = sock
        self._tls = isinstance(sock, ssl.SSLSocket)
        if not self._tls:
            sock.setblocking(False)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None and self.conn is not None and not self._tls:
            try:
                sock.setblocking(True)  # PyMySQL's COM_QUIT goes out blocking
                sock.settimeout(1.0)
            except OSError:
                pass
        super().close()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> AsyncBinlogStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> NoReturn:  # type: ignore[override]
        raise TypeError("AsyncBinlogStream is iterated with 'async for'")

    # -------------------------------------------------------------------- I/O

    async def _recv(self) -> bytes:
        sock = self._sock
        assert sock is not None
        if self._tls:
            try:
                return await asyncio.to_thread(sock.recv, _READ)
            except TimeoutError as exc:  # the socket's timeout is set by _open
                raise OSError("no event or heartbeat within the read timeout") from exc
        loop = asyncio.get_running_loop()
        if not self.heartbeat:
            return await loop.sock_recv(sock, _READ)
        try:
            async with asyncio.timeout(max(2.5 * self.heartbeat, 5.0)):
                return await loop.sock_recv(sock, _READ)
        except TimeoutError as exc:
            raise OSError("no event or heartbeat within the read timeout") from exc

    async def ack(self, ev: StreamEvent | None = None) -> None:  # type: ignore[override]
        """Send the semi-sync ACK for ``ev`` (default: the last flagged event)."""
        ev = ev or self._pending_ack
        if ev is None or self.proto is None or self._sock is None:
            return
        data = self.proto.ack_packet(ev)
        if self._tls:
            self._sock.sendall(data)  # a few bytes, between reads (see the module doc)
        else:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
        if ev is self._pending_ack:
            self._pending_ack = None

    # ----------------------------------------------------------------- events

    def __aiter__(self) -> AsyncIterator[StreamEvent | Discard]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamEvent | Discard]:
        start = self.start
        attempt = 0
        try:
            while True:
                try:
                    if self.conn is None:
                        await self._aopen(start)
                        attempt = 0
                    async for item in self._aevents():
                        yield item
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 (sorted by the blocking driver's rules)
                    self.close()
                    error = self._retryable(exc)
                attempt += 1
                start, delay = self._next_attempt(attempt, error, start)
                await asyncio.sleep(delay)
        finally:
            self.close()

    async def _aevents(self) -> AsyncIterator[StreamEvent | Discard]:
        proto = self.proto
        assert proto is not None
        replay = list(self._yielded)  # events yielded before a reconnect, to recognise
        point = proto.resume_point
        while True:
            item = proto.next_event()
            if item is NEED_DATA:
                if self._pending_ack is not None and self.auto_ack:
                    await self.ack()
                proto.receive_data(await self._recv())
                continue
            if item is END:
                if replay:  # the server has nothing more: the rest is gone
                    yield self._discard(replay)
                return
            assert isinstance(item, StreamEvent)
            moved, point = proto.resume_point != point, proto.resume_point
            out = self._admit(item, replay, moved)
            if not out:
                continue
            if self._pending_ack is not None and self.auto_ack:
                await self.ack()
            if item.ack:
                self._pending_ack = item
            for x in out:
                yield x

