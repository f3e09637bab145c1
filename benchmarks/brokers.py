#!/usr/bin/env python3
"""Broker benchmark: a live server's row changes into NATS JetStream and Redis
Streams (``binlogkit tail --sink``), and from there into a second server
(``binlogkit apply --from``), in one run.

A script, not a test. It starts private servers with
:mod:`binlogkit.lab.servers` and :mod:`binlogkit.lab.brokers`: the source
(MariaDB by default, ``--flavor mysql``; the options of
``benchmarks/stream.py``), a target (MySQL when it can be started here,
else MariaDB; ``--target-flavor``), one single-node ``nats-server`` with
JetStream and one ``redis-server`` with ``appendonly yes`` and
``appendfsync always`` (the setting under which the Redis sink is exactly
once; a second one with the default ``everysec`` for (d)). On the source it
creates a database ``bench`` with three tables (INT/BIGINT keys, VARCHAR,
DECIMAL, DATETIME(6), DOUBLE, TEXT), takes a checkpoint on the empty tables
(one ``Consumer`` run), then runs the workload in one fresh binlog file:
``--transactions`` transactions of ``--rows-per-txn`` row changes each
(multi-row INSERTs, UPDATEs and DELETEs on all three tables). Then, in
interleaved rounds, it times

  (a) source -> NATS: ``Consumer(connect, NatsJetStreamSink(url,
      stream=...), FileCheckpointStore(...), include=["bench.*"],
      batch=...).run(follow=False)`` into a fresh stream;
  (b) source -> Redis, ``appendfsync always``: the same with
      ``RedisStreamsSink(url, prefix=...)`` (it keeps the checkpoint with
      the entries: one Lua script per transaction);
  (c) source -> JSON Lines file: the same with ``JsonLinesSink(path)``
      (fsync per acknowledgement), the reference;
  (d) as (b), Redis with the default ``appendfsync everysec``;
  (e) NATS -> target: ``Applier(open_reader("nats://.../STREAM"),
      target.connect, follow=False).run()`` on what (a) wrote in round 1,
      with a fresh durable consumer, into emptied target tables;
  (f) Redis -> target: the same from what (b) wrote in round 1;
  (g) source -> NATS -> target: (a) in a child process and (e) in this one,
      started together on an empty stream;
  (h) source -> Redis -> target: the same with (b) and (f).

Every tail run starts from a copy of the same checkpoint (Redis: a fresh key
prefix seeded with it, as the consumer seeds it after a snapshot). (a)-(d)
end when the consumer reached the end of the source's binlog and the sink
acknowledged everything; (e)-(h) when the applier has committed the last
change on the target (it is then stopped, so its ``idle`` wait is not
counted). Timed: ``Consumer.run`` (the sinks are built before it; NATS
connects in the background), ``Applier.run`` (reader and applier built
before it; the target connection and the broker consumers are set up inside
it).

Checked in every run, stopping with a message otherwise: the broker holds
exactly the workload's number of row changes (NATS: the stream's message
count; Redis: the sum of XLEN over the sink's streams; JSON Lines: the
change lines), and after every apply the target's tables hold the source's
rows (count and a digest of every row, in key order).

    python benchmarks/brokers.py                       # MariaDB -> brokers -> MySQL, 3 rounds
    python benchmarks/brokers.py --transactions 20000 --repeat 5
    python benchmarks/brokers.py --only abc --batch 500
    python benchmarks/brokers.py --flavor mysql --target-flavor mariadb

See docs/performance.md ("Brokers").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import importlib.metadata
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rows import machine  # noqa: E402
from stream import OPTIONS, current_file  # noqa: E402

INCLUDE = ["bench.*"]
SEED = 20261121
IDLE = 5.0  # the applier's idle wait: only reached when a run goes wrong

TABLES = {
    "customers": """
        CREATE TABLE customers (
            id INT NOT NULL PRIMARY KEY,
            name VARCHAR(64) NOT NULL,
            email VARCHAR(128) NOT NULL,
            balance DECIMAL(14,2) NOT NULL,
            updated DATETIME(6) NOT NULL,
            version INT NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "orders": """
        CREATE TABLE orders (
            id BIGINT NOT NULL PRIMARY KEY,
            customer_id INT NOT NULL,
            status VARCHAR(16) NOT NULL,
            amount DECIMAL(12,2) NOT NULL,
            weight DOUBLE NOT NULL,
            created DATETIME(6) NOT NULL,
            note TEXT,
            version INT NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "events": """
        CREATE TABLE events (
            id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
            kind VARCHAR(32) NOT NULL,
            at DATETIME(6) NOT NULL,
            value DOUBLE,
            body TEXT NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
}

RUNS = {
    "a": "source -> NATS JetStream",
    "b": "source -> Redis Streams, appendfsync always",
    "c": "source -> JSON Lines file (fsync)",
    "d": "source -> Redis Streams, appendfsync everysec",
    "e": "NATS -> target (apply alone)",
    "f": "Redis (always) -> target (apply alone)",
    "g": "source -> NATS -> target, concurrently",
    "h": "source -> Redis (always) -> target, concurrently",
}
TAILS = {"a": "nats", "b": "redis", "c": "jsonl", "d": "redis-everysec"}
APPLIES = {"e": "nats", "f": "redis"}
PIPELINES = {"g": "nats", "h": "redis"}

# ---------------------------------------------------------------------------- workload

_WORDS = ["alpha", "Bücher", "crème", "delta", "Łódź", "gamma", "日本語", "omega", "zeta",
          "€uro", "kappa", "lambda", "Ωmega", "sigma", "theta"]
_STATUS = ["new", "paid", "packed", "shipped", "delivered", "returned"]
_KINDS = ["click", "view", "purchase", "refund", "login", "logout"]
_EPOCH = dt.datetime(2026, 1, 1)


@dataclass
class _State:
    """What the workload has created so far (to update and delete)."""

    customers: int = 0
    orders: int = 0
    events: int = 0
    live_events: deque[int] | None = None


def _text(rng: random.Random, lo: int, hi: int) -> str:
    words = []
    size = rng.randint(lo, hi)
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(_WORDS))
    return " ".join(words)


