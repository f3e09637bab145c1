"""``binlogkit apply --from BROKER --target SERVER`` between live servers:
MariaDB -> Redis Streams sink -> MySQL and MySQL -> NATS JetStream ->
MariaDB with row changes, multi-table transactions, DDL and many column
types; exactly once across a SIGKILL of apply; a DDL re-run after a crash;
errors (unreachable broker, a drifted target) as one line with exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from binlogkit.cdc.broker_apply import SCHEMA_SQL, Applier
from binlogkit.cdc.broker_layout import Layout, nats_subject
from binlogkit.cdc.broker_readers import RedisReader, source_id
from binlogkit.cdc.checkpoint import FileCheckpointStore
from binlogkit.cdc.consumer import Consumer
from binlogkit.cdc.model import Txn
from binlogkit.cdc.redis_sink import RedisStreamsSink
from binlogkit.lab import Server
from binlogkit.lab.brokers import BrokerServer

# ------------------------------------------------------------------ helpers


def new_db(*servers: Server, tables: dict[str, str]) -> str:
    """The same fresh database and tables on every server."""
    db = f"cdc_apply_{uuid.uuid4().hex[:8]}"
    for srv in servers:
        srv.execute([f"CREATE DATABASE {db} CHARACTER SET utf8mb4"]
                    + [f"CREATE TABLE {db}.{t} ({cols})" for t, cols in tables.items()])
    return db


def prefix() -> str:
    return f"ap{uuid.uuid4().hex[:6]}"


def redis_sink(broker: BrokerServer, pre: str) -> RedisStreamsSink:
    return RedisStreamsSink(broker.url, prefix=pre, backoff=0.02, max_backoff=0.2,
                            socket_timeout=5.0)


def capture(srv: Server, sink: Any, db: str, store: Any = None) -> None:
    """Everything of ``db`` since the last run (the first run: a snapshot) into ``sink``."""
    Consumer(srv.connect, sink, store, include=[f"{db}.*"]).run(follow=False)


def apply_args(src: str, target: Server, *extra: str) -> list[str]:
    return [sys.executable, "-m", "binlogkit", "apply", "--from", src, "--target", target.url,
            *extra]


def run_apply(src: str, target: Server, *extra: str, timeout: float = 120.0
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(apply_args(src, target, "--no-follow", "--idle", "1", *extra),
                          capture_output=True, text=True, timeout=timeout, check=False)


def ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    err = res.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith("binlogkit: error: "), res.stderr
    return err[0]


def select(srv: Server, sql: str) -> list[tuple[Any, ...]]:
    conn = srv.connect(init_command="SET time_zone = '+00:00'")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def norm(row: Sequence[Any], json_cols: Sequence[int] = ()) -> tuple[Any, ...]:
    return tuple(json.loads(v) if i in json_cols and v is not None else v
                 for i, v in enumerate(row))


def assert_same(src: Server, dst: Server, db: str, table: str, order: str = "id",
                json_cols: Sequence[int] = ()) -> list[tuple[Any, ...]]:
    sql = f"SELECT * FROM {db}.{table} ORDER BY {order}"
    want = [norm(r, json_cols) for r in select(src, sql)]
    got = [norm(r, json_cols) for r in select(dst, sql)]
    assert got == want, table
    return got


def positions(srv: Server, source: str) -> dict[str, str]:
    rows = select(srv, "SELECT stream, position FROM binlogkit.apply_position "
                       f"WHERE source = '{source}'")
    return {str(s): str(p) for s, p in rows}


def redis_last_ids(broker: BrokerServer, pre: str) -> dict[str, str]:
    client: Any = redis.Redis.from_url(broker.url, decode_responses=True)
    try:
        out: dict[str, str] = {}
        for name in client.scan_iter(f"{pre}:*", _type="stream"):
            out[name] = client.xrevrange(name, count=1)[0][0]
            assert client.xpending(name, "binlogkit-apply")["pending"] == 0, name
        return out
    finally:
        client.close()


def redis_source(broker: BrokerServer, pre: str) -> str:
    return source_id(f"{broker.url}/{pre}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_connections(srv: Server) -> list[int]:
    """KILL every client connection of the server but this one (apply's)."""
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
                        " AND USER = %s AND COMMAND NOT LIKE 'Binlog Dump%%'", (srv.user,))
            ids = [int(r[0]) for r in cur.fetchall()]
            for i in ids:
                try:
                    cur.execute(f"KILL {i}")
                except Exception:  # noqa: BLE001 (gone meanwhile)
                    pass
        return ids
    finally:
        conn.close()


