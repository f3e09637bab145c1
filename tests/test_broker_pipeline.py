"""The whole pipeline, source database → ``binlogkit tail --sink`` → broker →
``binlogkit apply --from`` → target database, with the processes and the
brokers killed while a workload with DDL in the middle runs.

- NATS: a MariaDB source and a MySQL target, and the reverse; a 3-node
  JetStream cluster with an R3 stream; tail SIGKILLed at several random
  points; one NATS node SIGKILLed and restarted; apply SIGKILLed once.
- Redis: the same with redis-server (AOF, ``appendfsync always``) SIGKILLed
  and restarted once, each table in 3 partitions (DDL copies as barriers).
- A broker down when tail starts, then gone for 30 s mid-run.

At the end the target's tables equal the source's (SELECT), and the broker
holds every row change exactly once (counted by message ID, and against the
rows the workload changed)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pty
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from test_cdc_nats import poll, read_stream, with_js

from binlogkit.lab import Server
from binlogkit.lab import brokers as _brokers
from binlogkit.lab.brokers import BrokerServer

TABLES = {
    "a": "id INT PRIMARY KEY, n INT NOT NULL, s VARCHAR(40), d DECIMAL(10,2), t DATETIME(3)",
    "b": "id BIGINT PRIMARY KEY, k DOUBLE, note TEXT",
}
KEYS = {"a": ("id",), "b": ("id",), "c": ("x", "y")}


# ------------------------------------------------------------------ workload


class Workload:
    """Random transactions on the source in a thread, with DDL in the middle:
    at ``ddl_at`` ADD COLUMN and CREATE TABLE c, at ``ddl_at2`` DROP COLUMN.
    ``changes`` counts the rows changed (every UPDATE changes its row)."""

    def __init__(self, srv: Server, db: str, total: int, seed: int, pace: float) -> None:
        self.srv, self.db, self.total, self.pace = srv, db, total, pace
        self.rng = random.Random(seed)
        self.conn = srv.connect()
        self.ids: dict[str, list[tuple[int, ...]]] = {"a": [], "b": [], "c": []}
        self.next_id = 0
        self.done = 0
        self.changes = 0
        self.ddl_at, self.ddl_at2 = total // 3, 2 * total // 3
        self.extra = False
        self.dropped = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float = 300.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the workload did not finish"
        if self.error is not None:
            raise self.error

    def _q(self, cur: Any, sql: str, args: Any = None) -> None:
        cur.execute(sql, args)
        self.changes += max(cur.rowcount, 0)

    def _row(self, table: str) -> tuple[str, list[Any]]:
        r = self.rng
        self.next_id += 1
        if table == "a":
            cols = ["id", "n", "s", "d", "t"] + (["e1"] if self.extra else [])
            vals = [self.next_id, r.randint(-10**6, 10**6),
                    r.choice([None, "", "héllo", "a'b", "日本"]),
                    Decimal(r.randint(-10**9, 10**9)) / 100,
                    dt.datetime(2020, 1, 1) + dt.timedelta(milliseconds=r.randint(0, 10**11))]
            vals += [r.randint(0, 99)] if self.extra else []
            key: tuple[int, ...] = (self.next_id,)
        elif table == "b":
            cols = ["id", "k"] + ([] if self.dropped else ["note"])
            vals = [self.next_id, r.choice([0.5, -1.25, None, 1e100])]
            vals += [] if self.dropped else ["note " * r.randint(0, 20)]
            key = (self.next_id,)
        else:
            cols, vals = ["x", "y", "v"], [self.next_id // 5, self.next_id % 5, r.randint(0, 9)]
            key = (vals[0], vals[1])
        self.ids[table].append(key)
        marks = ", ".join(["%s"] * len(vals))
        return f"INSERT INTO {self.db}.{table} ({', '.join(cols)}) VALUES ({marks})", vals

    def _statement(self, cur: Any) -> None:
        tables = ["a", "b"] + (["c"] if self.extra else [])
        table = self.rng.choice(tables)
        op = self.rng.random()
        if op < 0.5 or len(self.ids[table]) < 5:
            sql, vals = self._row(table)
            self._q(cur, sql, vals)
            return
        key = self.ids[table].pop(self.rng.randrange(len(self.ids[table])))
        where = " AND ".join(f"{k} = %s" for k in KEYS[table])
        if op < 0.8:
            self.ids[table].append(key)
            col = {"a": "n", "b": "k", "c": "v"}[table]
            expr = f"COALESCE({col}, 0) + 1"
            self._q(cur, f"UPDATE {self.db}.{table} SET {col} = {expr} WHERE {where}", key)
        else:
            self._q(cur, f"DELETE FROM {self.db}.{table} WHERE {where}", key)

    def _ddl(self, cur: Any, i: int) -> None:
        if i == self.ddl_at:
            cur.execute(f"ALTER TABLE {self.db}.a ADD COLUMN e1 INT NULL AFTER n")
            cur.execute(f"CREATE TABLE {self.db}.c (x INT, y INT, v INT, PRIMARY KEY (x, y))")
            self.extra = True
        elif i == self.ddl_at2:
            cur.execute(f"ALTER TABLE {self.db}.b DROP COLUMN note")
            self.dropped = True

    def _run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                for i in range(self.total):
                    self._ddl(cur, i)
                    cur.execute("BEGIN")
                    for _ in range(self.rng.randint(1, 3)):
                        self._statement(cur)
                    cur.execute("COMMIT")
                    self.done = i + 1
                    time.sleep(self.pace)
        except BaseException as exc:  # noqa: BLE001 (re-raised by join)
            self.error = exc
        finally:
            self.conn.close()


def setup_db(source: Server, target: Server) -> str:
    db = f"pipe_{uuid.uuid4().hex[:8]}"
    for srv in (source, target):
        srv.execute([f"CREATE DATABASE {db} CHARACTER SET utf8mb4"]
                    + [f"CREATE TABLE {db}.{t} ({cols})" for t, cols in TABLES.items()])
    return db


def tables(srv: Server, db: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every table of ``db``: (column names, rows ordered by primary key)."""
    out = {}
    names = [r[0] for r in srv.execute(
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}'")]
    for t in sorted(names):
        cols = [r[0] for r in srv.execute(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{db}' "
            f"AND table_name = '{t}' ORDER BY ordinal_position")]
        rows = srv.execute(f"SELECT * FROM {db}.{t} ORDER BY {', '.join(KEYS[t])}")
        out[t] = (cols, [tuple(r) for r in rows])
    return out


# ------------------------------------------------------------------ processes


@dataclass
class Procs:
    """The tail and apply processes of one pipeline (logs in ``tmp``)."""

    source: Server
    target: Server
    broker_url: str
    db: str
    tmp: Path
    tail_args: list[str] = field(default_factory=list)
    tail: subprocess.Popen[bytes] | None = None
    apply: subprocess.Popen[bytes] | None = None
    runs: Counter[str] = field(default_factory=Counter)

    def _spawn(self, kind: str, args: list[str]) -> subprocess.Popen[bytes]:
        self.runs[kind] += 1
        log = self.tmp / f"{kind}{self.runs[kind]}.log"
        with open(log, "wb") as err:
            return subprocess.Popen([sys.executable, "-m", "binlogkit", *args],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=err)

    def start_tail(self, *, follow: bool = True) -> subprocess.Popen[bytes]:
        self.tail = self._spawn("tail", [
            "tail", self.source.url, "--checkpoint", str(self.tmp / "cp.json"),
            "--sink", self.broker_url, "--include", f"{self.db}.*", "--batch", "5",
            "--heartbeat", "1", "--no-defaults", *self.tail_args,
            "--follow" if follow else "--no-follow"])
        return self.tail

    def start_apply(self, *, follow: bool = True) -> subprocess.Popen[bytes]:
        self.apply = self._spawn("apply", [
            "apply", "--from", self.broker_url, "--target", self.target.url, "--no-defaults",
            "--follow" if follow else "--no-follow", "--idle", "3"])
        return self.apply

    def wait_checkpoint(self, exists: Callable[[], bool], timeout: float = 60.0) -> None:
        """Until the first tail saved its checkpoint (its snapshot is taken)."""
        deadline = time.monotonic() + timeout
        while not exists():
            self.alive(self.tail, "tail")
            assert time.monotonic() < deadline, "no checkpoint"
            time.sleep(0.05)

    def log(self, kind: str) -> str:
        return (self.tmp / f"{kind}{self.runs[kind]}.log").read_text()

    def alive(self, proc: subprocess.Popen[bytes] | None, kind: str) -> None:
        assert proc is not None and proc.poll() is None, f"{kind} exited: {self.log(kind)}"

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def finish(self, proc: subprocess.Popen[bytes], kind: str, timeout: float = 240.0) -> None:
        code = proc.wait(timeout)
        assert code == 0, f"{kind} exit {code}: {self.log(kind)}"

    def drain(self) -> None:
        """After the workload: tail to the end of the binlog, then apply until the
        broker is idle (both with --no-follow), the following ones stopped."""
        self.terminate(self.tail)
        self.finish(self.start_tail(follow=False), "tail")
        self.terminate(self.apply)
        self.finish(self.start_apply(follow=False), "apply")

    def terminate(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)

    def stop_all(self) -> None:
        self.kill(self.tail)
        self.kill(self.apply)


def at(wl: Workload, done: int, timeout: float = 180.0) -> None:
    """Wait until the workload committed ``done`` transactions."""
    deadline = time.monotonic() + timeout
    while wl.done < min(done, wl.total) and wl.thread.is_alive():
        assert time.monotonic() < deadline, f"workload stuck at {wl.done}"
        time.sleep(0.02)
    if wl.error is not None:
        raise wl.error


def check(source: Server, target: Server, db: str, ids: list[str], ops: list[str],
          wl: Workload) -> None:
    src, tgt = tables(source, db), tables(target, db)
    assert set(src) == {"a", "b", "c"}
    assert tgt == src
    counts = Counter(ids)
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1][:5]
    assert "r" not in ops  # the tables were empty at the snapshot
    assert len(ops) - ops.count("ddl") == wl.changes