def _when(rng: random.Random, t: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(seconds=t, microseconds=rng.randrange(1_000_000))


Statement = tuple[str, tuple[Any, ...]]


def transaction(rng: random.Random, t: int, r: int, st: _State) -> list[Statement]:
    """The statements of transaction ``t``: ``r`` row changes over the three
    tables (40 % inserted orders, 20 % inserted events, 20 % updated orders,
    one customer inserted or updated, the rest deleted events)."""
    n_orders, n_events, n_upd = max(1, r * 4 // 10), max(1, r * 2 // 10), max(1, r * 2 // 10)
    n_del = r - n_orders - n_events - n_upd - 1
    assert st.live_events is not None
    out: list[Statement] = []
    if st.customers == 0 or t % 3 == 0:
        st.customers += 1
        c = st.customers
        out.append(("INSERT INTO customers VALUES (%s, %s, %s, %s, %s, 1)",
                    (c, _text(rng, 8, 40)[:64], f"user{c}@example.com",
                     Decimal(rng.randrange(10**8)) / 100, _when(rng, t))))
    else:
        out.append(("UPDATE customers SET balance = balance + %s, updated = %s, "
                    "version = version + 1 WHERE id = %s",
                    (Decimal(rng.randrange(-10**5, 10**5)) / 100, _when(rng, t),
                     rng.randint(1, st.customers))))
    rows: list[Any] = []
    for _ in range(n_orders):
        st.orders += 1
        rows += [st.orders, rng.randint(1, st.customers), rng.choice(_STATUS),
                 Decimal(rng.randrange(10**7)) / 100, rng.random() * 100, _when(rng, t),
                 None if rng.random() < 0.2 else _text(rng, 20, 200)]
    out.append(("INSERT INTO orders VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, 1)"]
                                                          * n_orders), tuple(rows)))
    ids = rng.sample(range(1, st.orders + 1), n_upd)
    out.append((f"UPDATE orders SET status = %s, amount = amount + 1.25, version = version + 1 "
                f"WHERE id IN ({', '.join(['%s'] * n_upd)})", (rng.choice(_STATUS), *ids)))
    rows = []
    for _ in range(n_events):
        st.events += 1
        st.live_events.append(st.events)
        rows += [st.events, rng.choice(_KINDS), _when(rng, t),
                 None if rng.random() < 0.1 else rng.gauss(0, 1e6), _text(rng, 50, 300)]
    out.append(("INSERT INTO events VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * n_events),
                tuple(rows)))
    if n_del > 0:
        gone = [st.live_events.popleft() for _ in range(n_del)]
        out.append((f"DELETE FROM events WHERE id IN ({', '.join(['%s'] * n_del)})",
                    tuple(gone)))
    return out


