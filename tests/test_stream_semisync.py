"""Semi-synchronous replication against live sources: the source's own
counters show that :class:`BinlogStream` (``semi_sync=True``) acknowledges
every transaction, and that a consumer that does not acknowledge holds a
commit until the source's timeout.

MariaDB 10.11 has semi-sync built in; MySQL 9.7 loads ``semisync_source.so``.
The servers are private to these tests (and tests/test_stream_asyncio.py):
``wait_no_replica``/``wait_no_slave`` is OFF so that statements run while no
replica is connected do not wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from binlogkit.lab import Server
from binlogkit.protocol.blocking import BinlogStream
from binlogkit.protocol.replica import Start, StreamEvent

SEMISYNC_OPTIONS: dict[str, dict[str, str | int | None]] = {
    "mariadb": {"rpl_semi_sync_master_enabled": "ON", "rpl_semi_sync_master_timeout": 2000,
                "rpl_semi_sync_master_wait_no_slave": "OFF"},
    "mysql": {"plugin_load_add": "semisync_source.so", "rpl_semi_sync_source_enabled": "ON",
              "rpl_semi_sync_source_timeout": 2000,
              "rpl_semi_sync_source_wait_no_replica": "OFF"},
}
PREFIX = {"mariadb": "rpl_semi_sync_master_", "mysql": "rpl_semi_sync_source_"}
STALL_TIMEOUT_MS = 2000
COUNT_TIMEOUT_MS = 10000


def semisync_server(server_factory: Callable[..., Server], flavor: str) -> Server:
    srv = server_factory(flavor, **SEMISYNC_OPTIONS[flavor])
    srv.execute(["CREATE DATABASE IF NOT EXISTS semisync",
                 "CREATE TABLE IF NOT EXISTS semisync.t "
                 "(id INT AUTO_INCREMENT PRIMARY KEY, v INT)"])
    return srv


def status(srv: Server) -> dict[str, Any]:
    """The source's semi-sync status counters, without the prefix (``yes_tx``, ...)."""
    pre = PREFIX[srv.flavor]
    rows = srv.execute(f"SHOW GLOBAL STATUS LIKE '{pre}%'")
    out: dict[str, Any] = {}
    for name, value in rows:
        key = str(name)[len(pre):].lower()
        out[key] = int(value) if str(value).isdigit() else str(value)
    return out


def set_timeout(srv: Server, ms: int) -> None:
    srv.execute(f"SET GLOBAL {PREFIX[srv.flavor]}timeout = {ms}")


def end_of_binlog(srv: Server) -> Start:
    row = srv.execute("SHOW BINARY LOG STATUS" if srv.flavor == "mysql"
                      else "SHOW MASTER STATUS")[0]
    return Start(str(row[0]), int(row[1]))


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_ready(srv: Server, clients: int = 1) -> dict[str, Any]:
    """Until the source counts ``clients`` semi-sync replicas and semi-sync is ON."""
    last: dict[str, Any] = {}

    def ready() -> bool:
        last.update(status(srv))
        return bool(last["clients"] == clients and (clients == 0 or last["status"] == "ON"))
    wait_for(ready, f"{clients} semi-sync client(s) and status ON (last: {last})")
    return last


def insert(srv: Server, n: int = 1) -> list[float]:
    """``n`` single-row transactions; the time each commit took."""
    conn = srv.connect()
    times = []
    try:
        with conn.cursor() as cur:
            for i in range(n):
                t0 = time.monotonic()
                cur.execute("INSERT INTO semisync.t (v) VALUES (%s)", (i,))
                times.append(time.monotonic() - t0)
    finally:
        conn.close()
    return times