def wait_for(pred: Any, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def spawn(procs: list[subprocess.Popen[str]], args: list[str]) -> subprocess.Popen[str]:
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    procs.append(p)
    return p


# ------------------------------------------------------------------ Redis: MariaDB -> MySQL

TYPES = ("id INT PRIMARY KEY, dt DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(2),"
         " d DATE, y YEAR, de DECIMAL(30,10), f FLOAT, db DOUBLE, bn BINARY(4),"
         " vb VARBINARY(16), bl BLOB, tx TEXT, e ENUM('a','b','c'), s SET('x','y','z'),"
         " j JSON, bt BIT(13), g GEOMETRY NULL, u VARCHAR(20)")
TYPES_JSON = (15,)


def test_redis_mariadb_to_mysql(mariadb_server: Server, mysql_server: Server,
                                redis_server: BrokerServer) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, dst, tables={
        "a": "id INT PRIMARY KEY, v VARCHAR(20), n INT",
        "b": "id INT PRIMARY KEY, w VARCHAR(20)",
        "nopk": "x INT, y VARCHAR(10)",
        "types": TYPES})
    src.execute([
        f"INSERT INTO {db}.a VALUES (1, 'x', 1), (2, 'y', 2)",
        f"INSERT INTO {db}.b VALUES (10, 'p')",
        f"INSERT INTO {db}.nopk VALUES (1, 'd'), (1, 'd'), (2, 'e'), (NULL, NULL)",
        f"INSERT INTO {db}.types VALUES (1, '2024-02-29 12:34:56.123456', "
        "'2024-02-29 12:34:56.250', '-01:02:03.45', '2024-02-29', 2024, "
        "'-12345678901234567890.1234567890', 1.5, -2.25e-300, X'00010203', X'FF00FF', "
        "X'DEADBEEF00', 'h\u00e9llo \u2713', 'b', 'x,z', '{\"a\": 1, \"b\": [true, null, 1.5]}', "
        "b'1010101010101', ST_GeomFromText('POINT(1 2)'), '\U0001F600 \u00fc')",
        f"INSERT INTO {db}.types (id) VALUES (2)"])
    capture(src, redis_sink(redis_server, pre), db)  # the snapshot

    src.execute([
        f"INSERT INTO {db}.a VALUES (3, 'z', 3)",
        "BEGIN", f"UPDATE {db}.a SET v = 'X' WHERE id = 1",
        f"INSERT INTO {db}.b VALUES (11, 'q'), (12, 'r')",
        f"DELETE FROM {db}.a WHERE id = 2", "COMMIT",
        f"UPDATE {db}.nopk SET y = 'D' WHERE x = 1 LIMIT 1",
        f"DELETE FROM {db}.nopk WHERE x = 2",
        f"UPDATE {db}.nopk SET x = 0 WHERE x IS NULL",
        f"INSERT INTO {db}.types VALUES (3, '1000-01-01 00:00:00', '1970-01-01 00:00:01.000', "
        "'-838:59:59', '9999-12-31', 1901, '0.0000000001', -3.4e38, 0.1, X'00000000', X'', "
        "X'', '', 'a', '', '[]', b'0', NULL, '')",
        f"UPDATE {db}.types SET de = '-1.5', j = '{{\"k\": [1, 2]}}', bt = 5461, bl = X'00FF',"
        " s = 'x,y,z', e = 'c' WHERE id = 1",
        f"UPDATE {db}.types SET dt = '2000-01-01 00:00:00.000001', ts = '2038-01-19 03:14:07.999'"
        ", y = 2155, f = 3.5 WHERE id = 2",
        f"ALTER TABLE {db}.a ADD COLUMN extra INT DEFAULT 7",
        f"INSERT INTO {db}.a (id, v, n, extra) VALUES (4, 'w', 4, 40)",
        f"UPDATE {db}.a SET extra = 8 WHERE id = 1",
        f"CREATE TABLE {db}.c (id INT PRIMARY KEY, t VARCHAR(10))",
        "BEGIN", f"INSERT INTO {db}.c VALUES (1, 'c1'), (2, 'c2')",
        f"UPDATE {db}.b SET w = 'Q' WHERE id = 11",
        f"INSERT INTO {db}.nopk VALUES (3, 'f')", "COMMIT",
        f"UPDATE {db}.a SET id = 5 WHERE id = 3"])
    capture(src, redis_sink(redis_server, pre), db)

    url = f"{redis_server.url}/{pre}"
    res = run_apply(url, dst)
    ok(res)
    assert [r[0] for r in assert_same(src, dst, db, "a")] == [1, 4, 5]
    assert_same(src, dst, db, "b")
    assert_same(src, dst, db, "c")
    assert len(assert_same(src, dst, db, "nopk", order="x, y")) == 4
    got = assert_same(src, dst, db, "types", json_cols=TYPES_JSON)
    assert len(got) == 3 and got[0][15] == {"k": [1, 2]} and got[0][16] == b"\x15\x55"
    last = redis_last_ids(redis_server, pre)
    assert set(last) == {f"{pre}:src:{db}.{t}" for t in ("a", "b", "c", "nopk", "types")}
    source = redis_source(redis_server, pre)
    assert positions(dst, source) == last
    assert "@" not in source and str(redis_server.port) in source

    # nothing new: a second run changes nothing
    ok(run_apply(url, dst))
    assert positions(dst, source) == last
    assert_same(src, dst, db, "a")