# ------------------------------------------------------------------ NATS


@pytest.fixture
def cluster_stream(nats_cluster: list[BrokerServer]) -> Iterator[tuple[str, str]]:
    """(broker URL for tail/apply, stream name); the stream is deleted after."""
    stream = f"PIPE{uuid.uuid4().hex[:8]}"
    hosts = ",".join(f"{n.host}:{n.port}" for n in nats_cluster)
    yield f"nats://{hosts}/{stream}", stream
    for node in nats_cluster:
        if not node.is_running():
            node.restart()
    nats_cluster[0].wait_meta_leader(30.0)
    with contextlib.suppress(Exception):
        with_js(",".join(n.url for n in nats_cluster), lambda js: js.delete_stream(stream))


def nats_messages(nodes: list[BrokerServer], stream: str, db: str) -> tuple[list[str], list[str]]:
    got = read_stream(",".join(n.url for n in nodes), stream)
    mine = [g for g in got if g.headers.get("schema") == db]
    return [g.id for g in mine], [g.headers["op"] for g in mine]


@pytest.mark.parametrize(("src_flavor", "tgt_flavor"), [("mariadb", "mysql"),
                                                        ("mysql", "mariadb")])
def test_pipeline_through_nats_cluster(src_flavor: str, tgt_flavor: str,
                                       request: pytest.FixtureRequest,
                                       nats_cluster: list[BrokerServer],
                                       cluster_stream: tuple[str, str], tmp_path: Path) -> None:
    source: Server = request.getfixturevalue(f"{src_flavor}_server")
    target: Server = request.getfixturevalue(f"{tgt_flavor}_server")
    url, stream = cluster_stream
    db = setup_db(source, target)
    rng = random.Random(f"{src_flavor}-nats")
    wl = Workload(source, db, 2500, seed=rng.randrange(10**6), pace=0.003)
    procs = Procs(source, target, url, db, tmp_path, tail_args=["--replicas", "3"])
    try:
        procs.start_tail()
        procs.wait_checkpoint((tmp_path / "cp.json").exists)
        procs.start_apply()
        wl.start()
        kills = sorted(rng.sample(range(100, wl.total - 300), 4))
        node = rng.choice(nats_cluster)
        for i, when in enumerate(kills):
            at(wl, when)
            procs.alive(procs.tail, "tail")
            procs.kill(procs.tail)  # SIGKILL at a random point
            if i == 1:
                node.kill()  # one NATS node dies ...
            procs.start_tail()
            if i == 1:
                at(wl, when + 100)
                node.restart()  # ... and comes back, same storage
            if i == 2:
                procs.alive(procs.apply, "apply")
                procs.kill(procs.apply)
                procs.start_apply()
        wl.join()
        procs.drain()
        ids, ops = nats_messages(nats_cluster, stream, db)
        check(source, target, db, ids, ops, wl)
        assert procs.runs["tail"] >= 6 and procs.runs["apply"] >= 3
    finally:
        procs.stop_all()


