"""The NATS JetStream sink (binlogkit.cdc.nats_sink) between live MariaDB /
MySQL servers and private nats-servers: the message layout (subjects,
headers, payloads, DDL in place), exactly once after a redelivery from an
older checkpoint, key partitions, a broker killed mid-flush, a stream
leader killed in a 3-node cluster, a broker down at start, and giving up
after ``retry_for``."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from binlogkit.cdc.broker_layout import Message, nats_subject
from binlogkit.cdc.checkpoint import FileCheckpointStore
from binlogkit.cdc.consumer import Consumer
from binlogkit.cdc.formats import change_json
from binlogkit.cdc.model import Change, Checkpoint, Position, Source, Txn
from binlogkit.cdc.nats_sink import NatsJetStreamSink, NatsSinkError, ensure_stream
from binlogkit.lab import Server
from binlogkit.lab.brokers import BrokerServer

HEADERS = {"op", "flavor", "schema", "table", "txn", "seq", "n", "row", "gtid", "file", "pos",
           "ts_ms", "id", "Nats-Msg-Id"}

# ------------------------------------------------------------------ helpers


def fresh_db(srv: Server, tables: dict[str, str]) -> str:
    db = f"cdc_nats_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}"]
                + [f"CREATE TABLE {db}.{t} ({cols})" for t, cols in tables.items()])
    return db


def names() -> tuple[str, str]:
    """A unique (stream, prefix) per test."""
    tag = uuid.uuid4().hex[:8]
    return f"BK{tag.upper()}", f"bk{tag}"


class Recording(NatsJetStreamSink):
    """Keeps every transaction written (to compute the expected messages);
    ``after_txn(n)`` runs in the sink's loop after the n-th acknowledged
    transaction with changes (to break the broker in the middle of a flush)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.written: list[Txn] = []
        self.after_txn: Callable[[int], None] = lambda n: None
        self.sent = 0

    def write(self, txn: Txn) -> None:
        self.written.append(txn)
        super().write(txn)

    async def _send(self, txn: Txn) -> None:
        await super()._send(txn)
        if txn.changes:
            self.sent += 1
            self.after_txn(self.sent)


def make_sink(url: str, stream: str, prefix: str, **kw: Any) -> Recording:
    kw.setdefault("backoff", 0.05)
    kw.setdefault("max_backoff", 0.5)
    kw.setdefault("ack_timeout", 5.0)
    kw.setdefault("connect_timeout", 1.0)
    kw.setdefault("retry_for", 60.0)  # a broken test fails instead of hanging
    return Recording(url, stream=stream, prefix=prefix, **kw)


def run(srv: Server, sink: NatsJetStreamSink, store: FileCheckpointStore, db: str,
        **kw: Any) -> Checkpoint | None:
    return Consumer(srv.connect, sink, store, include=[f"{db}.*"], **kw).run(follow=False)


@dataclass
class Got:
    subject: str
    headers: dict[str, str]
    data: bytes

    @property
    def id(self) -> str:
        return self.headers["Nats-Msg-Id"]

    @property
    def payload(self) -> Any:
        return json.loads(self.data)


def read_stream(url: str, stream: str) -> list[Got]:
    """Every message of ``stream``, in stream order."""

    async def main() -> list[Got]:
        nc = await nats.connect(url.split(","), connect_timeout=5)
        try:
            js = nc.jetstream(timeout=10.0)
            state = (await js.stream_info(stream)).state
            if not state.messages:
                return []
            out = []
            for seq in range(state.first_seq, state.last_seq + 1):
                m = await js.get_msg(stream, seq)
                out.append(Got(str(m.subject), dict(m.headers or {}), m.data or b""))
            return out
        finally:
            await nc.close()

    return asyncio.run(main())


def with_js(url: str, fn: Callable[[Any], Any]) -> None:
    """Await ``fn(jetstream context)`` on a fresh connection."""

    async def main() -> None:
        nc = await nats.connect(url.split(","), connect_timeout=5)
        try:
            await fn(nc.jetstream(timeout=10.0))
        finally:
            await nc.close()

    asyncio.run(main())


def of_db(got: list[Got], prefix: str, db: str) -> list[Got]:
    """The messages of ``db`` (the stream also holds other databases' DDL)."""
    base = f"{prefix}.src.{db}"
    return [g for g in got if g.subject == base or g.subject.startswith(base + ".")]


def expected(sink: Recording, db: str) -> dict[str, tuple[str, Message]]:
    """id -> (subject, message) of what the sink was given for ``db``, in
    first-written order."""
    out: dict[str, tuple[str, Message]] = {}
    for txn in sink.written:
        for m in sink.layout.messages(txn):
            if m.route[0] == db:
                out.setdefault(m.id, (nats_subject(sink.prefix, sink.server, m.route), m))
    return out