def create_tables(srv: Any) -> None:
    """A fresh database ``bench`` with the workload's tables."""
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE bench")
            cur.execute("USE bench")
            for ddl in TABLES.values():
                cur.execute(ddl)
    finally:
        conn.close()


def run_workload(srv: Any, transactions: int, rows_per_txn: int) -> tuple[str, int]:
    """Run the workload in a fresh binlog file; return the file's name and the
    number of row changes (affected rows, every statement changes each row it
    matches)."""
    rng = random.Random(SEED)
    st = _State(live_events=deque())
    changes = 0
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("USE bench")
            cur.execute("FLUSH BINARY LOGS")  # the streamed file holds the workload only
            first = current_file(cur)
            for t in range(transactions):
                conn.begin()
                for sql, args in transaction(rng, t, rows_per_txn, st):
                    changes += cur.execute(sql, args)
                conn.commit()
            cur.execute("FLUSH BINARY LOGS")  # so the file is complete (and stays put)
    finally:
        conn.close()
    return first, changes


def table_digests(srv: Any) -> dict[str, tuple[int, str]]:
    """Each bench table's (row count, sha256 of its rows in key order)."""
    out = {}
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            for name in TABLES:
                cur.execute(f"SELECT * FROM bench.{name} ORDER BY id")
                h = hashlib.sha256()
                n = 0
                for row in cur.fetchall():
                    h.update(repr(row).encode())
                    n += 1
                out[name] = (n, h.hexdigest()[:16])
    finally:
        conn.close()
    return out


def empty_tables(srv: Any) -> None:
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            for name in TABLES:
                cur.execute(f"TRUNCATE TABLE bench.{name}")
    finally:
        conn.close()


# ---------------------------------------------------------------------------- checkpoints


def base_checkpoint(srv: Any, path: Path) -> Any:
    """One consumer run on the empty tables (a snapshot of nothing, then the
    stream to the end of the binlog): the checkpoint every run starts from."""
    from binlogkit.cdc.checkpoint import FileCheckpointStore  # noqa: PLC0415
    from binlogkit.cdc.consumer import Consumer  # noqa: PLC0415
    from binlogkit.cdc.sinks import MemorySink  # noqa: PLC0415

    sink = MemorySink()
    cp = Consumer(srv.connect, sink, FileCheckpointStore(path), include=INCLUDE).run(follow=False)
    if cp is None or any(t.changes for t in sink.txns):
        raise SystemExit(f"the checkpoint run on the empty tables saw changes: {sink.txns}")
    return cp


def seed_redis(url: str, prefix: str, cp: Any) -> None:
    """Store ``cp`` under ``prefix`` as the Redis sink itself does after a
    snapshot (an empty transaction with the checkpoint)."""
    from binlogkit.cdc.model import Txn  # noqa: PLC0415
    from binlogkit.cdc.redis_sink import RedisStreamsSink  # noqa: PLC0415

    with RedisStreamsSink(url, prefix=prefix) as sink:
        txn = Txn(id=f"snapshot:{cp.position.file}:{cp.position.pos}", changes=[],
                  end=cp.position, snapshot=True)
        sink.write_with_checkpoint(txn, cp)


# ---------------------------------------------------------------------------- brokers


def nats_messages(url: str, stream: str) -> int:
    from binlogkit.cdc.nats_sink import ensure_stream  # noqa: PLC0415

    return int(ensure_stream(url, stream=stream, prefix=stream.lower(), create=False)
               .state.messages)


def redis_entries(url: str, prefix: str) -> int:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    try:
        return sum(int(client.xlen(k)) for k in client.scan_iter(match=f"{prefix}:src:*",
                                                                  _type="stream"))
    finally:
        client.close()