# ------------------------------------------------------------------ Redis


@pytest.fixture
def durable_redis() -> Iterator[BrokerServer]:
    reason = _brokers.broker_unavailable_reason("redis")
    if reason:
        pytest.skip(reason)
    srv = _brokers.start_redis(options={"appendfsync": "always"})
    yield srv
    srv.stop(remove_data=True)


def redis_messages(broker: BrokerServer, prefix: str, db: str) -> tuple[list[str], list[str]]:
    client = redis.Redis.from_url(broker.url, decode_responses=True)
    try:
        ids, ops = [], []
        for key in client.scan_iter(f"{prefix}:*"):
            if client.type(key) != "stream":
                continue
            for _, fields in client.xrange(key):
                if fields.get("schema") == db:
                    ids.append(fields["id"])
                    ops.append(fields["op"])
        return ids, ops
    finally:
        client.close()


def test_pipeline_through_redis(mariadb_server: Server, mysql_server: Server,
                                durable_redis: BrokerServer, tmp_path: Path) -> None:
    source, target = mariadb_server, mysql_server
    db = setup_db(source, target)
    prefix = f"pipe{uuid.uuid4().hex[:6]}"
    url = f"redis://{durable_redis.host}:{durable_redis.port}/{prefix}"
    rng = random.Random("redis")
    wl = Workload(source, db, 2000, seed=rng.randrange(10**6), pace=0.003)
    procs = Procs(source, target, url, db, tmp_path, tail_args=["--partitions", "3"])
    try:
        procs.start_tail()
        client = redis.Redis.from_url(durable_redis.url)
        procs.wait_checkpoint(lambda: bool(client.exists(f"{prefix}:src:position")))
        client.close()
        procs.start_apply()
        wl.start()
        at(wl, 400)
        procs.kill(procs.tail)
        procs.start_tail()
        at(wl, 900)
        durable_redis.kill()  # SIGKILL: AOF with appendfsync always keeps what was acked
        time.sleep(2.0)
        durable_redis.restart()
        at(wl, 1300)
        procs.kill(procs.apply)
        procs.start_apply()
        wl.join()
        procs.drain()
        ids, ops = redis_messages(durable_redis, prefix, db)
        check(source, target, db, ids, ops, wl)
    finally:
        procs.stop_all()


