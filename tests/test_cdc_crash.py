"""`binlogkit tail` survives crashes: nothing lost, duplicates only around
kills and marked, column names right under MINIMAL row metadata, and a
purged checkpoint answered by a snapshot.

One scenario per flavor on a private server (MySQL first):

A. A seeded random workload (single-row and multi-row statements, updates
   of the primary key, multi-table transactions, ALTER TABLE ADD/DROP
   COLUMN and a CREATE TABLE in the middle) runs while ``binlogkit tail
   --batch 5`` (a subprocess, through a TCP proxy) is SIGKILLed and
   restarted 6 times: at seeded random moments, and inside a batch (SIGSTOP
   while the checkpoint names a transaction in flight, then SIGKILL; the
   output is then cut at a random byte after the acknowledged part, as a
   crash in the middle of the sink's writes leaves it: a torn line, a
   transaction without its commit). The proxy cuts every connection twice
   (the stream reconnects by itself) and the server is killed -9 and
   restarted once, staying down 1.5 s (the workload pauses at a transaction
   boundary for it; MariaDB runs with sync_binlog=1 so a kill -9 loses no
   acknowledged transaction). At the end ``tail --no-follow`` catches up and
   exits. ``BINLOGKIT_CRASH_SEED`` picks another seed.
B. A follow-mode consumer is stopped with SIGTERM (clean: no transaction in
   flight), more workload runs, the binlogs are flushed and purged past the
   checkpoint: ``--snapshot never`` fails with one line and exit 2.
C. The consumer restarts (``when-needed``): it takes a snapshot (``r``
   records) while DML goes on, is SIGKILLed once more, restarted, followed
   until its checkpoint covers the server's GTIDs, and stopped with SIGTERM.

Checked on the output file, whose lines are grouped by transaction
(begin..commit; a transaction cut by a kill has no commit and is dropped):

- applying the changes in order to an in-memory model (by primary key; a
  snapshot starts the model over) gives exactly the server's tables, read
  with binlogkit's snapshot reader and written with the JSON format;
- every transaction with row changes in the server's binlog (after the
  snapshot the stream continues from, for C) was delivered;
- a transaction delivered again has every later delivery marked
  ``redelivered``; in each consumer run the redelivered transactions are a
  prefix of at most one batch, and only after a SIGKILL;
- every image's keys are exactly the table's columns at that transaction
  (the schema history under MINIMAL / NO_LOG metadata: no ``@N`` keys).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_stream import kill_and_restart

from binlogkit.cdc.formats import change_json
from binlogkit.cdc.records import txns_from_files
from binlogkit.cdc.snapshot import take_snapshot
from binlogkit.lab import Server, start_server, unavailable_reason

pytestmark = pytest.mark.server

BATCH = 5
DB = "crash"
SEED = int(os.environ.get("BINLOGKIT_CRASH_SEED", "20240611"))
KEYS = {"a": ("id",), "b": ("id",), "c": ("x", "y"), "d": ("id",)}
INITIAL = {"a": ("id", "n", "s", "d", "t", "bin"), "b": ("id", "k", "note", "day"),
           "c": ("x", "y", "v")}
# per flavor: (phase A transactions, phase B, phase C)
SIZES = {"mysql": (3000, 300, 600), "mariadb": (3000, 300, 600)}


# ----------------------------------------------------------------- servers


class Proxy:
    """A TCP proxy to the server; :meth:`cut` closes every connection."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list[socket.socket] = []
        self.lock = threading.Lock()
        self.closed = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                up.settimeout(None)
            except OSError:
                client.close()  # the server is down: the client sees a lost connection
                continue
            with self.lock:
                self.socks += [client, up]
            for src, dst in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self.lock:
                for s in (src, dst):
                    if s in self.socks:
                        self.socks.remove(s)
                        s.close()

    def cut(self) -> int:
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self.cuts += 1
        return len(socks) // 2

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        self.cut()


# ----------------------------------------------------------------- workload


