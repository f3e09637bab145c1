"""The asyncio driver against live servers: the same events as the blocking
driver (non-blocking dump, blocking dump with heartbeats, TLS), semi-sync
ACKs counted by the source, and cancellation closes the connection."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from test_stream_semisync import (
    end_of_binlog,
    insert,
    semisync_server,
    status,
    wait_ready,
)

from binlogkit.lab import Server
from binlogkit.protocol.aio import AsyncBinlogStream
from binlogkit.protocol.blocking import BinlogStream, Discard
from binlogkit.protocol.replica import Start, StreamEvent

Key = tuple[str, str, int, bytes, bool]


def key(ev: StreamEvent | Discard) -> Key:
    assert isinstance(ev, StreamEvent), ev
    return (ev.type_name, ev.file, ev.pos, ev.raw, ev.in_file)


def workload(srv: Server) -> None:
    db = f"aio_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}",
                 f"CREATE TABLE {db}.t (id INT PRIMARY KEY, s VARCHAR(20), j MEDIUMBLOB)",
                 *(f"INSERT INTO {db}.t VALUES ({i}, 'row {i}', REPEAT('x', {i * 100}))"
                   for i in range(10)),
                 f"UPDATE {db}.t SET s = CONCAT(s, '!') WHERE id % 2 = 0",
                 "BEGIN", f"DELETE FROM {db}.t WHERE id > 5",
                 f"INSERT INTO {db}.t VALUES (100, 'big', REPEAT('y', 300000))", "COMMIT",
                 f"DROP DATABASE {db}"])


def blocking_events(srv: Server, start: Start, **kw: Any) -> list[Key]:
    with BinlogStream(srv.connect, start, blocking=False, reconnect=False, **kw) as s:
        return [key(ev) for ev in s]


@pytest.fixture(params=["mariadb", "mysql"])
def server(request: pytest.FixtureRequest, server_factory: Callable[..., Server]) -> Server:
    return server_factory(request.param)


def test_non_blocking_dump_equals_blocking_driver(server: Server) -> None:
    start = end_of_binlog(server)
    workload(server)
    expected = blocking_events(server, start)

    async def run() -> list[Key]:
        async with AsyncBinlogStream(server.connect, start, blocking=False,
                                     reconnect=False) as s:
            return [key(ev) async for ev in s]

    got = asyncio.run(run())
    assert sum(k[4] for k in expected) > 20
    assert got == expected


def test_blocking_dump_with_heartbeats(server: Server) -> None:
    start = end_of_binlog(server)

    async def run() -> tuple[list[Key], int, Start]:
        events: list[Key] = []
        heartbeats = 0
        end: Start | None = None
        writer: asyncio.Task[None] | None = None
        async with AsyncBinlogStream(server.connect, start, heartbeat=0.2,
                                     reconnect=False) as s:
            async with asyncio.timeout(60):
                async for ev in s:
                    assert isinstance(ev, StreamEvent)
                    if ev.type_name.startswith("HEARTBEAT"):
                        heartbeats += 1
                        if writer is None:  # idle first: heartbeats come
                            writer = asyncio.create_task(asyncio.to_thread(workload, server))
                    elif ev.in_file:
                        events.append(key(ev))
                    if writer is not None and writer.done() and end is None:
                        await writer
                        end = end_of_binlog(server)
                    if end is not None and (ev.file, ev.next_pos) >= (end.file, end.pos) \
                            and heartbeats >= 3:
                        break
        assert end is not None
        return events, heartbeats, end

    got, heartbeats, end = asyncio.run(run())
    expected = [k for k in blocking_events(server, start) if k[4]]
    assert heartbeats >= 3
    assert got == expected


def test_tls_connection(server_factory: Callable[..., Server]) -> None:
    """TLS: reads go through a worker thread; the events are the same."""
    srv = server_factory("mysql")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def connect() -> Any:
        return srv.connect(ssl=ctx)

    start = end_of_binlog(srv)
    workload(srv)
    expected = blocking_events(srv, start, flavor="mysql")

    async def run() -> tuple[list[Key], bool]:
        async with AsyncBinlogStream(connect, start, blocking=False, reconnect=False) as s:
            out = []
            async for ev in s:
                out.append(key(ev))
                tls = isinstance(s.conn._sock, ssl.SSLSocket)
            return out, tls

    got, tls = asyncio.run(run())
    assert tls
    assert got == expected


N = 10


def test_semisync_acks(server_factory: Callable[..., Server], flavor: str) -> None:
    srv = semisync_server(server_factory, flavor)
    wait_ready(srv, clients=0)
    srv.execute("SET GLOBAL " + ("rpl_semi_sync_master_timeout" if flavor == "mariadb"
                                 else "rpl_semi_sync_source_timeout") + " = 10000")

    async def run() -> tuple[dict[str, Any], dict[str, Any], int]:
        flagged = xids = 0
        async with AsyncBinlogStream(srv.connect, end_of_binlog(srv), semi_sync=True,
                                     heartbeat=0.5, reconnect=False) as s:
            it = aiter(s)
            first = await anext(it)  # connected: the artificial ROTATE
            assert isinstance(first, StreamEvent)
            await asyncio.to_thread(wait_ready, srv)
            before = await asyncio.to_thread(status, srv)
            writer = asyncio.create_task(asyncio.to_thread(insert, srv, N))
            async with asyncio.timeout(60):
                async for ev in it:
                    assert isinstance(ev, StreamEvent)
                    flagged += ev.ack
                    xids += ev.type_name == "XID"
                    if xids == N:
                        break
            await s.ack()  # done with the last one (no next event is asked for)
            await writer
            after = await asyncio.to_thread(status, srv)
        return before, after, flagged

    try:
        before, after, flagged = asyncio.run(run())
    finally:
        srv.execute("SET GLOBAL " + ("rpl_semi_sync_master_timeout" if flavor == "mariadb"
                                     else "rpl_semi_sync_source_timeout") + " = 2000")
    assert after["yes_tx"] - before["yes_tx"] == N, (before, after)
    assert after["no_tx"] == before["no_tx"], (before, after)
    assert after["clients"] == 1
    assert flagged >= 1
    print(f"{flavor} async: yes_tx {before['yes_tx']} -> {after['yes_tx']}, "
          f"no_tx {before['no_tx']} -> {after['no_tx']}, {flagged} flagged")
    wait_ready(srv, clients=0)


@pytest.fixture(params=["mariadb", "mysql"])
def flavor(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_cancel_closes_connection(server: Server) -> None:
    def alive(thread_id: int) -> bool:
        rows = server.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              f"WHERE ID = {thread_id}")
        return bool(rows[0][0])

    async def run() -> tuple[AsyncBinlogStream, int]:
        s = AsyncBinlogStream(server.connect, end_of_binlog(server), heartbeat=0.3,
                              reconnect=False)
        seen = asyncio.Event()
        ids: list[int] = []

        async def consume() -> None:
            async for _ in s:
                if not ids:
                    ids.append(s.conn.thread_id())
                seen.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(seen.wait(), 30)
        assert alive(ids[0])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return s, ids[0]

    s, thread_id = asyncio.run(run())
    assert s.conn is None
    deadline = time.monotonic() + 10
    while alive(thread_id):  # the server ends the dump at its next heartbeat
        assert time.monotonic() < deadline, "the dump thread is still there"
        time.sleep(0.1)


def test_reconnect_after_kill(server: Server) -> None:
    """KILL the dump connection mid-transaction-stream: the stream reconnects
    (the blocking driver's rules) and yields every event once."""
    start = end_of_binlog(server)
    workload(server)

    async def run() -> tuple[list[Key], int]:
        events: list[Key] = []
        s = AsyncBinlogStream(server.connect, start, heartbeat=0.3, reconnect=True,
                              max_backoff=0.2, max_attempts=20)
        end: Start | None = None
        async with s:
            async with asyncio.timeout(60):
                async for ev in s:
                    assert isinstance(ev, StreamEvent)
                    if ev.in_file:
                        events.append(key(ev))
                    if len(events) == 5 and s.reconnects == 0:  # inside the first transactions
                        thread_id = s.conn.thread_id()
                        await asyncio.to_thread(server.execute, f"KILL {thread_id}")
                        await asyncio.to_thread(workload, server)
                        end = await asyncio.to_thread(end_of_binlog, server)
                    if end is not None and (ev.file, ev.next_pos) >= (end.file, end.pos):
                        break
        return events, s.reconnects

    got, reconnects = asyncio.run(run())
    expected = [k for k in blocking_events(server, start) if k[4]]
    assert reconnects >= 1
    assert got == expected