@pytest.mark.parametrize("flavors", [("mariadb", "mysql"), ("mysql", "mariadb")])
def test_create_table_select(flavors: tuple[str, str], request: pytest.FixtureRequest,
                             redis_server: BrokerServer) -> None:
    """CREATE TABLE ... SELECT: its DDL and its rows are one source transaction;
    apply runs the statement, then commits the rows with the positions."""
    src: Server = request.getfixturevalue(f"{flavors[0]}_server")
    dst: Server = request.getfixturevalue(f"{flavors[1]}_server")
    pre = prefix()
    db = new_db(src, dst, tables={"a": "id INT PRIMARY KEY, v VARCHAR(20)"})
    capture(src, redis_sink(redis_server, pre), db)
    src.execute([f"INSERT INTO {db}.a VALUES (1, 'x'), (2, 'y'), (3, 'z')",
                 f"CREATE TABLE {db}.cs (id INT PRIMARY KEY, v VARCHAR(20)) "
                 f"SELECT id, v FROM {db}.a WHERE id > 1",
                 f"INSERT INTO {db}.cs VALUES (9, 'n')"])
    capture(src, redis_sink(redis_server, pre), db)
    entries = redis.Redis.from_url(redis_server.url, decode_responses=True).xrange(
        f"{pre}:src:{db}.cs")
    ops = [f["op"] for _, f in entries]
    assert ops == ["ddl", "c", "c", "c"]
    assert entries[0][1]["txn"] == entries[1][1]["txn"]  # one transaction: DDL then rows
    ok(run_apply(f"{redis_server.url}/{pre}", dst))
    assert [r[0] for r in assert_same(src, dst, db, "cs")] == [2, 3, 9]
    assert_same(src, dst, db, "a")