# ------------------------------------------------------------------ outages


def test_broker_down_at_start_and_for_30s(mariadb_server: Server, mysql_server: Server,
                                          private_nats: BrokerServer, tmp_path: Path) -> None:
    """NATS is not running when tail and apply start; later it goes away for
    30 s: the pipeline waits and loses nothing."""
    node = private_nats
    node.stop()
    source, target = mariadb_server, mysql_server
    db = setup_db(source, target)
    stream = f"OUT{uuid.uuid4().hex[:8]}"
    url = f"nats://{node.host}:{node.port}/{stream}"
    wl = Workload(source, db, 600, seed=7, pace=0.004)
    procs = Procs(source, target, url, db, tmp_path)
    try:
        procs.start_tail()
        procs.start_apply()
        time.sleep(3.0)  # the snapshot (of empty tables) is read; its delivery waits
        wl.start()
        at(wl, 150)
        procs.alive(procs.tail, "tail")
        procs.alive(procs.apply, "apply")
        node.restart()  # up at last: the backlog goes through
        at(wl, 350)
        node.kill()
        down_since = time.monotonic()
        wl.join()
        while time.monotonic() - down_since < 30.0:
            procs.alive(procs.tail, "tail")
            procs.alive(procs.apply, "apply")
            time.sleep(1.0)
        node.restart()
        procs.drain()
        ids, ops = nats_messages([node], stream, db)
        check(source, target, db, ids, ops, wl)
    finally:
        procs.stop_all()


# ------------------------------------------------------------------ status line


def test_tail_sink_status_line(mariadb_server: Server, redis_server: BrokerServer) -> None:
    """On a terminal, tail --sink shows acknowledged changes/s and the broker lag."""
    db = f"pipe_{uuid.uuid4().hex[:8]}"
    mariadb_server.execute([f"CREATE DATABASE {db}", f"CREATE TABLE {db}.t (id INT PRIMARY KEY)"]
                           + [f"INSERT INTO {db}.t VALUES ({i})" for i in range(50)])
    url = f"redis://{redis_server.host}:{redis_server.port}/st{uuid.uuid4().hex[:6]}"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "binlogkit", "tail", mariadb_server.url, "--sink", url,
         "--include", f"{db}.*", "--heartbeat", "0.5", "--no-defaults"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    os.set_blocking(leader, False)
    seen = b""
    try:
        def shown() -> bool:
            nonlocal seen
            with contextlib.suppress(OSError):
                seen += os.read(leader, 4096)
            return b"changes acked" in seen and b"broker lag" in seen
        poll(shown, 60.0, "a status line")
        mariadb_server.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(50, 80)])
        poll(lambda: shown() and b"0.0 s" in seen.rsplit(b"\r", 1)[-1], 60.0, "lag 0")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        os.close(leader)