class Consumer(threading.Thread):
    """Iterates ``stream`` in a thread. ``hold(ev)`` is called with each
    event; it may block (a consumer that does not ask for the next event)."""

    def __init__(self, stream: BinlogStream,
                 hold: Callable[[StreamEvent], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.hold = hold
        self.events: list[StreamEvent] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with self.stream:
                for ev in self.stream:
                    assert isinstance(ev, StreamEvent)
                    self.events.append(ev)
                    if self.hold is not None:
                        self.hold(ev)
                    if self.stop.is_set():
                        return
        except BaseException as exc:  # noqa: BLE001 (checked by the test)
            self.error = exc

    def flagged(self) -> list[StreamEvent]:
        return [ev for ev in self.events if ev.ack]

    def finish(self) -> None:
        self.stop.set()
        self.join(10)  # a heartbeat wakes the reader up
        assert not self.is_alive(), "the consumer did not stop"
        assert self.error is None, repr(self.error)


def stream(srv: Server, **kw: Any) -> BinlogStream:
    return BinlogStream(srv.connect, end_of_binlog(srv), flavor=srv.flavor,  # type: ignore[arg-type]
                        semi_sync=True, heartbeat=0.5, reconnect=False, **kw)


@pytest.fixture(params=["mariadb", "mysql"])
def source(request: pytest.FixtureRequest, server_factory: Callable[..., Server]) -> Server:
    srv = semisync_server(server_factory, request.param)
    wait_ready(srv, clients=0)  # replicas of earlier tests are gone
    return srv


N = 20


def test_every_transaction_acknowledged(source: Server) -> None:
    """Test A: ``yes_tx`` grows by N, ``no_tx`` does not, one semi-sync client."""
    set_timeout(source, COUNT_TIMEOUT_MS)
    try:
        consumer = Consumer(stream(source))
        consumer.start()
        wait_ready(source)
        before = status(source)
        times = insert(source, N)
        after = status(source)
        wait_for(lambda: sum(ev.type_name == "XID" for ev in consumer.events) >= N,
                 f"{N} XID events streamed")
        consumer.finish()
    finally:
        set_timeout(source, STALL_TIMEOUT_MS)
    assert after["yes_tx"] - before["yes_tx"] == N, (before, after)
    assert after["no_tx"] == before["no_tx"], (before, after)
    assert after["clients"] == 1 and after["status"] == "ON"
    assert max(times) < 1.0, times
    flagged = consumer.flagged()
    assert flagged and all(ev.type_name == "XID" for ev in flagged)
    if source.flavor == "mysql":  # MySQL flags every transaction's last event
        assert len(flagged) == N
    wait_ready(source, clients=0)  # the source saw the replica go
    print(f"{source.flavor}: yes_tx {before['yes_tx']} -> {after['yes_tx']}, no_tx "
          f"{before['no_tx']} -> {after['no_tx']}, {len(flagged)} flagged, slowest commit "
          f"{max(times):.3f}s")


@pytest.mark.parametrize("how", ["auto_ack_off", "slow_consumer"])
def test_missing_ack_stalls_commit(source: Server, how: str) -> None:
    """Test B: without the ACK a commit waits for the timeout, then counts
    in ``no_tx`` and the source turns semi-sync off; the late ACK turns it on."""
    set_timeout(source, STALL_TIMEOUT_MS)
    release = threading.Event()
    got_flagged = threading.Event()

    def hold(ev: StreamEvent) -> None:
        if ev.ack:
            got_flagged.set()
            if how == "slow_consumer":
                release.wait(30)  # never asks for the next event meanwhile

    st = stream(source, auto_ack=(how != "auto_ack_off"))
    consumer = Consumer(st, hold)
    consumer.start()
    try:
        wait_ready(source)
        before = status(source)
        (took,) = insert(source, 1)
        after = status(source)
        assert took >= 0.9 * STALL_TIMEOUT_MS / 1000, took
        assert after["no_tx"] - before["no_tx"] == 1, (before, after)
        assert after["yes_tx"] == before["yes_tx"], (before, after)
        assert after["status"] == "OFF", after
        assert got_flagged.wait(5), "the commit's event came without the ACK flag"
        # the late ACK: the replica has everything, the source switches back on
        if how == "auto_ack_off":
            st.ack()
        release.set()
        wait_for(lambda: status(source)["status"] == "ON", "semi-sync back ON")
    finally:
        release.set()
        consumer.finish()
    print(f"{source.flavor} {how}: commit took {took:.3f}s; "
          f"no_tx {before['no_tx']} -> {after['no_tx']}")