def test_redis_sigkill_exactly_once(mariadb_server: Server, mysql_server: Server,
                                    redis_server: BrokerServer,
                                    procs: list[subprocess.Popen[str]]) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, dst, tables={"t": "id INT PRIMARY KEY, n INT",
                                  "log": "i INT, k VARCHAR(10)"})  # no key: copies would show
    src.execute(f"INSERT INTO {db}.t VALUES (0, 0)")
    capture(src, redis_sink(redis_server, pre), db)
    total = 500
    stmts = []
    for i in range(1, total + 1):
        stmts += ["BEGIN", f"INSERT INTO {db}.t VALUES ({i}, 0)",
                  f"UPDATE {db}.t SET n = n + 1 WHERE id = {i - 1}",
                  f"INSERT INTO {db}.log VALUES ({i}, 'k{i % 7}')", "COMMIT"]
    src.execute(stmts)
    capture(src, redis_sink(redis_server, pre), db)

    url = f"{redis_server.url}/{pre}"
    proc = spawn(procs, apply_args(url, dst))  # following
    wait_for(lambda: select(dst, f"SELECT COUNT(*) FROM {db}.log")[0][0] >= 60,
             what="apply to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    at_kill = select(dst, f"SELECT COUNT(*) FROM {db}.log")[0][0]
    assert at_kill < total  # killed in the middle

    # the restart; its target connection is killed twice on the way
    proc = spawn(procs, apply_args(url, dst, "--no-follow", "--idle", "1"))
    for n in (at_kill + (total - at_kill) // 4, at_kill + (total - at_kill) // 2):
        wait_for(lambda n=n: select(dst, f"SELECT COUNT(*) FROM {db}.log")[0][0] >= n,
                 what=f"{n} rows")
        killed = kill_connections(dst)
        assert killed
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    assert_same(src, dst, db, "t")
    logged = assert_same(src, dst, db, "log", order="i")
    assert [r[0] for r in logged] == list(range(1, total + 1))
    last = redis_last_ids(redis_server, pre)
    assert positions(dst, redis_source(redis_server, pre)) == last


def test_follow_new_tables_redis_outage_sigterm(mariadb_server: Server, mysql_server: Server,
                                                private_redis: BrokerServer,
                                                procs: list[subprocess.Popen[str]]) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, dst, tables={"t": "id INT PRIMARY KEY, v INT"})
    capture(src, redis_sink(private_redis, pre), db)
    url = f"{private_redis.url}/{pre}"
    proc = spawn(procs, apply_args(url, dst))  # following

    def count(table: str) -> int:
        return int(select(dst, f"SELECT COUNT(*) FROM {db}.{table}")[0][0])

    src.execute([f"INSERT INTO {db}.t VALUES (1, 1)",
                 f"CREATE TABLE {db}.n (id INT PRIMARY KEY)",  # a stream appears mid-run
                 "BEGIN", f"INSERT INTO {db}.n VALUES (1), (2)",
                 f"UPDATE {db}.t SET v = 2 WHERE id = 1", "COMMIT"])
    capture(src, redis_sink(private_redis, pre), db)
    wait_for(lambda: select(dst, f"SELECT v FROM {db}.t") == [(2,)], 30, "the new table")
    assert count("n") == 2

    private_redis.stop(timeout=5.0)  # the broker goes away for a while
    time.sleep(3.0)
    assert proc.poll() is None
    private_redis.restart()
    src.execute([f"INSERT INTO {db}.n VALUES (3)", f"DELETE FROM {db}.t WHERE id = 1"])
    capture(src, redis_sink(private_redis, pre), db)
    wait_for(lambda: count("n") == 3 and count("t") == 0, 60, "apply after the outage")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err
    assert_same(src, dst, db, "n")
    assert positions(dst, redis_source(private_redis, pre)) == redis_last_ids(private_redis, pre)


def test_ddl_run_again_after_a_crash(mariadb_server: Server, mysql_server: Server,
                                     redis_server: BrokerServer) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, tables={"t": "id INT PRIMARY KEY, v INT"})
    src.execute(f"INSERT INTO {db}.t VALUES (1, 1)")
    capture(src, redis_sink(redis_server, pre), db)
    src.execute([f"ALTER TABLE {db}.t ADD COLUMN w INT DEFAULT 5",
                 f"INSERT INTO {db}.t VALUES (2, 2, 6)"])
    capture(src, redis_sink(redis_server, pre), db)
    # the target as a crash right after the ALTER left it: the column is there
    dst.execute([f"CREATE DATABASE {db} CHARACTER SET utf8mb4",
                 f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT, w INT DEFAULT 5)"])
    url = f"{redis_server.url}/{pre}"
    source = redis_source(redis_server, pre)

    # no marker says it may have run: a duplicate column is a drift, not skipped
    err = one_error_line(run_apply(url, dst))
    assert "ADD COLUMN w" in err and "1060" in err and "drifted" in err
    assert select(dst, f"SELECT COUNT(*) FROM {db}.t") == [(1,)]  # the snapshot row only
    marker = select(dst, "SELECT step, started FROM binlogkit.apply_ddl "
                         f"WHERE source = '{source}'")
    assert marker == [(0, 0)]

    # a marker saying the statement was running when apply died: it counts as done
    dst.execute("UPDATE binlogkit.apply_ddl SET started = 1 "
                f"WHERE source = '{source}'")
    ok(run_apply(url, dst))
    assert_same(src, dst, db, "t")
    assert select(dst, "SELECT COUNT(*) FROM binlogkit.apply_ddl "
                       f"WHERE source = '{source}'") == [(0,)]
    assert positions(dst, source) == redis_last_ids(redis_server, pre)


def test_target_drift_stops(mariadb_server: Server, mysql_server: Server,
                            redis_server: BrokerServer) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, dst, tables={"t": "id INT PRIMARY KEY, v VARCHAR(10)"})
    src.execute(f"INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b')")
    capture(src, redis_sink(redis_server, pre), db)
    url = f"{redis_server.url}/{pre}"
    ok(run_apply(url, dst))
    source = redis_source(redis_server, pre)
    before = positions(dst, source)

    dst.execute(f"DELETE FROM {db}.t WHERE id = 1")  # someone writes to the target
    src.execute([f"INSERT INTO {db}.t VALUES (3, 'c')",
                 "BEGIN", f"INSERT INTO {db}.t VALUES (4, 'd')",
                 f"UPDATE {db}.t SET v = 'A' WHERE id = 1", "COMMIT"])
    capture(src, redis_sink(redis_server, pre), db)
    err = one_error_line(run_apply(url, dst))
    assert "no row with id=1" in err and "drifted" in err and f"{db}.t" in err
    # the transaction before it was applied, the failed one not at all
    assert select(dst, f"SELECT id, v FROM {db}.t ORDER BY id") == [(2, "b"), (3, "c")]
    after = positions(dst, source)
    assert after != before
    stream = f"{pre}:src:{db}.t"
    client: Any = redis.Redis.from_url(redis_server.url, decode_responses=True)
    ids = client.xrange(stream)
    client.close()
    assert after[stream] == ids[-3][0]  # the INSERT of 3; not 4 and the UPDATE

    # put the row back: it goes on
    dst.execute(f"INSERT INTO {db}.t VALUES (1, 'a')")
    ok(run_apply(url, dst))
    assert_same(src, dst, db, "t")