def check_exactly_once(got: list[Got], want: dict[str, tuple[str, Message]]) -> None:
    """Each expected message once, as the layout made it, in order per subject."""
    ids = Counter(g.id for g in got)
    assert set(ids) == set(want) and max(ids.values()) == 1, ids.most_common(3)
    for g in got:
        subject, msg = want[g.id]
        assert g.subject == subject
        assert g.headers == {**msg.fields, "Nats-Msg-Id": msg.id}
        assert g.data == msg.payload
    per_subject: dict[str, list[str]] = {}
    for subject, msg in want.values():
        per_subject.setdefault(subject, []).append(msg.id)
    for subject, order in per_subject.items():
        assert [g.id for g in got if g.subject == subject] == order, subject


def rows(got: list[Got], subject: str) -> list[tuple[Any, ...]]:
    """(op, key) of each message on ``subject``: the row id, or the DDL text."""
    out = []
    for g in got:
        if g.subject == subject:
            p = g.payload
            key = p["sql"] if p["op"] == "ddl" else (p["after"] or p["before"])["id"]
            out.append((p["op"], key))
    return out


def poll(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Later:
    """``fn`` in a thread after ``delay`` s; ``join()`` re-raises its error."""

    def __init__(self, delay: float, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None

        def body() -> None:
            time.sleep(delay)
            try:
                fn()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(60)
        if self.error is not None:
            raise self.error


def manual_txn(i: int) -> Txn:
    src = Source("mariadb", 1, "bin.000001", 100 + i, f"0-1-{i}", 1000 + i, "db", "t", 0)
    return Txn(f"bin.000001:{100 + i}", [Change("c", None, {"id": i}, src)],
               Position("bin.000001", 200 + i), gtid=f"0-1-{i}", ts_ms=1000 + i)


# ------------------------------------------------------------------- tests


def test_layout_subjects_headers_order_ddl(mariadb_server: Server, nats_server: BrokerServer,
                                           tmp_path: Path) -> None:
    srv, (stream, pre) = mariadb_server, names()
    db = fresh_db(srv, {"a": "id INT PRIMARY KEY, v VARCHAR(10)", "b": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.a VALUES (1, 'x'), (2, 'y')")
    store = FileCheckpointStore(tmp_path / "cp.json")
    with make_sink(nats_server.url, stream, pre) as sink:
        run(srv, sink, store, db)  # snapshot
        srv.execute([f"INSERT INTO {db}.a VALUES (3, 'z')",
                     "BEGIN", f"UPDATE {db}.a SET v = 'X' WHERE id = 1",
                     f"INSERT INTO {db}.b VALUES (10), (11)",
                     f"DELETE FROM {db}.a WHERE id = 2", "COMMIT",
                     f"ALTER TABLE {db}.a ADD COLUMN w INT",
                     f"INSERT INTO {db}.a VALUES (4, 'w', 40)", f"INSERT INTO {db}.b VALUES (12)"])
        run(srv, sink, store, db)
    got = of_db(read_stream(nats_server.url, stream), pre, db)
    check_exactly_once(got, expected(sink, db))
    sa, sb = f"{pre}.src.{db}.a", f"{pre}.src.{db}.b"
    assert {g.subject for g in got} == {sa, sb}
    assert rows(got, sa) == [("r", 1), ("r", 2), ("c", 3), ("u", 1), ("d", 2),
                             ("ddl", f"ALTER TABLE {db}.a ADD COLUMN w INT"), ("c", 4)]
    assert rows(got, sb) == [("c", 10), ("c", 11), ("c", 12)]
    assert all(set(g.headers) == HEADERS and g.headers["id"] == g.id for g in got)
    # the multi-statement transaction: one txn, messages 0..3 over both subjects
    upd = next(g for g in got if g.headers["op"] == "u")
    same = [g.headers for g in got if g.headers["txn"] == upd.headers["txn"]]
    assert sorted(int(h["seq"]) for h in same) == [0, 1, 2, 3]
    assert {h["n"] for h in same} == {"4"} and all(h["row"] == h["seq"] for h in same)
    c4 = next(g for g in got if g.headers["op"] == "c" and g.payload["after"]["id"] == 4)
    assert c4.payload["after"] == {"id": 4, "v": "w", "w": 40}
    assert c4.headers["schema"] == db and c4.headers["table"] == "a" and c4.headers["gtid"]
    assert int(c4.headers["pos"]) > 0 and c4.headers["file"]
    change = next(c for t in sink.written for c in t.changes if c.after == c4.payload["after"])
    assert c4.payload == json.loads(json.dumps(change_json(change), default=str))
    ddl = next(g for g in got if g.headers["op"] == "ddl")
    assert ddl.headers["table"] == "a" and ddl.headers["row"] == ""
    # counters: every row message acknowledged once, nothing stored twice
    assert sink.acked_changes == 9 and sink.duplicates == 0 and sink.attempts == 0
    assert sink.last_acked_ts_ms == sink.written[-1].ts_ms > 0


def test_exactly_once_after_redelivery_mysql(mysql_server: Server, nats_server: BrokerServer,
                                             tmp_path: Path) -> None:
    srv, (stream, pre) = mysql_server, names()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v INT"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1, 0), (2, 0)")
    cp = tmp_path / "cp.json"
    store = FileCheckpointStore(cp)
    with make_sink(nats_server.url, stream, pre) as first:
        run(srv, first, store, db)  # snapshot
        srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 0)" for i in range(3, 6)])
        run(srv, first, store, db)
        shutil.copy(cp, tmp_path / "older.json")
        srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 0)" for i in range(6, 9)]
                    + [f"UPDATE {db}.t SET v = 1 WHERE id = 3",
                       f"DELETE FROM {db}.t WHERE id = 4"])
        run(srv, first, store, db)
    stored = {g.id for g in read_stream(nats_server.url, stream)}

    shutil.copy(tmp_path / "older.json", cp)  # as if the last batch was never acknowledged
    with make_sink(nats_server.url, stream, pre) as again:
        run(srv, again, store, db)
    resent = [m for t in again.written for m in again.layout.messages(t)]
    mine = [m.id for m in resent if m.route[0] == db]
    assert len(mine) == 5 and set(mine) <= stored  # the last batch's five changes, again
    assert again.duplicates == sum(m.id in stored for m in resent) >= 5
    assert again.acked_changes == 5
    got = of_db(read_stream(nats_server.url, stream), pre, db)
    check_exactly_once(got, expected(first, db))
    assert rows(got, f"{pre}.src.{db}.t") == [("r", 1), ("r", 2), ("c", 3), ("c", 4), ("c", 5),
                                              ("c", 6), ("c", 7), ("c", 8), ("u", 3), ("d", 4)]


