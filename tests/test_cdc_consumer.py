"""The CDC consumer against live lab servers (binlogkit.cdc.consumer, .lag):
a first run snapshots then streams, a restart resumes exactly after the
checkpoint, filters, redelivery of in-flight transactions, lag, read-your-
writes with ``wait_for_gtid``, and the reference exactly-once sink
(:class:`SqliteRowSink`, a TransactionalSink storing rows and checkpoint in
one SQLite transaction)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from binlogkit.cdc.checkpoint import FileCheckpointStore
from binlogkit.cdc.consumer import Consumer
from binlogkit.cdc.lag import GtidWaitTimeout, Lag, wait_for_gtid
from binlogkit.cdc.model import Checkpoint, Txn
from binlogkit.cdc.sinks import MemorySink
from binlogkit.lab import Server

FLAVORS = ["mariadb", "mysql"]
ServerFactory = Callable[..., Server]


# ------------------------------------------------------------------ helpers


def server(request: pytest.FixtureRequest, flavor: str) -> Server:
    return request.getfixturevalue(f"{flavor}_server")  # type: ignore[no-any-return]


def fresh_db(srv: Server, tables: dict[str, str]) -> str:
    """A new database holding ``tables`` (name -> column definitions)."""
    db = f"cdc_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}"]
                + [f"CREATE TABLE {db}.{t} ({cols})" for t, cols in tables.items()])
    return db


def changes(txns: list[Txn], *, snapshot: bool | None = None) -> list[tuple[Any, ...]]:
    """(op, table, before, after) of every change, in order."""
    return [(c.op, c.source.table, c.before, c.after)
            for t in txns if snapshot is None or t.snapshot == snapshot for c in t.changes]


def gtid_executed(srv: Server) -> str:
    var = "gtid_binlog_pos" if srv.flavor == "mariadb" else "gtid_executed"
    return str(srv.execute(f"SELECT @@GLOBAL.{var}")[0][0]).replace("\n", "")


def same_gtids(srv: Server, a: str, b: str) -> bool:
    if srv.flavor == "mariadb":
        return sorted(a.split(",")) == sorted(b.split(","))
    rows = srv.execute(f"SELECT GTID_SUBSET('{a}', '{b}') AND GTID_SUBSET('{b}', '{a}')")
    return bool(rows[0][0])


class Background:
    """``consumer.run(follow=True)`` in a thread; :meth:`stop` joins it."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.result: Checkpoint | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.consumer.run(follow=True)
        except BaseException as exc:  # noqa: BLE001 - re-raised in stop()
            self.error = exc

    def alive(self) -> bool:
        """True while running; re-raises what ended the run."""
        if self.error is not None:
            raise self.error
        return True

    def stop(self, timeout: float = 15.0) -> Checkpoint | None:
        self.consumer.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the consumer did not stop"
        if self.error is not None:
            raise self.error
        return self.result