def drop_nats_stream(url: str, stream: str) -> None:
    import nats  # noqa: PLC0415

    async def run() -> None:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(run())


def drop_redis_prefix(url: str, prefix: str) -> None:
    import redis  # noqa: PLC0415

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:src:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def jsonl_changes(path: Path) -> int:
    with open(path, encoding="utf-8") as f:
        return sum("op" in json.loads(line) for line in f)


# ---------------------------------------------------------------------------- (a)-(d) tail


@dataclass(frozen=True)
class TailJob:
    """One consumer run: ``kind`` nats, redis or jsonl; ``url`` the broker's
    (or the output file); ``name`` the NATS stream or Redis key prefix;
    ``checkpoint`` the checkpoint file ("" for Redis: kept there)."""

    kind: str
    url: str
    name: str
    checkpoint: str
    batch: int

    def counted(self) -> int:
        """The row changes the broker (or file) holds."""
        if self.kind == "nats":
            return nats_messages(self.url, self.name)
        if self.kind == "redis":
            return redis_entries(self.url, self.name)
        return jsonl_changes(Path(self.url))

    def drop(self) -> None:
        """Remove what the run wrote (the stream, the keys, the file)."""
        if self.kind == "nats":
            drop_nats_stream(self.url, self.name)
        elif self.kind == "redis":
            drop_redis_prefix(self.url, self.name)
        else:
            Path(self.url).unlink()


def open_sink(job: TailJob) -> tuple[Any, Any]:
    """The sink of ``job`` and its checkpoint store (None for Redis)."""
    from binlogkit.cdc.checkpoint import FileCheckpointStore  # noqa: PLC0415

    if job.kind == "nats":
        from binlogkit.cdc.nats_sink import NatsJetStreamSink  # noqa: PLC0415

        sink: Any = NatsJetStreamSink(job.url, stream=job.name, prefix=job.name.lower())
    elif job.kind == "redis":
        from binlogkit.cdc.redis_sink import RedisStreamsSink  # noqa: PLC0415

        sink = RedisStreamsSink(job.url, prefix=job.name)
    else:
        from binlogkit.cdc.sinks import JsonLinesSink  # noqa: PLC0415

        sink = JsonLinesSink(job.url)
    return sink, (FileCheckpointStore(job.checkpoint) if job.checkpoint else None)


def run_tail(job: TailJob, connect: Callable[[], Any],
             ready: Callable[[], None] | None = None) -> tuple[float, int, int]:
    """Stream the source to the end into the job's sink: (seconds,
    transactions, changes) as the consumer counted them. ``ready`` is called
    once everything is built, just before the timed run."""
    from binlogkit.cdc.consumer import Consumer  # noqa: PLC0415

    sink, store = open_sink(job)
    try:
        consumer = Consumer(connect, sink, store, include=INCLUDE, batch=job.batch)
        if ready is not None:
            ready()
        t0 = time.perf_counter()
        consumer.run(follow=False)
        seconds = time.perf_counter() - t0
    finally:
        sink.close()
    return seconds, consumer.status.transactions, consumer.status.changes


def tail_job(kind: str, run: str, urls: dict[str, str], workdir: Path, base: Path,
             cp: Any, batch: int) -> TailJob:
    """A fresh destination for run ``run`` (stream, key prefix or file), with
    its copy of the base checkpoint."""
    broker = kind.removesuffix("-everysec")
    name = f"BENCH_{run.upper()}" if broker == "nats" else f"bench{run}"
    checkpoint = ""
    if broker == "redis":
        seed_redis(urls[kind], name, cp)
    else:
        checkpoint = str(workdir / f"{run}.checkpoint.json")
        shutil.copyfile(base, checkpoint)
    url = str(workdir / f"{run}.jsonl") if broker == "jsonl" else urls[kind]
    return TailJob(broker, url, name, checkpoint, batch)


def check_count(what: str, got: int, expected: int) -> None:
    if got != expected:
        raise SystemExit(f"{what}: {got} row changes, expected {expected}")


# ---------------------------------------------------------------------------- (e)-(f) apply