class StreamFirst:
    """A reader handing out each fetch's messages of ``stream`` before the
    others' (within one fetch, the order of streams is the broker's)."""

    def __init__(self, reader: Any, stream: str) -> None:
        self.reader, self.stream = reader, stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def fetch(self, *args: Any, **kw: Any) -> list[Any]:
        return sorted(self.reader.fetch(*args, **kw), key=lambda m: m.stream != self.stream)


def test_unfinished_ddl_other_streams_go_on(mariadb_server: Server, mysql_server: Server,
                                            redis_server: BrokerServer) -> None:
    src, dst, pre = mariadb_server, mysql_server, prefix()
    db = new_db(src, tables={"t": "id INT PRIMARY KEY, v INT", "u": "id INT PRIMARY KEY"})
    capture(src, redis_sink(redis_server, pre), db)  # the snapshot: empty
    src.execute([f"ALTER TABLE {db}.t ADD COLUMN w INT DEFAULT 5",
                 f"INSERT INTO {db}.u VALUES (1)",
                 f"ALTER TABLE {db}.u ADD COLUMN x INT DEFAULT 6",
                 f"INSERT INTO {db}.u VALUES (2, 7)",
                 f"INSERT INTO {db}.t VALUES (1, 1, 8)"])
    capture(src, redis_sink(redis_server, pre), db)
    url = f"{redis_server.url}/{pre}"
    source = redis_source(redis_server, pre)
    client: Any = redis.Redis.from_url(redis_server.url, decode_responses=True)
    alter = client.xrange(f"{pre}:src:{db}.t", count=1)[0][1]
    client.close()
    assert alter["op"] == "ddl"
    # the target as apply killed during the ALTER of t left it
    dst.execute([*SCHEMA_SQL, f"CREATE DATABASE {db} CHARACTER SET utf8mb4",
                 f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT, w INT DEFAULT 5)",
                 f"CREATE TABLE {db}.u (id INT PRIMARY KEY)",
                 "INSERT INTO binlogkit.apply_ddl (source, txn, step, started, statement) "
                 f"VALUES ('{source}', '{alter['txn']}', 0, 1, '')"])

    # the restart reads u's transactions first: its rows go on, its ALTER waits for t's
    reader = StreamFirst(RedisReader(url), f"{pre}:src:{db}.u")
    applier = Applier(reader, dst.connect, follow=False, idle=1.0)
    try:
        status = applier.run()
    finally:
        applier.close()
        reader.close()
    assert status.ddl == 2
    assert_same(src, dst, db, "t")
    assert_same(src, dst, db, "u")
    assert select(dst, "SELECT COUNT(*) FROM binlogkit.apply_ddl "
                       f"WHERE source = '{source}'") == [(0,)]
    assert positions(dst, source) == redis_last_ids(redis_server, pre)