def wait_for(pred: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ------------------------------------------------------------ snapshot, resume


@pytest.mark.parametrize("flavor", FLAVORS)
def test_snapshot_then_stream_then_resume(request: pytest.FixtureRequest, flavor: str,
                                          tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v VARCHAR(20)"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    store = FileCheckpointStore(tmp_path / "cp.json")

    # first run: no checkpoint, so a snapshot (op r), then the stream to the end
    sink = MemorySink()
    Consumer(srv.connect, sink, store, include=[f"{db}.*"]).run(follow=False)
    snap = [t for t in sink.txns if t.snapshot]
    assert snap and all(c.source.snapshot and c.op == "r" for t in snap for c in t.changes)
    assert changes(sink.txns) == [("r", "t", None, {"id": i, "v": v})
                                  for i, v in ((1, "a"), (2, "b"), (3, "c"))]
    cp1 = store.load()
    assert cp1 is not None and cp1.in_flight is None and cp1.flavor == flavor
    assert same_gtids(srv, cp1.position.gtids, gtid_executed(srv))

    # changes while nobody listens, one of them a multi-statement transaction
    srv.execute([f"INSERT INTO {db}.t VALUES (4, 'd')",
                 "BEGIN", f"UPDATE {db}.t SET v = 'A' WHERE id = 1",
                 f"DELETE FROM {db}.t WHERE id = 2", "COMMIT"])

    # second run: resumes right after the checkpoint, no snapshot, no duplicate
    sink2 = MemorySink()
    Consumer(srv.connect, sink2, store, include=[f"{db}.*"]).run(follow=False)
    kept = [t for t in sink2.txns if t.changes]
    assert not any(t.snapshot or t.redelivered for t in sink2.txns)
    assert changes(kept) == [("c", "t", None, {"id": 4, "v": "d"}),
                             ("u", "t", {"id": 1, "v": "a"}, {"id": 1, "v": "A"}),
                             ("d", "t", {"id": 2, "v": "b"}, None)]
    assert [len(t.changes) for t in kept] == [1, 2]  # transaction boundaries kept
    assert kept[1].gtid is not None and kept[1].id == kept[1].gtid
    cp2 = store.load()
    assert cp2 is not None and cp2.position != cp1.position
    assert same_gtids(srv, cp2.position.gtids, gtid_executed(srv))
    assert cp2.position == kept[-1].end or any(t.end == cp2.position for t in sink2.txns)

    # third run: nothing new, nothing delivered
    sink3 = MemorySink()
    Consumer(srv.connect, sink3, store, include=[f"{db}.*"]).run(follow=False)
    assert changes(sink3.txns) == []
    assert store.load() == cp2


@pytest.mark.parametrize("flavor", FLAVORS)
def test_include_exclude(request: pytest.FixtureRequest, flavor: str, tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, {"keep": "id INT PRIMARY KEY", "skip": "id INT PRIMARY KEY",
                        "keep_too": "id INT PRIMARY KEY"})
    other = fresh_db(srv, {"keep": "id INT PRIMARY KEY"})
    for name in (f"{db}.keep", f"{db}.skip", f"{db}.keep_too", f"{other}.keep"):
        srv.execute(f"INSERT INTO {name} VALUES (1)")
    store = FileCheckpointStore(tmp_path / "cp.json")

    def run() -> list[Txn]:
        sink = MemorySink()
        # a pattern without a dot names a database; exclude wins over include
        Consumer(srv.connect, sink, store, include=[db, f"{other}.nothing*"],
                 exclude=[f"{db}.s*"]).run(follow=False)
        return sink.txns

    snap = run()
    assert sorted((c.source.schema, c.source.table) for t in snap for c in t.changes) == \
        [(db, "keep"), (db, "keep_too")]
    for name in (f"{db}.keep", f"{db}.skip", f"{db}.keep_too", f"{other}.keep"):
        srv.execute(f"INSERT INTO {name} VALUES (2)")
    streamed = run()
    assert [(c.op, c.source.schema, c.source.table, c.after) for t in streamed
            for c in t.changes] == [("c", db, "keep", {"id": 2}), ("c", db, "keep_too", {"id": 2})]
    # transactions whose changes were all filtered out still move the checkpoint
    assert len(streamed) >= 4
    cp = store.load()
    assert cp is not None and same_gtids(srv, cp.position.gtids, gtid_executed(srv))


class CrashingSink(MemorySink):
    """Crashes (in ``flush``, before acknowledging) once it holds ``limit``
    changes of streamed transactions."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def flush(self) -> None:
        if sum(len(t.changes) for t in self.txns if not t.snapshot) >= self.limit:
            raise RuntimeError("simulated crash")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_in_flight_transactions_are_redelivered_marked(request: pytest.FixtureRequest,
                                                       flavor: str, tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    store = FileCheckpointStore(tmp_path / "cp.json")
    Consumer(srv.connect, MemorySink(), store, include=[db]).run(follow=False)
    srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(1, 7)])

    # batch=3: the sink gets txns 1-3, crashes before acknowledging them
    crashing = CrashingSink(limit=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Consumer(srv.connect, crashing, store, include=[db], batch=3,
                 flush_interval=60).run(follow=False)
    seen = [t.id for t in crashing.txns if t.changes]
    assert seen, "the sink saw nothing before crashing"
    cp = store.load()
    assert cp is not None and cp.in_flight is not None  # what was handed over, unacknowledged

    sink = MemorySink()
    Consumer(srv.connect, sink, store, include=[db], batch=3).run(follow=False)
    got = [(t.id, t.redelivered, [c.after["id"] for c in t.changes if c.after])
           for t in sink.txns if t.changes]
    assert [i for _, _, ids in got for i in ids] == [1, 2, 3, 4, 5, 6]  # nothing missing
    redelivered = [tid for tid, again, _ in got if again]
    assert set(seen) <= set(redelivered), (seen, got)  # everything in flight is marked
    # only transactions up to the in-flight one are marked
    ids = [t.id for t in sink.txns]
    assert all(t.redelivered == (ids.index(t.id) <= ids.index(cp.in_flight))
               for t in sink.txns)
    final = store.load()
    assert final is not None and final.in_flight is None


# ------------------------------------------------------------------ lag


def test_lag_from_timestamps_and_heartbeats() -> None:
    lag = Lag()
    assert lag.seconds() is None  # nothing seen yet
    lag.transaction(1_000_000)
    assert lag.seconds(now=1_012.5) == pytest.approx(12.5)
    assert lag.seconds(now=999.0) == 0.0  # clocks skewed: never negative
    lag.heartbeat()  # the source had nothing newer
    assert lag.seconds(now=5_000.0) == 0.0
    lag.transaction(4_000_000)  # more arrives: behind again until the next heartbeat
    assert lag.seconds(now=4_003.0) == pytest.approx(3.0)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_consumer_lag_live(request: pytest.FixtureRequest, flavor: str, tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    store = FileCheckpointStore(tmp_path / "cp.json")
    Consumer(srv.connect, MemorySink(), store, include=[db]).run(follow=False)
    written = time.time()
    srv.execute(f"INSERT INTO {db}.t VALUES (1)")
    time.sleep(1.5)  # the consumer is 1.5 s behind when it starts

    sink = MemorySink()
    statuses: list[float | None] = []
    consumer = Consumer(srv.connect, sink, store, include=[db], heartbeat=0.3,
                        on_status=lambda st: statuses.append(st.lag))
    bg = Background(consumer)
    try:
        wait_for(lambda: bg.alive() and any(t.changes for t in sink.txns), what="the insert")
        txn = next(t for t in sink.txns if t.changes)
        assert abs(txn.ts_ms / 1000 - written) < 1.1  # the commit time (MariaDB: seconds)
        assert max(s for s in statuses if s is not None) >= 1.4  # lag from that timestamp
        # then the source is idle: its heartbeat says we are caught up
        wait_for(lambda: consumer.lag.seconds() == 0.0, what="a heartbeat")
        wait_for(lambda: statuses[-1] == 0.0, what="the status")
    finally:
        bg.stop()


# --------------------------------------------------------------- wait_for_gtid


def test_wait_for_gtid_mysql(mysql_server: Server) -> None:
    srv = mysql_server
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1)")
    executed = gtid_executed(srv)
    conn = srv.connect()
    try:
        t0 = time.monotonic()
        wait_for_gtid(conn, executed, 5)
        wait_for_gtid(conn, executed, 5, flavor="mysql")
        assert time.monotonic() - t0 < 2
        uuid_ = str(srv.execute("SELECT @@server_uuid")[0][0])
        mine = next(p for p in executed.split(",") if p.startswith(uuid_))
        last = int(mine.rsplit(":", 1)[1].rsplit("-", 1)[-1])
        t0 = time.monotonic()
        with pytest.raises(GtidWaitTimeout, match="did not reach"):
            wait_for_gtid(conn, f"{uuid_}:{last + 10**6}", 1)
        assert 0.9 <= time.monotonic() - t0 < 5
        # the next GTID, committed while waiting: returns once it is executed
        nxt = f"{uuid_}:{last + 1}"

        def later() -> None:
            time.sleep(0.5)
            srv.execute(f"INSERT INTO {db}.t VALUES (2)")

        th = threading.Thread(target=later)
        th.start()
        t0 = time.monotonic()
        wait_for_gtid(conn, nxt, 10)
        th.join()
        assert 0.3 < time.monotonic() - t0 < 5
    finally:
        conn.close()


@pytest.fixture
def mariadb_replica(mariadb_server: Server, server_factory: ServerFactory) -> Iterator[Server]:
    """A second MariaDB replicating from ``mariadb_server`` from its current GTID position."""
    replica = server_factory("mariadb", server_id=2)
    src = mariadb_server
    replica.execute(["STOP SLAVE", "RESET SLAVE ALL",
                     f"SET GLOBAL gtid_slave_pos = '{gtid_executed(src)}'",
                     f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={src.port}, "
                     "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos",
                     "START SLAVE"])
    yield replica
    replica.execute(["STOP SLAVE", "RESET SLAVE ALL"])


def test_wait_for_gtid_mariadb_replica(mariadb_server: Server, mariadb_replica: Server) -> None:
    src = mariadb_server
    db = fresh_db(src, {"t": "id INT PRIMARY KEY"})
    src.execute(f"INSERT INTO {db}.t VALUES (1)")
    pos = gtid_executed(src)
    conn = mariadb_replica.connect()
    try:
        wait_for_gtid(conn, pos, 10)  # read-your-writes: now the replica has the row
        with conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {db}.t")
            assert cur.fetchall() == ((1,),)
        domain, server_id, seq = pos.split(",")[0].split("-")
        never = f"{domain}-{server_id}-{int(seq) + 10**6}"
        t0 = time.monotonic()
        with pytest.raises(GtidWaitTimeout, match="did not reach"):
            wait_for_gtid(conn, never, 1, flavor="mariadb")
        assert 0.9 <= time.monotonic() - t0 < 5
    finally:
        conn.close()


def test_wait_for_gtid_mariadb_own_writes(mariadb_server: Server) -> None:
    srv = mariadb_server
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1)")
    conn = srv.connect()
    try:
        wait_for_gtid(conn, gtid_executed(srv), 1)
    finally:
        conn.close()


# ------------------------------------------------- exactly once: the reference sink


class SqliteRowSink:
    """The reference TransactionalSink: the rows of the source's tables in
    SQLite (table ``rows``: schema, table, key, JSON image) and the
    checkpoint, written in ONE SQLite transaction per source transaction.

    A crash anywhere leaves rows and checkpoint consistent: either the
    transaction and the checkpoint after it are both committed, or neither
    is and the consumer delivers it again from the older checkpoint. So
    every transaction is applied exactly once. ``applied`` logs the ids of
    the transactions applied, to check that.

    ``key`` is the image's primary-key column ``id`` (a real sink would use
    the table's key). Snapshot batches arrive through ``write`` (upserts,
    idempotent) and are committed by ``flush``.
    """

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS rows (schema TEXT, tbl TEXT, key TEXT, image TEXT,
                                             PRIMARY KEY (schema, tbl, key));
            CREATE TABLE IF NOT EXISTS applied (txn TEXT, redelivered INTEGER);
            CREATE TABLE IF NOT EXISTS checkpoint (one INTEGER PRIMARY KEY CHECK (one = 1),
                                                   data TEXT NOT NULL);
        """)
        self.in_tx = False

    # TransactionalSink
    def load_checkpoint(self) -> Checkpoint | None:
        row = self.db.execute("SELECT data FROM checkpoint").fetchone()
        return None if row is None else Checkpoint.from_json(json.loads(row[0]))

    def write_with_checkpoint(self, txn: Txn, checkpoint: Checkpoint) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._apply(txn)
            self.db.execute("INSERT INTO applied VALUES (?, ?)", (txn.id, int(txn.redelivered)))
            self.db.execute("INSERT OR REPLACE INTO checkpoint VALUES (1, ?)",
                            (json.dumps(checkpoint.to_json()),))
            self.before_commit(txn)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def before_commit(self, txn: Txn) -> None:
        """A hook for the tests (crash before the commit)."""

    # Sink (the snapshot)
    def write(self, txn: Txn) -> None:
        if not self.in_tx:
            self.db.execute("BEGIN IMMEDIATE")
            self.in_tx = True
        self._apply(txn)

    def flush(self) -> None:
        if self.in_tx:
            self.db.execute("COMMIT")
            self.in_tx = False

    def _apply(self, txn: Txn) -> None:
        for c in txn.changes:
            s, t = c.source.schema, c.source.table
            if c.before is not None:
                self.db.execute("DELETE FROM rows WHERE schema=? AND tbl=? AND key=?",
                                (s, t, str(c.before["id"])))
            if c.after is not None:
                self.db.execute("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)",
                                (s, t, str(c.after["id"]), json.dumps(c.after, sort_keys=True)))

    def table(self, schema: str, tbl: str) -> list[tuple[int, str]]:
        return sorted((int(k), json.loads(img)["v"]) for k, img in self.db.execute(
            "SELECT key, image FROM rows WHERE schema=? AND tbl=?", (schema, tbl)))

    def applied(self) -> list[tuple[str, int]]:
        return list(self.db.execute("SELECT txn, redelivered FROM applied"))


