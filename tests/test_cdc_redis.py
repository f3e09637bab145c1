"""The Redis Streams sink (binlogkit.cdc.redis_sink) between a live MariaDB
and a private redis-server: entries per table stream in source order, the
checkpoint stored with them, resume without duplicates, exactly once across
a SIGKILL of Redis (AOF) and a lost EXEC reply, key partitioning, retries
while Redis is down."""

from __future__ import annotations

import json
import threading
import time
import uuid
import zlib
from collections import Counter
from typing import Any

import pytest
import redis

from binlogkit.cdc.consumer import Consumer
from binlogkit.cdc.model import Checkpoint, Txn
from binlogkit.cdc.redis_sink import RedisSinkError, RedisStreamsSink
from binlogkit.lab import Server
from binlogkit.lab import brokers as _brokers
from binlogkit.lab.brokers import BrokerServer

# ------------------------------------------------------------------ helpers


def fresh_db(srv: Server, tables: dict[str, str]) -> str:
    db = f"cdc_redis_{uuid.uuid4().hex[:8]}"
    srv.execute([f"CREATE DATABASE {db}"]
                + [f"CREATE TABLE {db}.{t} ({cols})" for t, cols in tables.items()])
    return db


def make_sink(broker: BrokerServer, prefix: str, cls: type[RedisStreamsSink] = RedisStreamsSink,
              **kw: Any) -> RedisStreamsSink:
    kw.setdefault("backoff", 0.02)
    kw.setdefault("max_backoff", 0.2)
    kw.setdefault("socket_timeout", 2.0)
    return cls(broker.url, prefix=prefix, **kw)


def run(srv: Server, sink: RedisStreamsSink, db: str) -> Checkpoint | None:
    return Consumer(srv.connect, sink, None, include=[f"{db}.*"]).run(follow=False)


def streams(broker: BrokerServer, prefix: str) -> dict[str, list[dict[str, str]]]:
    """Every stream under ``prefix``: name -> entries (fields as str), in order."""
    client = redis.Redis.from_url(broker.url, decode_responses=True)
    try:
        names = sorted(k for k in client.scan_iter(f"{prefix}:*")
                       if client.type(k) == "stream")
        return {n: [fields for _, fields in client.xrange(n)] for n in names}
    finally:
        client.close()


def rows(entries: list[dict[str, str]]) -> list[tuple[Any, ...]]:
    """(op, before, after) of each entry, from its payload."""
    out = []
    for e in entries:
        p = json.loads(e["payload"])
        out.append((e["op"], p["before"], p["after"]))
    return out


def keys(all_streams: dict[str, list[dict[str, str]]]) -> Counter[tuple[str, str]]:
    return Counter((e["txn"], e["row"]) for es in all_streams.values() for e in es
                   if e["op"] != "r")


def prefix() -> str:
    return f"bk{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------- tests