@pytest.mark.parametrize("flavors", [("mariadb", "mysql"), ("mysql", "mariadb")])
def test_float_keys_and_odd_names(flavors: tuple[str, str], request: pytest.FixtureRequest,
                                  redis_server: BrokerServer) -> None:
    src: Server = request.getfixturevalue(f"{flavors[0]}_server")
    dst: Server = request.getfixturevalue(f"{flavors[1]}_server")
    pre = prefix()
    odd = "`o``d%s d`"  # o`d%s d
    db = new_db(src, dst, tables={"f": "k FLOAT PRIMARY KEY, v INT",
                                  odd: "`i``d` INT, `v%s` FLOAT, `w``%` VARCHAR(10)"})
    src.execute([f"INSERT INTO {db}.f VALUES (0.1, 1), (3.3, 2), (-7.77, 3)",
                 f"INSERT INTO {db}.{odd} VALUES (1, 0.1, 'a'), (2, 3.3, 'b'), (3, NULL, '%s')"])
    capture(src, redis_sink(redis_server, pre), db)
    src.execute([f"UPDATE {db}.f SET v = 10 WHERE v = 1",
                 f"UPDATE {db}.f SET k = 4.4 WHERE v = 2",
                 f"DELETE FROM {db}.f WHERE v = 3",
                 f"UPDATE {db}.{odd} SET `w``%` = 'A%' WHERE `i``d` = 1",
                 f"DELETE FROM {db}.{odd} WHERE `i``d` = 2",
                 f"UPDATE {db}.{odd} SET `v%s` = 1.5 WHERE `i``d` = 3"])
    capture(src, redis_sink(redis_server, pre), db)
    ok(run_apply(f"{redis_server.url}/{pre}", dst))
    assert [r[1] for r in assert_same(src, dst, db, "f", order="k")] == [10, 2]
    assert len(assert_same(src, dst, db, odd, order="`i``d`")) == 2


# ------------------------------------------------------------------ NATS: MySQL -> MariaDB