class CrashBeforeCommit(SqliteRowSink):
    def __init__(self, path: Path, at: int) -> None:
        super().__init__(path)
        self.at = at
        self.calls = 0

    def before_commit(self, txn: Txn) -> None:
        if txn.changes:
            self.calls += 1
            if self.calls == self.at:
                raise RuntimeError("simulated crash before commit")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_transactional_sink_exactly_once(request: pytest.FixtureRequest, flavor: str,
                                         tmp_path: Path) -> None:
    srv = server(request, flavor)
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v VARCHAR(20)"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b')")
    path = tmp_path / "sink.sqlite"

    def source_rows() -> list[tuple[int, str]]:
        return sorted((int(i), str(v)) for i, v in srv.execute(f"SELECT id, v FROM {db}.t"))

    # first run: snapshot, then a streamed transaction commits the checkpoint
    sink = SqliteRowSink(path)
    consumer = Consumer(srv.connect, sink, None, include=[db], heartbeat=0.3)
    bg = Background(consumer)
    wait_for(lambda: bg.alive() and consumer.checkpoint is not None, what="the snapshot")
    srv.execute(f"INSERT INTO {db}.t VALUES (3, 'c')")
    wait_for(lambda: bg.alive() and (3, "c") in sink.table(db, "t"), what="the insert")
    bg.stop()
    assert sink.load_checkpoint() is not None
    assert sink.table(db, "t") == source_rows()

    # more work, and a crash before the sink commits the second transaction of it
    srv.execute([f"UPDATE {db}.t SET v = 'A' WHERE id = 1",
                 "BEGIN", f"DELETE FROM {db}.t WHERE id = 2",
                 f"INSERT INTO {db}.t VALUES (4, 'd')", "COMMIT",
                 f"UPDATE {db}.t SET v = 'C' WHERE id = 3"])
    crashing = CrashBeforeCommit(path, at=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Consumer(srv.connect, crashing, FileCheckpointStore(tmp_path / "ignored.json"),
                 include=[db], batch=10).run(follow=False)
    assert not (tmp_path / "ignored.json").exists()  # the sink keeps the checkpoint

    # restart: continues after the last committed transaction, nothing twice
    sink = SqliteRowSink(path)
    Consumer(srv.connect, sink, None, include=[db]).run(follow=False)
    assert sink.table(db, "t") == source_rows() == [(1, "A"), (3, "C"), (4, "d")]
    ids = [tid for tid, _ in sink.applied()]
    streamed = [tid for tid in ids if not tid.startswith("snapshot:")]
    assert len(streamed) == len(set(streamed)), ids  # exactly once
    assert not any(again for _, again in sink.applied())  # never redelivered
    # and a run with nothing new applies nothing
    before = len(sink.applied())
    Consumer(srv.connect, SqliteRowSink(path), None, include=[db]).run(follow=False)
    assert len(sink.applied()) == before


def test_transactional_sink_keeps_the_snapshot_checkpoint(mariadb_server: Server,
                                                          tmp_path: Path) -> None:
    srv = mariadb_server
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v VARCHAR(20)"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a')")
    sink = SqliteRowSink(tmp_path / "sink.sqlite")
    Consumer(srv.connect, sink, None, include=[db]).run(follow=False)
    assert sink.table(db, "t") == [(1, "a")]
    assert sink.load_checkpoint() is not None