def test_partitions_by_key(mariadb_server: Server, nats_server: BrokerServer,
                           tmp_path: Path) -> None:
    srv, (stream, pre) = mariadb_server, names()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v INT"})
    srv.execute(f"INSERT INTO {db}.t VALUES " + ",".join(f"({i}, 0)" for i in range(1, 6)))
    store = FileCheckpointStore(tmp_path / "cp.json")
    # key_columns for the snapshot (no column types); streamed changes know the primary key
    with make_sink(nats_server.url, stream, pre, partitions=4,
                   key_columns={f"{db}.t": ["id"]}) as sink:
        run(srv, sink, store, db)
        srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 0)" for i in range(6, 21)]
                    + [f"UPDATE {db}.t SET v = 1 WHERE id <= 8",
                       f"DELETE FROM {db}.t WHERE id = 2"])
        run(srv, sink, store, db)
    got = of_db(read_stream(nats_server.url, stream), pre, db)
    check_exactly_once(got, expected(sink, db))
    where: dict[int, set[str]] = {}
    for g in got:
        where.setdefault((g.payload["after"] or g.payload["before"])["id"], set()).add(g.subject)
    assert sorted(where) == list(range(1, 21))
    for key, subjects in where.items():
        assert subjects == {f"{pre}.src.{db}.t.{zlib.crc32(f'[{key}]'.encode()) % 4}"}, key
    assert len({g.subject for g in got}) == 4


def test_broker_killed_mid_flush(mariadb_server: Server, private_nats: BrokerServer,
                                 tmp_path: Path) -> None:
    srv, (stream, pre) = mariadb_server, names()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v INT"})
    store = FileCheckpointStore(tmp_path / "cp.json")
    with make_sink(private_nats.url, stream, pre, ack_timeout=2.0) as sink:  # < the outage
        run(srv, sink, store, db)
        srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 0)" for i in range(1, 13)]
                    + [f"UPDATE {db}.t SET v = v + 1 WHERE id <= 6"])  # one 6-row transaction
        restart: list[Later] = []

        def crash(n: int) -> None:  # in the sink's loop, after the 4th acknowledged transaction
            if n == 4:
                private_nats.kill()
                restart.append(Later(3.0, private_nats.restart))

        sink.after_txn = crash
        t0 = time.monotonic()
        run(srv, sink, store, db)
        assert restart
        restart[0].join()
        assert time.monotonic() - t0 >= 2.5 and sink.attempts > 0
    got = of_db(read_stream(private_nats.url, stream), pre, db)
    check_exactly_once(got, expected(sink, db))
    assert rows(got, f"{pre}.src.{db}.t") == ([("c", i) for i in range(1, 13)]
                                              + [("u", i) for i in range(1, 7)])