class NatsPublisher:
    """A small sink for the test: each transaction's layout messages
    published to JetStream with nats-py (headers = fields + Nats-Msg-Id)."""

    def __init__(self, url: str, stream: str, pre: str) -> None:
        self.url, self.stream, self.pre = url, stream, pre
        self.layout = Layout()
        self.buffer: list[Txn] = []
        self.last: dict[str, str] = {}  # subject -> last stream sequence
        self.last_txn: Txn | None = None  # the last transaction with messages
        asyncio.run(self._run([], create=True))

    async def _run(self, txns: list[Txn], create: bool = False, again: bool = False) -> None:
        import nats  # noqa: PLC0415

        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            if create:
                await js.add_stream(name=self.stream, subjects=[f"{self.pre}.src.>"])
            for txn in txns:
                for m in self.layout.messages(txn):
                    subject = nats_subject(self.pre, "src", m.route)
                    # again: as a sink resending after the duplicate window
                    msg_id = m.id + (":again" if again else "")
                    ack = await js.publish(subject, m.payload,
                                           headers={**m.fields, "Nats-Msg-Id": msg_id})
                    assert not ack.duplicate
                    if not again:
                        self.last[subject] = str(ack.seq)
                        self.last_txn = txn
        finally:
            await nc.close()

    def write(self, txn: Txn) -> None:
        self.buffer.append(txn)

    def flush(self) -> None:
        txns, self.buffer = self.buffer, []
        asyncio.run(self._run(txns))

    def resend_last(self) -> None:
        assert self.last_txn is not None
        asyncio.run(self._run([self.last_txn], again=True))