def reader_url(job: TailJob) -> str:
    """``binlogkit apply --from``'s URL for what ``job`` wrote."""
    host = job.url.split("://", 1)[1].split("/", 1)[0]
    return f"{job.kind}://{host}/{job.name}"


def run_apply(job: TailJob, group: str, target: Any, expected: int,
              started: Callable[[], None] | None = None) -> float:
    """Apply what ``job`` wrote (consumer group / durable ``group``) to the
    target until it has every change: seconds from ``Applier.run`` to the
    commit of the last change. ``started`` is called just before the timed run."""
    from binlogkit.cdc.broker_apply import Applier  # noqa: PLC0415
    from binlogkit.cdc.broker_readers import open_reader  # noqa: PLC0415

    done: list[float] = []

    def on_status(st: Any) -> None:
        if st.changes >= expected and not done:
            done.append(time.perf_counter())
            applier.stop()

    reader = open_reader(reader_url(job), group=group)
    applier = Applier(reader, target.connect, target="target", follow=False, idle=IDLE,
                      on_status=on_status, status_every=0.0)
    try:
        if started is not None:
            started()
        t0 = time.perf_counter()
        status = applier.run()
    finally:
        applier.close()
        reader.close()
    if not done:
        raise SystemExit(f"apply from {reader_url(job)} stopped after {status.changes} of "
                         f"{expected} changes ({status.transactions} transactions, "
                         f"{status.skipped} skipped)")
    return done[0] - t0


def check_target(source: dict[str, tuple[int, str]], target: Any, what: str) -> None:
    got = table_digests(target)
    if got != source:
        raise SystemExit(f"{what}: the target's tables differ from the source's: "
                         f"(rows, digest) {got} != {source}")


# ---------------------------------------------------------------------------- (g)-(h) pipeline


def _tail_process(job: TailJob, source_url: str, password: str, ready: Any, go: Any,
                  out: Any) -> None:
    """The child of a pipeline run: ``run_tail`` once ``go`` is set."""
    from binlogkit.lab.servers import Server  # noqa: PLC0415

    src = Server.attach(source_url)
    src.password = password

    def wait_go() -> None:
        ready.set()
        go.wait()

    try:
        out.put(run_tail(job, src.connect, wait_go))
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def run_pipeline(job: TailJob, group: str, source: Any, target: Any,
                 expected: int) -> tuple[float, float]:
    """Tail (a child process) and apply (this one) at once: (seconds until the
    target has every change, seconds of the tail alone)."""
    ctx = multiprocessing.get_context("spawn")
    ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_tail_process, args=(job, source.url, source.password, ready,
                                                    go, out), daemon=True)
    child.start()
    try:
        if not ready.wait(60):
            raise SystemExit(f"the tail process of {job.name} did not start: "
                             f"{out.get_nowait() if not out.empty() else 'no message'}")
        seconds = run_apply(job, group, target, expected, started=go.set)
        result = out.get(timeout=120)
        child.join(30)
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    if isinstance(result, str):
        raise SystemExit(f"the tail process of {job.name} failed: {result}")
    return seconds, result[0]


# ---------------------------------------------------------------------------- setup


@dataclass
class Lab:
    """The servers of one benchmark run."""

    source: Any
    target: Any = None
    nats: Any = None
    redis: Any = None
    redis_everysec: Any = None

    def urls(self) -> dict[str, str]:
        out = {}
        if self.nats is not None:
            out["nats"] = self.nats.url
        if self.redis is not None:
            out["redis"] = self.redis.url
        if self.redis_everysec is not None:
            out["redis-everysec"] = self.redis_everysec.url
        return out

    def stop(self) -> None:
        for srv in (self.target, self.nats, self.redis, self.redis_everysec, self.source):
            if srv is not None:
                srv.stop(remove_data=True)


def target_flavor(choice: str | None) -> str:
    from binlogkit.lab.servers import unavailable_reason  # noqa: PLC0415

    if choice:
        return choice
    return "mysql" if unavailable_reason("mysql") is None else "mariadb"