def test_streams_checkpoint_resume(mariadb_server: Server, redis_server: BrokerServer) -> None:
    srv, pre = mariadb_server, prefix()
    db = fresh_db(srv, {"a": "id INT PRIMARY KEY, v VARCHAR(10)", "b": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.a VALUES (1, 'x'), (2, 'y')")

    cp1 = run(srv, make_sink(redis_server, pre), db)  # snapshot
    got = streams(redis_server, pre)
    assert list(got) == [f"{pre}:src:{db}.a"]
    assert rows(got[f"{pre}:src:{db}.a"]) == [("r", None, {"id": 1, "v": "x"}),
                                             ("r", None, {"id": 2, "v": "y"})]
    assert make_sink(redis_server, pre).load_checkpoint() == cp1

    srv.execute([f"INSERT INTO {db}.a VALUES (3, 'z')",
                 "BEGIN", f"UPDATE {db}.a SET v = 'X' WHERE id = 1",
                 f"INSERT INTO {db}.b VALUES (10), (11)",
                 f"DELETE FROM {db}.a WHERE id = 2", "COMMIT"])
    cp2 = run(srv, make_sink(redis_server, pre), db)
    got = streams(redis_server, pre)
    assert rows(got[f"{pre}:src:{db}.a"])[2:] == [
        ("c", None, {"id": 3, "v": "z"}),
        ("u", {"id": 1, "v": "x"}, {"id": 1, "v": "X"}),
        ("d", {"id": 2, "v": "y"}, None)]
    assert rows(got[f"{pre}:src:{db}.b"]) == [("c", None, {"id": 10}), ("c", None, {"id": 11})]
    # the multi-statement transaction: one txn id, rows numbered in transaction order
    upd = next(e for e in got[f"{pre}:src:{db}.a"] if e["op"] == "u")
    same = [e for es in got.values() for e in es if e["txn"] == upd["txn"]]
    assert sorted(int(e["row"]) for e in same) == [0, 1, 2, 3]
    first = got[f"{pre}:src:{db}.a"][2]
    assert first["schema"] == db and first["table"] == "a" and first["gtid"]
    assert first["file"] and int(first["pos"]) > 0
    assert json.loads(first["payload"])["source"]["table"] == "a"
    stored = make_sink(redis_server, pre).load_checkpoint()
    assert stored == cp2 and cp2 is not None and cp1 is not None
    assert cp2.position != cp1.position

    # a third run: nothing new, nothing written twice
    before = keys(got)
    assert run(srv, make_sink(redis_server, pre), db) == cp2
    after = streams(redis_server, pre)
    assert keys(after) == before and max(before.values()) == 1


class KillAfter(RedisStreamsSink):
    """SIGKILLs the redis-server after ``n`` transactions with changes
    committed (and starts it again with ``restart``)."""

    broker: BrokerServer
    n = 0
    restart = False

    def write_with_checkpoint(self, txn: Txn, checkpoint: Checkpoint) -> None:
        super().write_with_checkpoint(txn, checkpoint)
        if txn.changes:
            self.n -= 1
            if self.n == 0:
                self.broker.kill()
                if self.restart:
                    self.broker.restart()


def test_redis_sigkill_between_transactions(mariadb_server: Server,
                                            private_redis: BrokerServer) -> None:
    srv, pre = mariadb_server, prefix()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    run(srv, make_sink(private_redis, pre), db)
    srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(1, 9)])

    sink = make_sink(private_redis, pre, KillAfter, retries=2)
    assert isinstance(sink, KillAfter)
    sink.broker, sink.n = private_redis, 3
    with pytest.raises(RedisSinkError):
        run(srv, sink, db)
    assert sink.attempts == 3  # the first try and two retries

    private_redis.restart()  # same data: the AOF
    survived = streams(private_redis, pre)
    assert [json.loads(e["payload"])["after"]["id"]
            for e in survived[f"{pre}:src:{db}.t"]] == [1, 2, 3]
    cp = make_sink(private_redis, pre).load_checkpoint()
    assert cp is not None

    run(srv, make_sink(private_redis, pre), db)  # resumes after transaction 3
    got = streams(private_redis, pre)
    assert [json.loads(e["payload"])["after"]["id"]
            for e in got[f"{pre}:src:{db}.t"]] == list(range(1, 9))
    assert max(keys(got).values()) == 1


def test_redis_that_lost_acknowledged_writes_is_an_error(mariadb_server: Server) -> None:
    """A Redis without persistence loses everything in a crash: the sink's
    next write sees a checkpoint older than what it wrote and stops instead
    of going on past the hole; a new run resumes from Redis's checkpoint."""
    reason = _brokers.broker_unavailable_reason("redis")
    if reason:
        pytest.skip(reason)
    volatile = _brokers.start_redis(appendonly=False, options={"save": '""'})
    try:
        srv, pre = mariadb_server, prefix()
        db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
        srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(1, 7)])
        run(srv, make_sink(volatile, pre), db)  # the snapshot
        srv.execute([f"INSERT INTO {db}.t VALUES ({i})" for i in range(7, 9)])
        sink = make_sink(volatile, pre, KillAfter, retries=2)
        assert isinstance(sink, KillAfter)
        sink.broker, sink.n, sink.restart = volatile, 1, True  # after row 7 Redis crashes
        # and loses it all
        with pytest.raises(RedisSinkError, match="lost acknowledged transactions"):
            run(srv, sink, db)
        assert make_sink(volatile, pre).load_checkpoint() is None
        run(srv, make_sink(volatile, pre), db)  # starts over: a snapshot of all 8 rows
        got = streams(volatile, pre)
        assert sorted(json.loads(e["payload"])["after"]["id"]
                      for e in got[f"{pre}:src:{db}.t"]) == list(range(1, 9))
    finally:
        volatile.stop(timeout=5.0, remove_data=True)