def test_nats_mysql_to_mariadb(mysql_server: Server, mariadb_server: Server,
                               nats_server: BrokerServer, tmp_path: Path,
                               procs: list[subprocess.Popen[str]]) -> None:
    src, dst, pre = mysql_server, mariadb_server, prefix()
    stream = pre.upper()
    db = new_db(src, dst, tables={
        "a": "id INT PRIMARY KEY, v VARCHAR(20), j JSON, bl BLOB, dt DATETIME(3), de DECIMAL(8,2)",
        "b": "id INT PRIMARY KEY, w VARCHAR(20)",
        "nopk": "x INT, y VARCHAR(10)"})
    src.execute([f"INSERT INTO {db}.a VALUES (1, 'x', '{{\"a\": [1, 2.5, \"s\"]}}', X'00FF', "
                 "'2024-01-02 03:04:05.678', '12.30')",
                 f"INSERT INTO {db}.nopk VALUES (1, 'd'), (1, 'd')"])
    sink = NatsPublisher(nats_server.url, stream, pre)
    store = FileCheckpointStore(tmp_path / "cp.json")
    capture(src, sink, db, store)
    src.execute([
        f"INSERT INTO {db}.a VALUES (2, 'y', '\"text\"', NULL, NULL, NULL)",
        "BEGIN", f"UPDATE {db}.a SET j = JSON_SET(j, '$.c', true), v = 'X' WHERE id = 1",
        f"INSERT INTO {db}.b VALUES (10, 'p'), (11, 'q')",
        f"DELETE FROM {db}.nopk WHERE x = 1 LIMIT 1", "COMMIT",
        f"ALTER TABLE {db}.b ADD COLUMN extra INT DEFAULT 7",
        f"INSERT INTO {db}.b (id, w, extra) VALUES (12, 'r', 70)",
        f"CREATE TABLE {db}.c (id INT PRIMARY KEY, t VARCHAR(10))",
        "BEGIN", f"INSERT INTO {db}.c VALUES (1, 'c1')",
        f"UPDATE {db}.b SET extra = 8 WHERE id = 10", "COMMIT",
        f"DELETE FROM {db}.a WHERE id = 2"])
    capture(src, sink, db, store)

    url = f"{nats_server.url}/{stream}"
    ok(run_apply(url, dst))
    for table in ("b", "c"):
        assert_same(src, dst, db, table)
    assert_same(src, dst, db, "a", json_cols=(2,))
    assert_same(src, dst, db, "nopk", order="x, y")
    source = source_id(url)
    assert positions(dst, source) == sink.last

    # the last transaction (DELETE of a row) stored again: skipped, not a drift
    sink.resend_last()
    ok(run_apply(url, dst))
    assert_same(src, dst, db, "a", json_cols=(2,))

    # a crash with messages delivered and not acknowledged, then a restart
    total = 400
    src.execute([s for i in range(total) for s in (
        "BEGIN", f"INSERT INTO {db}.c VALUES ({i + 100}, 'n')",
        f"INSERT INTO {db}.nopk VALUES ({i + 100}, 'n')", "COMMIT")])
    capture(src, sink, db, store)
    proc = spawn(procs, apply_args(url, dst))
    wait_for(lambda: select(dst, f"SELECT COUNT(*) FROM {db}.c")[0][0] >= 30,
             what="apply to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert select(dst, f"SELECT COUNT(*) FROM {db}.c")[0][0] < total + 1
    ok(run_apply(url, dst))
    assert_same(src, dst, db, "c")
    assert_same(src, dst, db, "nopk", order="x, y")
    assert positions(dst, source) == sink.last


def test_nats_down_at_start_and_outage(mariadb_server: Server, mysql_server: Server,
                                       tmp_path: Path,
                                       procs: list[subprocess.Popen[str]]) -> None:
    from binlogkit.lab import brokers  # noqa: PLC0415

    reason = brokers.broker_unavailable_reason("nats")
    if reason:
        pytest.skip(reason)
    nats_srv = brokers.start_nats()
    try:
        src, dst, pre = mariadb_server, mysql_server, prefix()
        stream = pre.upper()
        db = new_db(src, dst, tables={"t": "id INT PRIMARY KEY, v INT"})
        src.execute(f"INSERT INTO {db}.t VALUES (1, 1)")
        sink = NatsPublisher(nats_srv.url, stream, pre)
        store = FileCheckpointStore(tmp_path / "cp.json")
        capture(src, sink, db, store)

        def rows() -> list[tuple[Any, ...]]:
            return select(dst, f"SELECT id, v FROM {db}.t ORDER BY id")

        nats_srv.stop(timeout=5.0)
        proc = spawn(procs, apply_args(f"{nats_srv.url}/{stream}", dst))  # broker down
        time.sleep(1.5)
        assert proc.poll() is None
        nats_srv.restart()
        wait_for(lambda: rows() == [(1, 1)], 30, "the snapshot row")

        src.execute([f"INSERT INTO {db}.t VALUES ({i}, {i})" for i in range(2, 40)])
        capture(src, sink, db, store)
        wait_for(lambda: len(rows()) == 39, 30, "39 rows")
        nats_srv.stop(timeout=5.0)  # gone for a while
        time.sleep(3.0)
        assert proc.poll() is None
        nats_srv.restart()
        src.execute([f"UPDATE {db}.t SET v = v + 100 WHERE id < 20",
                     f"DELETE FROM {db}.t WHERE id >= 30"])
        capture(src, sink, db, store)
        wait_for(lambda: rows() == select(src, f"SELECT id, v FROM {db}.t ORDER BY id"), 60,
                 "apply after the outage")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
        source = source_id(f"{nats_srv.url}/{stream}")
        assert positions(dst, source) == sink.last
    finally:
        nats_srv.stop(timeout=5.0, remove_data=True)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("scheme", ["redis", "nats"])
def test_unreachable_broker(mysql_server: Server, scheme: str) -> None:
    port = free_port()
    url = f"{scheme}://user:s3cret@127.0.0.1:{port}/PFX"
    t0 = time.monotonic()
    res = run_apply(url, mysql_server, "--broker-timeout", "1", timeout=60)
    err = one_error_line(res)
    assert time.monotonic() - t0 < 30
    assert f"127.0.0.1:{port}" in err and "unreachable" in err and "s3cret" not in err


def test_bad_urls(mysql_server: Server) -> None:
    err = one_error_line(run_apply("redis://127.0.0.1:1", mysql_server))
    assert "PREFIX" in err
    err = one_error_line(run_apply("kafka://127.0.0.1:1/x", mysql_server))
    assert "redis://" in err
    res = subprocess.run([sys.executable, "-m", "binlogkit", "apply", "--from",
                          "redis://127.0.0.1:1/x", "--target", "mysql://u:pw@127.0.0.1:1",
                          "--no-follow"], capture_output=True, text=True, timeout=60,
                         check=False)
    err = one_error_line(res)
    assert "cannot connect" in err and "pw@" not in err