def start_lab(args: argparse.Namespace, chosen: list[str]) -> Lab:
    from binlogkit.lab.brokers import start_nats, start_redis  # noqa: PLC0415
    from binlogkit.lab.servers import start_server  # noqa: PLC0415

    print(f"starting a private {args.flavor} source ...", flush=True)
    lab = Lab(start_server(args.flavor, options=OPTIONS[args.flavor]))
    try:
        if any(k in chosen for k in "efgh"):
            flavor = target_flavor(args.target_flavor)
            print(f"starting a private {flavor} target ...", flush=True)
            options = target_options(flavor, args.target_durable)
            lab.target = start_server(flavor, options=options)  # type: ignore[arg-type]
        if any(k in chosen for k in "aeg"):
            lab.nats = start_nats()
        if any(k in chosen for k in "bfh"):
            lab.redis = start_redis(options={"appendfsync": "always"})
        if "d" in chosen:
            lab.redis_everysec = start_redis()
    except BaseException:
        lab.stop()
        raise
    return lab


def target_options(flavor: str, durable: bool) -> dict[str, str | int | None]:
    opts = dict(OPTIONS[flavor])
    if durable:
        opts.update(innodb_flush_log_at_trx_commit=1, sync_binlog=1)
    return opts


def config_lines(lab: Lab, args: argparse.Namespace, first: str, changes: int) -> Iterator[str]:
    src = lab.source
    yield (f"source: {src.flavor} {src.version}, binlog {first}, {args.transactions} "
           f"transactions, {changes} row changes ({args.rows_per_txn} per transaction, tables "
           f"{', '.join(TABLES)}); innodb_flush_log_at_trx_commit=2, sync_binlog=0")
    if lab.target is not None:
        sync = "1, sync_binlog=1" if args.target_durable else "2, sync_binlog=0"
        yield (f"target: {lab.target.flavor} {lab.target.version}, "
               f"innodb_flush_log_at_trx_commit={sync}")
    if lab.nats is not None:
        yield (f"nats-server {lab.nats.version} (one node, JetStream file storage), "
               f"nats-py {importlib.metadata.version('nats-py')}")
    if lab.redis is not None or lab.redis_everysec is not None:
        r = lab.redis or lab.redis_everysec
        yield (f"redis-server {r.version} (appendonly yes, appendfsync always for b, f, h; "
               f"everysec for d), redis-py {importlib.metadata.version('redis')}")
    yield (f"Consumer batch {args.batch} (NATS, JSON Lines; the Redis sink commits every "
           f"transaction with its checkpoint); Applier defaults (reader batch 200, "
           f"insert_batch 200)")


# ---------------------------------------------------------------------------- rounds


@dataclass
class Bench:
    """What the rounds share: the lab, the base checkpoint, the expectations."""

    lab: Lab
    workdir: Path
    base: Path
    cp: Any
    batch: int
    changes: int
    digests: dict[str, tuple[int, str]]
    filled: dict[str, TailJob]  # broker -> the round-1 tail job apply reads from

    def tail(self, k: str, rnd: int) -> float:
        job = tail_job(TAILS[k], f"{k}{rnd}", self.lab.urls(), self.workdir, self.base,
                       self.cp, self.batch)
        seconds, _, changes = run_tail(job, self.lab.source.connect)
        check_count(f"({k}) the consumer", changes, self.changes)
        check_count(f"({k}) {job.kind} {job.name}", job.counted(), self.changes)
        if self.filled.setdefault(TAILS[k], job) is not job:
            job.drop()  # only round 1's is read again (by apply)
        return seconds

    def source_for(self, broker: str) -> TailJob:
        """What apply reads from ``broker``: round 1's tail, or an untimed one."""
        if broker not in self.filled:
            k = next(k for k, v in TAILS.items() if v == broker)
            print(f"filling {broker} for apply (untimed) ...", flush=True)
            self.tail(k, 0)
        return self.filled[broker]

    def apply(self, k: str, rnd: int) -> float:
        job = self.source_for(APPLIES[k])
        empty_tables(self.lab.target)
        seconds = run_apply(job, f"apply-{k}{rnd}", self.lab.target, self.changes)
        check_target(self.digests, self.lab.target, f"({k})")
        return seconds

    def pipeline(self, k: str, rnd: int) -> float:
        job = tail_job(PIPELINES[k], f"{k}{rnd}", self.lab.urls(), self.workdir, self.base,
                       self.cp, self.batch)
        if job.kind == "nats":  # what the first tail run would do; apply needs the stream
            from binlogkit.cdc.nats_sink import ensure_stream  # noqa: PLC0415

            ensure_stream(job.url, stream=job.name, prefix=job.name.lower())
        empty_tables(self.lab.target)
        seconds, tail_seconds = run_pipeline(job, f"apply-{k}{rnd}", self.lab.source,
                                             self.lab.target, self.changes)
        check_count(f"({k}) {job.kind} {job.name}", job.counted(), self.changes)
        check_target(self.digests, self.lab.target, f"({k})")
        job.drop()
        print(f"    ({k}) tail alone {tail_seconds:.2f} s of {seconds:.2f} s", flush=True)
        return seconds

    def run(self, k: str, rnd: int) -> float:
        if k in TAILS:
            return self.tail(k, rnd)
        if k in APPLIES:
            return self.apply(k, rnd)
        return self.pipeline(k, rnd)