class LoseReply(RedisStreamsSink):
    """The first commit with entries is applied, then its reply is 'lost'."""

    lost = False

    def _run_script(self, keys: list[str], args: list[str]) -> None:
        super()._run_script(keys, args)
        if not self.lost and len(keys) > 3:
            self.lost = True
            raise redis.ConnectionError("reply lost (simulated)")


def test_lost_reply_is_not_resent(mariadb_server: Server, redis_server: BrokerServer) -> None:
    srv, pre = mariadb_server, prefix()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    run(srv, make_sink(redis_server, pre, server="dbz"), db)
    srv.execute([f"INSERT INTO {db}.t VALUES (1), (2)", f"INSERT INTO {db}.t VALUES (3)"])
    sink = make_sink(redis_server, pre, LoseReply, fmt="debezium", server="dbz")
    run(srv, sink, db)
    assert isinstance(sink, LoseReply) and sink.lost and sink.attempts == 1
    got = streams(redis_server, pre)
    entries = got[f"{pre}:dbz:{db}.t"]
    assert [json.loads(e["payload"])["after"]["id"] for e in entries] == [1, 2, 3]
    env = json.loads(entries[1]["payload"])
    assert env["op"] == "c" and env["source"]["name"] == "dbz"
    assert env["transaction"]["id"] == entries[1]["txn"]
    assert env["transaction"]["total_order"] == 2
    assert max(keys(got).values()) == 1


def test_partitions_by_key(mariadb_server: Server, redis_server: BrokerServer) -> None:
    srv, pre = mariadb_server, prefix()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY, v INT"})
    srv.execute(f"INSERT INTO {db}.t VALUES " + ",".join(f"({i}, 0)" for i in range(1, 6)))
    kw: dict[str, Any] = {"partitions": 4, "key_columns": {f"{db}.t": ["id"]}}
    run(srv, make_sink(redis_server, pre, **kw), db)  # snapshot: no column types
    srv.execute([f"INSERT INTO {db}.t VALUES ({i}, 0)" for i in range(6, 21)]
                + [f"UPDATE {db}.t SET v = 1 WHERE id <= 8", f"DELETE FROM {db}.t WHERE id = 2"])
    # without key_columns: the streamed changes carry primary-key column types
    run(srv, make_sink(redis_server, pre, partitions=4), db)
    got = streams(redis_server, pre)
    assert len(got) > 1 and all(n.rsplit(":", 1)[1] in "0123" for n in got)
    where: dict[int, set[str]] = {}
    for name, entries in got.items():
        for e in entries:
            p = json.loads(e["payload"])
            key = (p["after"] or p["before"])["id"]
            where.setdefault(key, set()).add(name)
    assert sorted(where) == list(range(1, 21))
    for key, names in where.items():
        assert names == {f"{pre}:src:{db}.t:{zlib.crc32(f'[{key}]'.encode()) % 4}"}, key


def test_redis_down_at_start(mariadb_server: Server, private_redis: BrokerServer) -> None:
    srv, pre = mariadb_server, prefix()
    db = fresh_db(srv, {"t": "id INT PRIMARY KEY"})
    srv.execute(f"INSERT INTO {db}.t VALUES (1)")
    private_redis.stop(timeout=5.0)
    timer = threading.Timer(1.0, private_redis.restart)
    timer.start()
    try:
        t0 = time.monotonic()
        sink = make_sink(private_redis, pre, retries=50, backoff=0.05, max_backoff=0.2)
        cp = run(srv, sink, db)
    finally:
        timer.join()
    assert sink.attempts > 0 and time.monotonic() - t0 >= 0.9
    assert cp is not None and make_sink(private_redis, pre).load_checkpoint() == cp
    got = streams(private_redis, pre)
    assert rows(got[f"{pre}:src:{db}.t"]) == [("r", None, {"id": 1})]

    # and with too few retries it gives up with a clear error
    private_redis.stop(timeout=5.0)
    with pytest.raises(RedisSinkError, match="after 3 attempts"):
        make_sink(private_redis, pre, retries=2, backoff=0.01).load_checkpoint()