class Workload:
    """A seeded random workload on one connection; ``pause`` is held for
    each transaction (hold it to get a transaction boundary). ``ddl`` lists
    (GTID sequence number of the DDL, table, its columns after it)."""

    def __init__(self, srv: Server, flavor: str, seed: int) -> None:
        self.srv = srv
        self.flavor = flavor
        self.rng = random.Random(seed)
        self.conn = srv.connect()
        self.pause = threading.Lock()
        self.columns: dict[str, tuple[str, ...]] = dict(INITIAL)
        self.ids: dict[str, set[tuple[int, ...]]] = {t: set() for t in INITIAL}
        self.ddl: list[tuple[int, str, tuple[str, ...]]] = []
        self.next_id = 1
        self.extra = 0
        self.ddls = 0
        self.done = 0
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def q(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def seq(self) -> int:
        var = "gtid_executed" if self.flavor == "mysql" else "gtid_binlog_pos"
        return gtid_seq(str(self.q(f"SELECT @@GLOBAL.{var}")[0][0]))

    def setup(self) -> None:
        self.q(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
        self.q(f"CREATE TABLE {DB}.a (id INT PRIMARY KEY, n INT NOT NULL, s VARCHAR(40),"
               " d DECIMAL(10,2), t DATETIME(3), bin VARBINARY(16))")
        self.q(f"CREATE TABLE {DB}.b (id BIGINT PRIMARY KEY, k DOUBLE, note TEXT, day DATE)")
        self.q(f"CREATE TABLE {DB}.c (x INT, y INT, v INT, PRIMARY KEY (x, y))")
        for _ in range(20):
            self.insert("a")
            self.insert("b")
            self.insert("c")

    # values

    def value(self, table: str, col: str) -> Any:
        r = self.rng
        if r.random() < 0.08 and col not in ("n",):
            return None
        if col == "n" or col == "v" or col.startswith("e"):
            return r.randint(-10**6, 10**6)
        if col == "s":
            return r.choice(["", "x", "héllo", "a'b", "日本", "z" * 30]) + str(r.randint(0, 99))
        if col == "d":
            return Decimal(r.randint(-10**9, 10**9)) / 100
        if col == "t":
            return dt.datetime(2020, 1, 1) + dt.timedelta(milliseconds=r.randint(0, 10**11))
        if col == "bin":
            return bytes(r.randrange(256) for _ in range(r.randint(0, 16)))
        if col == "k":
            return r.choice([0.5, -1.25, 3.0, 1e100, 12345.0625])
        if col == "note":
            return "note " * r.randint(0, 30)
        if col == "day":
            return dt.date(2000, 1, 1) + dt.timedelta(days=r.randint(0, 20000))
        if col.startswith("f"):
            return f"f{r.randint(0, 10**5)}"
        raise AssertionError(col)

    def row(self, table: str, key: tuple[int, ...]) -> dict[str, Any]:
        out = dict(zip(KEYS[table], key, strict=True))
        for c in self.columns[table]:
            if c not in out:
                out[c] = self.value(table, c)
        return out

    def new_key(self, table: str) -> tuple[int, ...]:
        self.next_id += 1
        if table == "c":
            return (self.next_id // 7, self.next_id % 7)
        return (self.next_id,)

    def where(self, table: str, key: tuple[int, ...]) -> tuple[str, list[Any]]:
        return " AND ".join(f"`{k}` = %s" for k in KEYS[table]), list(key)

    def pick(self, table: str) -> tuple[int, ...] | None:
        ids = self.ids[table]
        return self.rng.choice(sorted(ids)) if ids else None

    # statements

    def insert(self, table: str) -> None:
        key = self.new_key(table)
        row = self.row(table, key)
        cols = ", ".join(f"`{c}`" for c in row)
        self.q(f"INSERT INTO {DB}.{table} ({cols}) VALUES ({', '.join(['%s'] * len(row))})",
               list(row.values()))
        self.ids[table].add(key)

    def update(self, table: str) -> None:
        key = self.pick(table)
        if key is None:
            self.insert(table)
            return
        cols = [c for c in self.columns[table] if c not in KEYS[table]]
        chosen = self.rng.sample(cols, self.rng.randint(1, len(cols)))
        where, args = self.where(table, key)
        sets = ", ".join(f"`{c}` = %s" for c in chosen)
        self.q(f"UPDATE {DB}.{table} SET {sets} WHERE {where}",
               [self.value(table, c) for c in chosen] + args)

    def move(self, table: str) -> None:
        """Change a primary key."""
        key = self.pick(table)
        if key is None or table == "c":
            self.update(table)
            return
        new = self.new_key(table)
        self.q(f"UPDATE {DB}.{table} SET id = %s WHERE id = %s", [new[0], key[0]])
        self.ids[table].discard(key)
        self.ids[table].add(new)

    def delete(self, table: str) -> None:
        key = self.pick(table)
        if key is None:
            self.insert(table)
            return
        where, args = self.where(table, key)
        self.q(f"DELETE FROM {DB}.{table} WHERE {where}", args)
        self.ids[table].discard(key)

    def multi_row(self) -> None:
        lo = self.rng.randint(0, max(1, self.next_id))
        self.q(f"UPDATE {DB}.a SET n = n + 1 WHERE id BETWEEN %s AND %s", [lo, lo + 8])

    def one(self) -> None:
        table = self.rng.choice(sorted(self.ids))
        op = self.rng.choices([self.insert, self.update, self.delete, self.move],
                              [4, 3, 2, 1])[0]
        op(table)

    def transaction(self) -> None:
        kind = self.rng.random()
        if kind < 0.7:
            self.one()
        elif kind < 0.75:
            self.multi_row()
        else:
            self.q("BEGIN")
            for _ in range(self.rng.randint(2, 6)):
                self.one()
            self.q("COMMIT")

    def alter(self, table: str, sql: str, columns: tuple[str, ...]) -> None:
        self.q(sql)
        self.columns[table] = columns
        self.ids.setdefault(table, set())
        self.ddl.append((self.seq(), table, columns))

    def schema_change(self, n: int) -> None:
        """The n-th DDL of the workload (9 of them)."""
        a, b = self.columns["a"], self.columns["b"]
        self.extra += 1
        e, f = f"e{self.extra}", f"f{self.extra}"
        first_e = next((c for c in a if c.startswith("e")), "")
        first_f = next((c for c in b if c.startswith("f")), "")
        steps = [
            lambda: self.alter("a", f"ALTER TABLE {DB}.a ADD COLUMN {e} INT", (*a, e)),
            lambda: self.alter("b", f"ALTER TABLE {DB}.b ADD COLUMN {f} VARCHAR(12) AFTER k",
                               (*b[:2], f, *b[2:])),
            lambda: self.alter("a", f"ALTER TABLE {DB}.a DROP COLUMN s",
                               tuple(c for c in a if c != "s")),
            lambda: self.alter("d", f"CREATE TABLE {DB}.d (id INT PRIMARY KEY, v INT,"
                               " note TEXT)", ("id", "v", "note")),
            lambda: self.alter("b", f"ALTER TABLE {DB}.b DROP COLUMN note, "
                               f"ADD COLUMN {e} INT FIRST", (e, *(c for c in b if c != "note"))),
            lambda: self.alter("a", f"ALTER TABLE {DB}.a ADD COLUMN {f} VARCHAR(12), "
                               f"ADD COLUMN {e} INT", (*a, f, e)),
            lambda: self.alter("a", f"ALTER TABLE {DB}.a DROP COLUMN {first_e}",
                               tuple(c for c in a if c != first_e)),
            lambda: self.alter("d", f"ALTER TABLE {DB}.d ADD COLUMN {e} INT AFTER id",
                               ("id", e, *self.columns["d"][1:])),
            lambda: self.alter("b", f"ALTER TABLE {DB}.b DROP COLUMN {first_f}",
                               tuple(c for c in b if c != first_f)),
        ]
        steps[n]()

    def run(self, count: int, ddl_every: int = 0, pace: float = 0.0) -> None:
        try:
            for i in range(1, count + 1):
                if pace:
                    time.sleep(pace)
                with self.pause:
                    if ddl_every and i % ddl_every == 0:
                        self.schema_change(self.ddls)
                        self.ddls += 1
                    else:
                        self.transaction()
                    self.done += 1
        except BaseException as exc:
            self.error = exc
            raise

    def start(self, count: int, ddl_every: int = 0, pace: float = 0.0) -> None:
        self.thread = threading.Thread(target=self.run, args=(count, ddl_every, pace),
                                       daemon=True)
        self.thread.start()

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def join(self, timeout: float = 300.0) -> None:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the workload did not finish"
        assert self.error is None, f"the workload failed: {self.error!r}"

    def columns_at(self, table: str, seq: int) -> tuple[str, ...] | None:
        """The table's columns for a transaction with GTID sequence ``seq``."""
        cols = INITIAL.get(table)
        for s, t, c in self.ddl:
            if t == table and s < seq:
                cols = c
        return cols


SOURCE = [""]  # the server's GTID source: MySQL "uuid:", MariaDB "domain-"


def gtid_seq(text: str) -> int:
    """The largest sequence number of the server's own GTIDs in a GTID set or
    position (or of one GTID)."""
    parts = [p for p in "".join(text.split()).split(",") if p.startswith(SOURCE[0])]
    return int(re.split(r"[:\-]", parts[-1])[-1]) if parts else 0


# ----------------------------------------------------------------- consumer


@dataclass
class Run:
    start: int  # byte offset of the run's first line in the output
    proc: subprocess.Popen[bytes]
    log: Path
    end: str = ""  # kill | term | exit


@dataclass
class Harness:
    url: str
    tmp: Path
    cp: Path
    out: Path
    runs: list[Run] = field(default_factory=list)

    def boundary(self) -> int:
        """Where the next run's lines start: after the last complete line
        (the sink drops a torn one when it opens the file)."""
        if not self.out.exists():
            return 0
        data = self.out.read_bytes()
        return data.rfind(b"\n") + 1

    def start(self, *extra: str) -> Run:
        log = self.tmp / f"run{len(self.runs)}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "binlogkit", "tail", self.url, "--checkpoint",
                 str(self.cp), "-o", str(self.out), "--batch", str(BATCH), "--heartbeat", "1",
                 "--no-defaults", *extra],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        run = Run(self.boundary(), proc, log)
        self.runs.append(run)
        return run

    def size(self) -> int:
        return self.out.stat().st_size if self.out.exists() else 0

    def wait_progress(self, run: Run, lines: int = 20, timeout: float = 60.0) -> None:
        """Until the run wrote ``lines`` more lines (or its checkpoint moved)."""
        base = max(run.start, self.size())
        deadline = time.monotonic() + timeout
        while self.size() < base + lines * 60:
            assert run.proc.poll() is None, f"the consumer exited: {run.log.read_text()}"
            assert time.monotonic() < deadline, f"no progress: {run.log.read_text()}"
            time.sleep(0.02)

    def in_flight(self) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return self.checkpoint()["in_flight"] is not None
        return False

    def kill_in_batch(self, run: Run, timeout: float = 30.0) -> None:
        """SIGKILL the consumer inside a batch: once the checkpoint names a
        transaction in flight, SIGSTOP it; if the checkpoint still does, kill
        it, else let it go on and try again."""
        deadline = time.monotonic() + timeout
        pid = run.proc.pid
        while time.monotonic() < deadline:
            assert run.proc.poll() is None, f"the consumer exited: {run.log.read_text()}"
            if not self.in_flight():
                time.sleep(0.0005)
                continue
            os.kill(pid, signal.SIGSTOP)
            while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
                time.sleep(0.0005)
            if self.in_flight():
                break
            os.kill(pid, signal.SIGCONT)
        self.kill(run)

    def tear(self, rng: random.Random) -> int:
        """After a kill inside a batch: cut the output at a random byte of
        what the checkpoint does not cover (what a crash in the middle of the
        sink's writes leaves: a torn line, a transaction without its commit).
        Returns the bytes removed."""
        cp = self.checkpoint()
        if cp["in_flight"] is None:
            return 0
        data = self.out.read_bytes()
        acked, offset = None, 0
        for raw in data.splitlines(keepends=True):
            offset += len(raw)
            if raw.startswith(b'{"type":"commit"') and json.loads(raw)["end"] == cp["position"]:
                acked = offset  # the end of the last acknowledged transaction
        if acked is None or acked + 1 >= len(data):
            return 0
        cut = rng.randrange(acked + 1, len(data))
        with open(self.out, "rb+") as f:
            f.truncate(cut)
        return len(data) - cut

    def kill(self, run: Run) -> None:
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait(30)
        run.end = "kill"

    def term(self, run: Run, timeout: float = 30.0) -> None:
        run.proc.send_signal(signal.SIGTERM)
        code = run.proc.wait(timeout)
        run.end = "term"
        assert code == 0, f"exit {code} after SIGTERM: {run.log.read_text()}"

    def finish(self, run: Run, timeout: float = 180.0) -> None:
        code = run.proc.wait(timeout)
        run.end = "exit"
        assert code == 0, f"exit {code}: {run.log.read_text()}"

    def checkpoint(self) -> dict[str, Any]:
        return dict(json.loads(self.cp.read_text()))

    def wait_covered(self, run: Run, srv: Server, timeout: float = 120.0) -> None:
        var = "gtid_executed" if srv.flavor == "mysql" else "gtid_binlog_pos"
        want = gtid_seq(str(srv.execute(f"SELECT @@GLOBAL.{var}")[0][0]))
        deadline = time.monotonic() + timeout
        while True:
            assert run.proc.poll() is None, f"the consumer exited: {run.log.read_text()}"
            if self.cp.exists() and gtid_seq(self.checkpoint()["position"]["gtids"]) >= want:
                return
            assert time.monotonic() < deadline, "the checkpoint did not catch up"
            time.sleep(0.05)

    def stop_all(self) -> None:
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait(30)


# ----------------------------------------------------------------- output


@dataclass
class Delivery:
    id: str
    run: int
    begin: dict[str, Any]
    changes: list[dict[str, Any]] = field(default_factory=list)
    commit: dict[str, Any] | None = None

    @property
    def snapshot(self) -> bool:
        return bool(self.begin.get("snapshot"))

    @property
    def marked(self) -> list[bool]:
        """The redelivered flags of its lines (changes, then the commit)."""
        flags = [bool(c.get("redelivered")) for c in self.changes]
        if self.commit is not None:
            flags.append(bool(self.commit.get("redelivered")))
        return flags


def parse_output(path: Path, runs: list[Run]) -> list[Delivery]:
    starts = [r.start for r in runs]
    out: list[Delivery] = []
    cur: Delivery | None = None
    offset = 0
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a torn last line"
    for raw in data.splitlines(keepends=True):
        run = max(i for i, s in enumerate(starts) if s <= offset)
        offset += len(raw)
        line = json.loads(raw)
        kind = line.get("type")
        if kind == "begin":
            cur = Delivery(line["id"], run, line)
            out.append(cur)  # without a commit when a kill cut it
        elif kind == "commit":
            assert cur is not None and cur.id == line["id"] and cur.commit is None, line
            assert len(cur.changes) == line["events"], line
            cur.commit = line
            cur = None
        else:
            assert cur is not None and cur.commit is None and "op" in line, line
            assert cur.run == run, "a transaction continued across runs"
            cur.changes.append(line)
    return out


def pk(table: str, image: dict[str, Any]) -> str:
    return json.dumps([image[k] for k in KEYS[table]])


def apply(deliveries: list[Delivery]) -> dict[str, dict[str, dict[str, Any]]]:
    """The tables the complete deliveries give, applied in order; the first
    snapshot record of a run starts over (a resync replaces everything).
    A redelivered transaction replays changes the model may have seen (the
    stream is replayed from the checkpoint in order, so the model converges):
    it is applied as upserts and deletes of what is there; the others must
    find the rows they change, and not find the rows they insert."""
    model: dict[str, dict[str, dict[str, Any]]] = {}
    last_run = -1
    for d in deliveries:
        if d.commit is None:
            continue
        if d.snapshot and d.run != last_run:
            model = {}
            last_run = d.run
        strict = not any(d.marked)
        for ch in d.changes:
            table = ch["source"]["table"]
            rows = model.setdefault(table, {})
            op, before, after = ch["op"], ch["before"], ch["after"]
            if op in ("u", "d"):
                key = pk(table, before)
                assert key in rows or not strict, f"{op} of a row the model lacks: {ch}"
                rows.pop(key, None)
            if op in ("c", "u", "r"):
                assert not (op == "c" and strict and pk(table, after) in rows), \
                    f"insert of a present row: {ch}"
                rows[pk(table, after)] = after
    return model


def server_tables(srv: Server) -> tuple[dict[str, dict[str, dict[str, Any]]],
                                        dict[str, tuple[str, ...]]]:
    """The server's tables as the JSON format writes them, and their columns."""
    conn = srv.connect()
    try:
        _, txns = take_snapshot(conn, srv.flavor, include=lambda db, _t: db == DB)
        tables: dict[str, dict[str, dict[str, Any]]] = {}
        for txn in txns:
            for ch in txn.changes:
                after = change_json(ch)["after"]
                tables.setdefault(ch.source.table, {})[pk(ch.source.table, after)] = after
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
                        " WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (DB,))
            columns: dict[str, tuple[str, ...]] = {}
            for t, c in cur.fetchall():
                columns[t] = (*columns.get(t, ()), c)
    finally:
        conn.close()
    return tables, columns


def binlog_txns(srv: Server, flavor: str) -> dict[int, str]:
    """GTID sequence number -> GTID of every transaction with row changes of
    the test's database in the server's binlog files."""
    out = {}
    for txn in txns_from_files(srv.binlog_files(), flavor=flavor):
        if txn.gtid and any(c.source.schema == DB for c in txn.changes):
            out[gtid_seq(txn.gtid)] = txn.gtid
    return out


def check_exact(deliveries: list[Delivery], srv: Server) -> None:
    model = apply(deliveries)
    server, columns = server_tables(srv)
    for table, cols in columns.items():
        got = {k: {c: row.get(c) for c in cols} for k, row in model.get(table, {}).items()}
        want = server.get(table, {})
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        assert not missing and not extra, f"{table}: rows missing {missing}, extra {extra}"
        wrong = [(k, got[k], want[k]) for k in want if got[k] != want[k]][:3]
        assert not wrong, f"{table}: rows differ (model, server): {wrong}"
    assert set(model) <= set(columns), f"tables the server does not have: {set(model)}"


def check_redelivery(deliveries: list[Delivery], runs: list[Run]) -> dict[str, int]:
    """Later deliveries of a transaction are marked; marked ones open a run
    that follows a kill, at most one batch of them. Returns figures."""
    seen: dict[str, int] = {}
    duplicates = marked = torn = 0
    per_run: dict[int, list[Delivery]] = {}
    for d in deliveries:
        if d.snapshot:
            continue
        per_run.setdefault(d.run, []).append(d)
        flags = d.marked
        assert len(set(flags)) <= 1, f"{d.id}: partly marked {flags}"
        is_marked = bool(flags and flags[0])
        marked += is_marked
        torn += d.commit is None
        if d.id in seen:
            duplicates += 1
            assert is_marked, f"{d.id} delivered again (run {d.run}) without 'redelivered'"
        seen[d.id] = seen.get(d.id, 0) + 1
    for run, ds in per_run.items():
        flags = [bool(d.marked and d.marked[0]) for d in ds]
        n = sum(flags)
        assert flags[:n] == [True] * n, f"run {run}: redelivered transactions after others"
        assert n <= BATCH, f"run {run}: {n} redelivered transactions (batch {BATCH})"
        if n:
            assert run > 0 and runs[run - 1].end == "kill", \
                f"run {run} redelivers after a clean stop ({runs[run - 1].end})"
    for i, d in enumerate(deliveries):  # a cut transaction is the last of its run
        if d.commit is None:
            assert i + 1 == len(deliveries) or deliveries[i + 1].run != d.run, d.id
            assert runs[d.run].end == "kill", f"{d.id} cut without a kill"
    return {"deliveries": len(deliveries), "duplicates": duplicates, "marked": marked,
            "torn": torn, "runs redelivering": sum(any(d.marked and d.marked[0] for d in ds)
                                                    for ds in per_run.values())}


def check_columns(deliveries: list[Delivery], wl: Workload) -> None:
    """Every image's keys are the table's columns at its transaction."""
    for d in deliveries:
        if d.commit is None:
            continue
        seq = gtid_seq(d.commit["end"]["gtids"]) + 1 if d.snapshot else gtid_seq(d.id)
        for ch in d.changes:
            table = ch["source"]["table"]
            want = wl.columns_at(table, seq)
            for image in (ch["before"], ch["after"]):
                if image is not None:
                    assert tuple(image) == want, \
                        f"{d.id} {table} {ch['op']}: keys {tuple(image)}, columns {want}"


def snapshot_seq(deliveries: list[Delivery], runs: range) -> int:
    """The GTID sequence number of the last complete snapshot of these runs
    (the stream continued from it)."""
    snaps = [d for d in deliveries if d.snapshot and d.run in runs and d.commit is not None]
    assert snaps, f"no snapshot in runs {runs}"
    assert all(c["op"] == "r" for d in snaps for c in d.changes)
    return gtid_seq(snaps[-1].commit["end"]["gtids"])  # type: ignore[index]


def check_delivered(deliveries: list[Delivery], required: dict[int, str]) -> None:
    got = {d.id for d in deliveries if d.commit is not None and not d.snapshot}
    lost = [g for _, g in sorted(required.items()) if g not in got]
    assert not lost, f"{len(lost)} transactions never delivered, first {lost[:5]}"


# ----------------------------------------------------------------- the test


@pytest.fixture
def private_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started: list[Server] = []

    def get(flavor: str) -> Server:
        reason = unavailable_reason(flavor)  # type: ignore[arg-type]
        if reason:
            pytest.skip(reason)
        # MariaDB syncs its binlog lazily by default: a kill -9 could lose
        # transactions the consumer already delivered
        opts = {"sync-binlog": "1"} if flavor == "mariadb" else {}
        srv = start_server(flavor, options=opts,  # type: ignore[arg-type]
                           basedir=tmp_path_factory.mktemp(flavor))
        started.append(srv)
        return srv

    yield get
    for srv in started:
        with contextlib.suppress(Exception):
            srv.stop(remove_data=True)


def stop_cleanly(h: Harness, run: Run, wl: Workload, srv: Server) -> None:
    """SIGTERM ``run`` once it has caught up. A few more transactions first:
    once its checkpoint covers them it is streaming (a SIGTERM before the CLI
    set its handler would just end it, with nothing in flight)."""
    wl.run(10)
    h.wait_covered(run, srv)
    h.term(run)


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_crash_recovery(flavor: str, private_server: Any, tmp_path: Path) -> None:
    srv: Server = private_server(flavor)
    SOURCE[0] = (f"{srv.variable('server_uuid')}:" if flavor == "mysql"
                 else f"{srv.variable('gtid_domain_id')}-")
    if flavor == "mysql":
        assert srv.variable("binlog_row_metadata") == "MINIMAL"
    rng = random.Random(SEED)
    n_a, n_b, n_c = SIZES[flavor]
    wl = Workload(srv, flavor, SEED)
    wl.setup()
    proxy = Proxy(srv.port)
    h = Harness(f"{flavor}://root@127.0.0.1:{proxy.port}", tmp_path, tmp_path / "cp.json",
                tmp_path / "out.jsonl")
    figures: dict[str, Any] = {"flavor": flavor}
    try:
        # ---- A: kills, a cut connection, a server restart, under load
        run = h.start()
        wl.start(n_a, ddl_every=n_a // 7, pace=0.001)
        # "kill": at a random moment; "kill-in-batch": as soon as the checkpoint
        # names a transaction in flight (the consumer is inside a batch)
        events = ["kill", "kill-in-batch", "cut", "kill", "restart", "kill-in-batch", "cut",
                  "kill", "kill-in-batch"]
        timeline = []
        torn_bytes = 0
        for i, event in enumerate(events):
            # spread over the workload; the consumer has made progress (it is
            # usually catching up after its restart: a kill lands in a batch)
            while wl.done < (i + 1) * n_a // (len(events) + 1) and wl.running():
                time.sleep(0.01)
            if not wl.running():  # it finished early (a fast machine): keep it writing
                wl.start(200, pace=0.002)
            h.wait_progress(run)
            time.sleep(rng.uniform(0.0, 0.3))
            timeline.append((event, wl.done, len(h.runs) - 1))
            if event.startswith("kill"):
                if event == "kill-in-batch":
                    h.kill_in_batch(run)
                else:
                    h.kill(run)
                if event == "kill-in-batch":
                    torn_bytes += h.tear(rng)
                run = h.start()
            elif event == "cut":
                assert proxy.cut() >= 1
            else:  # at a transaction boundary, the consumer caught up: it must reconnect
                with wl.pause:
                    h.wait_covered(run, srv)
                    kill_and_restart(srv, timeout=90.0, down=1.5)
                    wl.conn = srv.connect()
        wl.join()
        h.kill(run)
        run = h.start("--no-follow")
        h.finish(run)
        assert run.proc.returncode == 0
        deliveries = parse_output(h.out, h.runs)
        check_exact(deliveries, srv)
        first = snapshot_seq(deliveries, range(len(h.runs)))
        required = {s: g for s, g in binlog_txns(srv, flavor).items() if s > first}
        check_delivered(deliveries, required)
        assert len(required) >= n_a // 2
        figures["transactions A"] = len(required)
        figures["timeline (event, workload transactions done, run)"] = timeline
        figures["bytes torn off"] = torn_bytes

        # ---- B: a clean stop, more workload, the checkpoint's binlog purged
        run = h.start()
        stop_cleanly(h, run, wl, srv)
        assert h.checkpoint()["in_flight"] is None
        wl.run(n_b, ddl_every=n_b // 2)
        wl.q("FLUSH BINARY LOGS")
        newest = wl.q("SHOW BINARY LOGS")[-1][0]
        wl.q(f"PURGE BINARY LOGS TO '{newest}'")
        cp = h.checkpoint()["position"]
        never = subprocess.run(
            [sys.executable, "-m", "binlogkit", "tail", h.url, "--checkpoint", str(h.cp),
             "-o", str(h.out), "--snapshot", "never", "--no-defaults"],
            capture_output=True, text=True, timeout=60, check=False)
        assert never.returncode == 2, never
        assert never.stdout == ""
        assert never.stderr == (
            f"binlogkit: error: the server no longer has the binlog the checkpoint needs "
            f"({cp['file']}:{cp['pos']}, {cp['gtids']}) and --snapshot is never: "
            f"a full resync is needed\n")

        # ---- C: the snapshot, with DML going on, a kill, a SIGTERM at the end
        snap_from = len(h.runs)
        run = h.start()
        wl.start(n_c, pace=0.004)
        h.wait_progress(run, lines=1)
        time.sleep(rng.uniform(0.0, 0.5))
        h.kill(run)
        run = h.start()
        wl.join()
        stop_cleanly(h, run, wl, srv)
        deliveries = parse_output(h.out, h.runs)
        check_exact(deliveries, srv)
        snaps = [d for d in deliveries if d.snapshot and d.run >= snap_from and d.commit]
        after = snapshot_seq(deliveries, range(snap_from, len(h.runs)))
        required_c = {s: g for s, g in binlog_txns(srv, flavor).items() if s > after}
        check_delivered(deliveries, {**required, **required_c})
        figures["transactions C"] = len(required_c)
        figures["snapshot rows"] = sum(len(d.changes) for d in snaps)
        check_columns(deliveries, wl)
        figures.update(check_redelivery(deliveries, h.runs))
        figures["runs"] = len(h.runs)
        figures["kills"] = sum(r.end == "kill" for r in h.runs)
        assert figures["runs redelivering"] >= 2, "no kill landed inside a batch"
        print("\nfigures:", figures)
    finally:
        h.stop_all()
        proxy.close()