class CrashAtDdl(SqliteRowSink):
    """Crashes before committing the first transaction that holds DDL."""

    def before_commit(self, txn: Txn) -> None:
        if txn.ddl:
            raise RuntimeError("simulated crash before commit")


def test_transactional_sink_crash_inside_a_batch_with_ddl(mariadb_server: Server,
                                                          tmp_path: Path) -> None:
    srv = mariadb_server
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v VARCHAR(20)"})
    path = tmp_path / "sink.sqlite"
    sink = SqliteRowSink(path)
    consumer = Consumer(srv.connect, sink, None, include=[db], heartbeat=0.3)
    bg = Background(consumer)
    wait_for(lambda: bg.alive() and consumer.checkpoint is not None, what="the snapshot")
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 'a')")
    wait_for(lambda: bg.alive() and sink.table(db, "t") == [(1, "a")], what="the insert")
    bg.stop()

    # one batch: an insert, an ALTER (the sink crashes before committing it), an insert
    srv.execute([f"INSERT INTO {db}.t VALUES (2, 'b')",
                 f"ALTER TABLE {db}.t ADD COLUMN w INT FIRST",
                 f"INSERT INTO {db}.t VALUES (7, 3, 'c')"])
    with pytest.raises(RuntimeError, match="simulated crash"):
        Consumer(srv.connect, CrashAtDdl(path), None, include=[db], batch=10,
                 flush_interval=60).run(follow=False)
    cp = SqliteRowSink(path).load_checkpoint()
    assert cp is not None
    columns = [[c["name"] for c in t["columns"]] for t in cp.schema_history["tables"]
               if t["schema"] == db]
    assert columns == [["id", "v"]], "the stored history is ahead of the stored position"