def test_cluster_stream_leader_killed(mariadb_server: Server, nats_cluster: list[BrokerServer],
                                      tmp_path: Path) -> None:
    srv, (stream, pre) = mariadb_server, names()
    url = ",".join(n.url for n in nats_cluster)
    info = ensure_stream(url, stream=stream, prefix=pre, replicas=3)
    assert info.config.num_replicas == 3
    leaders: list[str] = []

    async def find_leader(js: Any) -> None:
        cluster = (await js.stream_info(stream)).cluster
        leaders[:] = [cluster.leader] if cluster is not None and cluster.leader else []

    def has_leader() -> bool:
        with_js(url, find_leader)
        return bool(leaders)

    poll(has_leader, 30.0, "a stream leader")
    leader = next(n for n in nats_cluster if n.name == leaders[0])
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    store = FileCheckpointStore(tmp_path / "cp.json")
    restart: list[Later] = []

    def crash(n: int) -> None:
        if n == 3:
            leader.kill()
            restart.append(Later(2.0, leader.restart))

    try:
        with make_sink(url, stream, pre, replicas=3, ack_timeout=2.0) as sink:
            run(srv, sink, store, db)
            srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(1, 16)])
            sink.after_txn = crash
            run(srv, sink, store, db, batch=5)
            assert restart
            restart[0].join()
            srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(16, 19)])
            run(srv, sink, store, db)  # and on with the node back
            assert sink.attempts > 0
        leader.wait_meta_leader(30.0)
        got = of_db(read_stream(url, stream), pre, db)
        check_exactly_once(got, expected(sink, db))
        assert rows(got, f"{pre}.src.{db}.t") == [("c", i) for i in range(1, 19)]
    finally:
        if not leader.is_running():
            leader.restart()
        leader.wait_meta_leader(30.0)
        with_js(url, lambda js: js.delete_stream(stream))


def test_broker_down_at_start(mariadb_server: Server, private_nats: BrokerServer,
                              tmp_path: Path) -> None:
    srv, (stream, pre) = mariadb_server, names()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1), (2)")
    private_nats.stop(timeout=5.0)
    start = Later(1.5, private_nats.restart)
    t0 = time.monotonic()
    with make_sink(private_nats.url, stream, pre, ack_timeout=0.5) as sink:  # no waiting
        assert time.monotonic() - t0 < 1.0
        run(srv, sink, FileCheckpointStore(tmp_path / "cp.json"), db)
        start.join()
        assert time.monotonic() - t0 >= 1.4
    got = of_db(read_stream(private_nats.url, stream), pre, db)
    check_exactly_once(got, expected(sink, db))
    assert rows(got, f"{pre}.src.{db}.t") == [("r", 1), ("r", 2)]


def test_gives_up_after_retry_for(private_nats: BrokerServer) -> None:
    stream, pre = names()
    with make_sink(private_nats.url, stream, pre, retry_for=1.0, ack_timeout=0.5) as sink:
        sink.write(manual_txn(1))
        sink.flush()  # connected, the stream created
        assert sink.acked_transactions == 1 and sink.last_acked_ts_ms == 1001
        private_nats.stop(timeout=5.0)
        sink.write(manual_txn(2))
        t0 = time.monotonic()
        with pytest.raises(NatsSinkError, match=r"transaction bin\.000001:102 not acknowledged"
                           ) as err:
            sink.flush()
        assert 1.0 <= time.monotonic() - t0 < 15.0
        assert private_nats.url in str(err.value) and "\n" not in str(err.value)
        assert sink.attempts >= 1
    t0 = time.monotonic()
    with pytest.raises(NatsSinkError, match=f"nats {private_nats.url}: stream {stream}: "):
        ensure_stream(private_nats.url, stream=stream, prefix=pre, timeout=1.0)
    assert time.monotonic() - t0 < 10.0

    # never connected, a password in the URL: masked in the error
    secret = f"nats://bob:s3cret@127.0.0.1:{private_nats.port}"
    with make_sink(secret, stream, pre, retry_for=0.5, ack_timeout=0.3) as sink:
        sink.write(manual_txn(3))
        with pytest.raises(NatsSinkError, match="not connected") as err:
            sink.flush()
    assert f"nats://bob:***@127.0.0.1:{private_nats.port}" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_stream_must_capture_the_subjects(nats_server: BrokerServer) -> None:
    stream, pre = names()
    ensure_stream(nats_server.url, stream=stream, prefix=pre, server="one")
    assert ensure_stream(nats_server.url, stream=stream, prefix=pre, server="one").config.name
    with pytest.raises(NatsSinkError, match=f"captures .*not {pre}.two"):
        ensure_stream(nats_server.url, stream=stream, prefix=pre, server="two")
    with make_sink(nats_server.url, stream, pre, server="two") as sink:
        sink.write(manual_txn(1))
        with pytest.raises(NatsSinkError, match=f"transaction bin.000001:101: stream {stream}"):
            sink.flush()