def print_table(chosen: list[str], times: dict[str, list[float]], transactions: int,
                changes: int) -> None:
    print()
    print(f"{'':4}{'what':50}{'best s':>8}{'median s':>10}{'txns/s':>10}{'changes/s':>12}")
    for k in chosen:
        best = min(times[k])
        print(f"({k}) {RUNS[k]:50}{best:8.2f}{statistics.median(times[k]):10.2f}"
              f"{transactions / best:10,.0f}{changes / best:12,.0f}")


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flavor", choices=("mariadb", "mysql"), default="mariadb",
                    help="source server (default mariadb)")
    ap.add_argument("--target-flavor", choices=("mariadb", "mysql"), default=None,
                    help="target server (default mysql if it can be started here, "
                         "else mariadb)")
    ap.add_argument("--target-durable", action="store_true",
                    help="target with innodb_flush_log_at_trx_commit=1, sync_binlog=1 "
                         "(default 2 and 0, like the source)")
    ap.add_argument("--transactions", type=int, default=5000,
                    help="transactions of the workload (default 5000)")
    ap.add_argument("--rows-per-txn", type=int, default=10,
                    help="row changes per transaction, at least 5 (default 10)")
    ap.add_argument("--batch", type=int, default=100,
                    help="Consumer batch: transactions per acknowledgement (default 100, "
                         "as binlogkit tail)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds, best of (default 3)")
    ap.add_argument("--only", default="".join(RUNS),
                    help=f"which of {''.join(RUNS)} to run (default all)")
    args = ap.parse_args(argv)
    if args.rows_per_txn < 5:
        ap.error("--rows-per-txn must be at least 5")
    chosen = [k for k in RUNS if k in args.only]

    lab = start_lab(args, chosen)
    workdir = Path(tempfile.mkdtemp(prefix="binlogkit-brokers-"))
    try:
        create_tables(lab.source)
        if lab.target is not None:
            create_tables(lab.target)
        base = workdir / "base.checkpoint.json"
        cp = base_checkpoint(lab.source, base)
        print(f"loading {args.transactions} transactions into {lab.source.flavor} "
              f"{lab.source.version} on port {lab.source.port} ...", flush=True)
        t0 = time.perf_counter()
        first, changes = run_workload(lab.source, args.transactions, args.rows_per_txn)
        print(f"loaded {changes} row changes in {time.perf_counter() - t0:.1f} s", flush=True)
        for line in [*machine()[:3], *config_lines(lab, args, first, changes)]:
            print(line)
        bench = Bench(lab, workdir, base, cp, args.batch, changes, table_digests(lab.source),
                      {})
        times: dict[str, list[float]] = {k: [] for k in chosen}
        for rnd in range(1, args.repeat + 1):  # interleaved: load on the machine hits all alike
            for k in chosen:
                times[k].append(bench.run(k, rnd))
                print(f"round {rnd}/{args.repeat}: ({k}) {times[k][-1]:.2f} s; load average "
                      f"{os.getloadavg()[0]:.2f}", flush=True)
    finally:
        lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"every run: {changes} row changes in the broker (or file); every apply: the "
          f"target's {len(TABLES)} tables equal the source's (rows and content)")
    if args.repeat >= 1 and chosen:
        print_table(chosen, times, args.transactions, changes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
