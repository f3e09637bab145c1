"""Transactions of a binlog, their dependencies (COMMIT_ORDER, WRITESET), the
parallel applier, and ``binlogkit parallelism``."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binlogkit.cli.parallelism import parallelism
from binlogkit.cli.stats import stats
from binlogkit.codec.columns import Column, Schemas
from binlogkit.codec.describe import describe
from binlogkit.errors import BinlogError
from binlogkit.io.reader import BinlogReader
from binlogkit.lab import Server
from binlogkit.replay.schedule import (
    DependencyTracker,
    ParallelApplier,
    ParallelApplyError,
    dependencies,
    levels,
    parallelism_report,
    report_from_dependencies,
    writeset,
)
from binlogkit.replay.transactions import (
    GTID_TYPES,
    BinlogTxn,
    Statement,
    TxnRow,
    read_transactions,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ALL = sorted(p for p in FIXTURES.glob("*/*.0*"))
FULL_META = FIXTURES / "mysql/row-full-metadata.000001"


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


# ------------------------------------------------------------- read_transactions


def _gtid_events(path: Path) -> list[str | None]:
    out = []
    for ev in BinlogReader(path):
        if ev.type_code in GTID_TYPES:
            out.append(describe(ev).get("gtid") if ev.type_code != 34 else None)
    return out


def _expand_mysql(text: str) -> set[str]:
    """'uuid:1-3,uuid:tag:5' -> {'uuid:1', ..., 'uuid:tag:5'}"""
    out = set()
    for part in text.split(","):
        bits = part.split(":")
        head, ranges = bits[0], bits[1:]
        tag = None
        if ranges and not ranges[0][0].isdigit():
            tag, ranges = ranges[0], ranges[1:]
        for r in ranges:
            lo, _, hi = r.partition("-")
            for n in range(int(lo), int(hi or lo) + 1):
                out.add(f"{head}:{tag}:{n}" if tag else f"{head}:{n}")
    return out


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_one_transaction_per_gtid_event(path: Path) -> None:
    txns = list(read_transactions(path))
    gtids = _gtid_events(path)
    assert len(txns) == len(gtids)
    assert [t.gtid for t in txns] == gtids
    assert all(t.complete for t in txns)
    assert all(t.file == str(path) for t in txns)
    # transactions are disjoint, ordered byte ranges starting at their GTID event
    for a, b in zip(txns, txns[1:], strict=False):
        assert a.start < a.end <= b.start
    for t in txns:
        assert t.events[0].type_code in GTID_TYPES and t.events[0].pos == t.start


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_gtids_match_stats(path: Path) -> None:
    res = CliRunner().invoke(stats, [str(path), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    txns = list(read_transactions(path))
    mine = {t.gtid for t in txns if t.gtid}
    if report["gtids"]:
        assert mine == _expand_mysql(report["gtids"])
        # MySQL: stats counts the same transactions
        assert report["transactions"]["count"] == len(txns)
    if report["mariadb_gtids"]:
        for key, span in report["mariadb_gtids"].items():
            seqs = sorted(int(g.rsplit("-", 1)[1]) for g in mine if g.startswith(key + "-"))
            lo, hi = (int(x.rsplit("-", 1)[1]) for x in span.split(".."))
            assert (seqs[0], seqs[-1]) == (lo, hi)
    if not report["gtids"] and not report["mariadb_gtids"]:
        assert not mine  # mixed-anonymous: ANONYMOUS_GTID only
    assert sum(len(t.rows) for t in txns) == sum(
        c["inserted"] + c["updated"] + c["deleted"] for c in report["tables"].values())


def test_rows_with_names_and_keys() -> None:
    txns = list(read_transactions(FULL_META))
    rows = [r for t in txns for r in t.rows]
    assert rows and all(not k.startswith("@") for r in rows
                        for img in (r.before, r.after) if img for k in img)
    first = next(t for t in txns if t.rows)
    assert [e.type_name for e in first.events] == [
        "GTID", "QUERY", "ROWS_QUERY", "TABLE_MAP", "WRITE_ROWS_V2", "XID"]
    r = first.rows[0]
    assert (r.schema, r.table, r.kind, r.primary_key) == ("fx", "ddl_t2", "insert", ("id",))
    assert r.before is None and r.after == {"id": 1, "a": "x", "b": 8}
    kinds = {r.kind for r in rows}
    assert kinds == {"insert", "update", "delete"}
    ups = [r for r in rows if r.kind == "update"]
    assert all(r.before and r.after for r in ups)
    # logical clock and DDL flag
    assert [t.sequence_number for t in txns] == list(range(1, len(txns) + 1))
    assert txns[0].ddl and txns[0].statements[0].sql.startswith("CREATE DATABASE")
    assert not first.ddl and first.row_based and first.statements == []
    xa = [t for t in txns if any(s.sql.startswith("XA START") for s in t.statements)]
    assert len(xa) == 3 and all(t.row_based and t.events[-1].type_name == "XA_PREPARE"
                                for t in xa)


def test_minimal_metadata_rows_have_no_names() -> None:
    txns = list(read_transactions(FIXTURES / "mysql/row-minimal.000001"))
    rows = [r for t in txns for r in t.rows]
    assert rows and all(r.primary_key == () for r in rows)
    assert any(k.startswith("@") for r in rows for k in (r.before or r.after or {}))
    # a caller schema names them and gives the key
    cols = [c.name or "" for c in rows[0].columns]
    names = ["id", *[f"c{i}" for i in range(1, len(cols))]]
    sch = Schemas.from_mapping({rows[0].schema: {rows[0].table: [
        {"name": "id", "primary_key": True}, *names[1:]]}})
    again = [r for t in read_transactions(FIXTURES / "mysql/row-minimal.000001", schemas=sch)
             for r in t.rows if (r.schema, r.table) == (rows[0].schema, rows[0].table)]
    assert again and all(r.primary_key == ("id",) for r in again)


def test_payload_inner_events_are_read() -> None:
    plain = list(read_transactions(FULL_META))
    packed = list(read_transactions(FIXTURES / "mysql/compressed.000001"))
    assert len(plain) == len(packed)
    t = next(t for t in packed if t.rows)
    assert [e.type_name for e in t.events] == [
        "GTID", "TRANSACTION_PAYLOAD", "QUERY", "TABLE_MAP", "WRITE_ROWS_V2", "XID"]
    assert [e.inner for e in t.events] == [False, False, True, True, True, True]
    assert t.end == t.events[1].next_pos
    assert [len(a.rows) for a in plain] == [len(b.rows) for b in packed]
    for a, b in zip(plain, packed, strict=True):
        assert [(r.kind, r.schema, r.table) for r in a.rows] == \
               [(r.kind, r.schema, r.table) for r in b.rows]


def test_mariadb_transactions() -> None:
    txns = list(read_transactions(FIXTURES / "mariadb/row.000001"))
    assert all(t.flavor == "mariadb" and t.last_committed is None for t in txns)
    by = {t.gtid: t for t in txns}
    assert by["0-1-1"].ddl and not by["0-1-10"].ddl and by["0-1-10"].row_based
    assert by["0-1-102"].rows and len(by["0-1-102"].rows) == 2505
    assert by["2-1-1"].rows[0].schema == "fx"
    # XA: the prepare holds the rows, the XA COMMIT is a statement of its own
    assert by["0-1-32"].row_based and by["0-1-32"].events[-1].type_name == "XA_PREPARE"
    assert not by["0-1-33"].row_based and by["0-1-33"].statements[0].sql.startswith("XA COMMIT")
    stmt = list(read_transactions(FIXTURES / "mariadb/statement-nocrc.000001"))
    multi = next(t for t in stmt if t.gtid == "0-1-51")
    assert [s.sql.split()[0] for s in multi.statements] == ["INSERT", "UPDATE", "DELETE"]
    assert all(s.db == "fx" or s.db is None for s in multi.statements)
    comp = list(read_transactions(FIXTURES / "mariadb/compressed.000001"))
    assert any(t.ddl and t.statements for t in comp)  # QUERY_COMPRESSED texts decoded


def test_several_files_and_no_gtids() -> None:
    files = [FIXTURES / "mysql/tagged-gtids.000001", FIXTURES / "mysql/tagged-gtids.000002"]
    txns = list(read_transactions(files))
    assert [t.file_index for t in txns] == [0] * 10 + [1] * 2
    # the second file's clock restarts: its first transaction waits for the whole first file
    deps = dependencies(txns, "commit_order")
    assert deps[10] >= 9
    # a binlog without GTID events: strip them and regroup on BEGIN/COMMIT
    data = FULL_META.read_bytes()
    kept = bytearray(data[:4])
    for ev in BinlogReader(data):
        if ev.type_code not in GTID_TYPES and ev.type_code != 35:
            kept += data[ev.pos : ev.next_pos]
    bare = list(read_transactions(bytes(kept), verify_checksum=False))
    with_gtid = list(read_transactions(FULL_META))
    assert len(bare) == len(with_gtid)
    assert [len(t.rows) for t in bare] == [len(t.rows) for t in with_gtid]
    assert all(t.gtid is None and t.last_committed is None for t in bare)
    assert dependencies(bare, "commit_order") == list(range(-1, len(bare) - 1))


def test_errors_are_raised(tmp_path: Path) -> None:
    data = FULL_META.read_bytes()
    bad = tmp_path / "cut.000001"
    bad.write_bytes(data[:5000])
    with pytest.raises(BinlogError) as exc:
        list(read_transactions(bad))
    assert exc.value.file == str(bad) and exc.value.offset is not None
    # a row event whose rows do not decode is an error, not skipped
    # (here: its table id has no TABLE_MAP)
    ev = next(e for e in BinlogReader(data) if e.type_name == "WRITE_ROWS_V2")
    broken = bytearray(data)
    broken[ev.pos + 19 : ev.pos + 25] = b"\x77" * 6
    with pytest.raises(BinlogError) as exc:
        list(read_transactions(bytes(broken), verify_checksum=False))
    assert exc.value.offset == ev.pos and "TABLE_MAP" in str(exc.value)


# ---------------------------------------------------------------------- writesets


def _col(i: int, name: str, pk: bool = False, binary: bool = False) -> Column:
    return Column(index=i, type=3, meta=0, name=name, primary_key=pk,
                  collation=63 if binary else None)


def _txn(*rows: tuple[str, str, dict[str, Any] | None, dict[str, Any] | None],
         pk: tuple[str, ...] = ("id",), statements: tuple[str, ...] = (),
         ddl: bool = False, gtid: str | None = None) -> BinlogTxn:
    out = []
    for table, kind, before, after in rows:
        cols = tuple(_col(i, n, n in pk) for i, n in enumerate(before or after or {}))
        out.append(TxnRow("db", table, kind, before, after, cols, pk, 0))  # type: ignore[arg-type]
    return BinlogTxn(gtid=gtid, rows=out, ddl=ddl,
                     statements=[Statement(s, "db", 0) for s in statements])


def test_writeset_keys() -> None:
    a = _txn(("t", "update", {"id": 1, "v": 1}, {"id": 1, "v": 2}))
    b = _txn(("t", "delete", {"id": 1, "v": 2}, None))
    c = _txn(("t", "insert", None, {"id": 2, "v": 0}))
    d = _txn(("u", "insert", None, {"id": 1, "v": 0}))
    assert writeset(a) == writeset(b)
    assert not writeset(a) & writeset(c) and not writeset(a) & writeset(d)
    # a primary key change touches both keys
    m = _txn(("t", "update", {"id": 1, "v": 1}, {"id": 2, "v": 1}))
    assert writeset(m) >= writeset(a) | writeset(c)
    # case / accent / trailing-space insensitive strings collide (as _ci collations do)
    s1 = _txn(("s", "insert", None, {"id": "Élan ", "v": 1}))
    s2 = _txn(("s", "delete", {"id": "elan", "v": 1}, None))
    assert writeset(s1) == writeset(s2)
    # no key known: the table itself
    k = _txn(("t", "insert", None, {"id": 5, "v": 0}), pk=())
    assert writeset(k) == {("table", "db", "t")}
    # caller keys override, unique keys add hashes, NULL in a unique key never collides
    ka = _txn(("t", "insert", None, {"id": 5, "v": 7}), pk=())
    kb = _txn(("t", "insert", None, {"id": 6, "v": 7}), pk=())
    keyed = writeset(ka, key_columns=lambda s, t: ("id",))
    assert len(keyed) == 1 and isinstance(next(iter(keyed)), int)
    assert not keyed & writeset(kb, key_columns=lambda s, t: ("id",))
    uk = {"unique_keys": lambda s, t: [("v",)], "key_columns": lambda s, t: ("id",)}
    assert writeset(ka, **uk) & writeset(kb, **uk)  # type: ignore[arg-type]
    kn = _txn(("t", "insert", None, {"id": 9, "v": None}), pk=())
    assert len(writeset(kn, **uk)) == 1  # type: ignore[arg-type]
    # statements and DDL: empty write set (barriers)
    assert writeset(_txn(statements=("INSERT INTO t VALUES (1)",))) == set()
    assert writeset(_txn(("t", "insert", None, {"id": 1}), ddl=True)) == set()


def test_writeset_dependencies() -> None:
    t = [
        _txn(("t", "insert", None, {"id": 1})),            # 0
        _txn(("t", "insert", None, {"id": 2})),            # 1
        _txn(("t", "update", {"id": 1}, {"id": 1})),       # 2: after 0
        _txn(("u", "insert", None, {"id": 1})),            # 3
        _txn(("k", "insert", None, {"id": 1}), pk=()),     # 4: keyless table k
        _txn(("k", "insert", None, {"id": 2})),            # 5: touches k: after 4
        _txn(("t", "delete", {"id": 2}, None)),            # 6: after 1
        _txn(statements=("CREATE TABLE x (a INT)",), ddl=True),  # 7: barrier
        _txn(("u", "insert", None, {"id": 7})),            # 8: after the barrier
        _txn(("k", "insert", None, {"id": 3}), pk=()),     # 9: after 8? no: after 7
        _txn(("k", "insert", None, {"id": 4})),            # 10: after 9 (keyless k)
    ]
    assert dependencies(t, "writeset") == [-1, -1, 0, -1, -1, 4, 1, 6, 7, 7, 9]
    # history overflow: cleared, the transaction that overflowed it becomes the floor
    small = dependencies(t[:7], "writeset", history_size=3)
    tr = DependencyTracker("writeset", history_size=3)
    assert [tr.add(x) for x in t[:7]] == small
    # 1, 3 and 5 overflow the 3-key history; each becomes the floor of what follows
    assert small == [-1, -1, 1, 1, 3, 4, 5] and tr.resets == 3


def test_commit_order_dependencies() -> None:
    def clock(lc: int, sn: int) -> BinlogTxn:
        return BinlogTxn(last_committed=lc, sequence_number=sn)

    t = [clock(0, 1), clock(1, 2), clock(1, 3), clock(1, 4), clock(3, 5), clock(2, 6)]
    assert dependencies(t, "commit_order") == [-1, 0, 0, 0, 2, 1]
    # MariaDB: same commit_id, consecutive -> one group
    m = [BinlogTxn(flavor="mariadb", commit_id=c) for c in (None, 7, 7, 7, 8, 8, None)]
    assert dependencies(m, "commit_order") == [-1, 0, 0, 0, 3, 3, 5]
    m[2].ddl = True
    assert dependencies(m, "commit_order") == [-1, 0, 1, 2, 3, 3, 5]


def test_report_definitions() -> None:
    deps = [-1, -1, -1, 2, 2, 0, 5, -1]
    assert levels(deps) == [1, 1, 1, 2, 2, 2, 3, 1]
    r = report_from_dependencies(deps)
    assert r.critical_path == 3 and r.speedup_bound == pytest.approx(8 / 3)
    # groups in binlog order: [0 1 2] [3 4 5] [6 7]; as many as the critical path
    assert r.group_histogram == {2: 1, 3: 2}
    assert r.mean_parallelism == pytest.approx((3 * 3 + 3 * 3 + 2 * 2) / 8)
    assert r.width_histogram == {1: 1, 3: 1, 4: 1}  # steps of 4, 3 and 1 transactions
    assert r.serialized == 2  # 3 and 6 wait for the transaction right before them
    serial = report_from_dependencies([-1, 0, 1, 2])
    assert (serial.critical_path, serial.mean_parallelism, serial.serialized) == (4, 1.0, 3)
    assert report_from_dependencies([]).critical_path == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=40))
def test_groups_equal_critical_path(raw: list[int]) -> None:
    deps = [min(x, i) - 1 for i, x in enumerate(raw)]
    r = report_from_dependencies(deps)
    lv = levels(deps)
    assert sum(r.group_histogram.values()) == r.critical_path == max(lv, default=0)
    assert sum(k * v for k, v in r.group_histogram.items()) == len(deps)
    assert sum(k * v for k, v in r.width_histogram.items()) == len(deps)
    for i, d in enumerate(deps):  # a transaction runs after everything it waits for
        assert all(lv[j] < lv[i] for j in range(d + 1))


def test_fixture_writeset_matches_mysql() -> None:
    """MySQL 9.7 wrote WRITESET clocks: with full metadata the recomputed
    dependencies are the server's."""
    txns = list(read_transactions(FULL_META))
    assert dependencies(txns, "writeset") == dependencies(txns, "commit_order")
    rep = parallelism_report(txns)
    assert set(rep.policies) == {"commit_order", "writeset"}
    assert rep.policies["writeset"].critical_path < len(txns)


# ------------------------------------------------------------------------ applier


def _kv_txns(ops: list[list[tuple[int, int]]]) -> tuple[list[BinlogTxn], list[int]]:
    """Transactions writing key := value, and WRITESET dependencies for them."""
    txns = []
    for i, writes in enumerate(ops):
        rows = [("kv", "update", {"id": k, "v": None}, {"id": k, "v": v}) for k, v in writes]
        t = _txn(*rows, gtid=f"0-1-{i + 1}") if rows else _txn(
            statements=("DO 1",), gtid=f"0-1-{i + 1}")
        t.start = 100 * i
        txns.append(t)
    return txns, dependencies(txns, "writeset")


class _Recorder:
    """A key-value store: apply() reads and buffers, commit() publishes; records order."""

    def __init__(self, delays: list[float], fail_at: int | None = None) -> None:
        self.store: dict[int, tuple[int, ...]] = {}
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.committed: list[int] = []
        self.rolled_back: list[int] = []
        self.delays = delays
        self.fail_at = fail_at
        self.index: dict[int, int] = {}

    def apply(self, txn: BinlogTxn) -> Any:
        i = txn.start // 100
        with self.lock:
            self.started.append(i)
            snapshot = set(self.committed)
        time.sleep(self.delays[i % len(self.delays)])
        if i == self.fail_at:
            raise RuntimeError("duplicate key")
        # read-modify-write: history of writers per key, so order errors show up
        updates = {r.after["id"]: r.after["v"] for r in txn.rows if r.after}

        def commit() -> None:
            with self.lock:
                for k, v in updates.items():
                    self.store[k] = (*self.store.get(k, ()), v)
                self.committed.append(i)

        self.index[i] = len(snapshot)
        return commit

    def rollback(self, txn: BinlogTxn) -> None:
        with self.lock:
            self.rolled_back.append(txn.start // 100)


def _serial(ops: list[list[tuple[int, int]]]) -> dict[int, tuple[int, ...]]:
    out: dict[int, tuple[int, ...]] = {}
    for writes in ops:
        for k, v in dict(writes).items():
            out[k] = (*out.get(k, ()), v)
    return out


_ops = st.lists(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 99)), max_size=3),
                min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, workers=st.integers(1, 4), seed=st.integers(0, 2**16),
       preserve=st.booleans())
def test_applier_respects_dependencies(ops: list[list[tuple[int, int]]], workers: int,
                                       seed: int, preserve: bool) -> None:
    rnd = random.Random(seed)
    delays = [rnd.choice([0, 0, 0.0005, 0.002]) for _ in range(7)]
    txns, deps = _kv_txns(ops)
    rec = _Recorder(delays)
    starts: dict[int, set[int]] = {}
    orig = rec.apply

    def apply(txn: BinlogTxn) -> Any:
        i = txn.start // 100
        with rec.lock:
            starts[i] = set(rec.committed)
        return orig(txn)

    res = ParallelApplier(workers, apply, "writeset", preserve).run(txns)
    n = len(txns)
    assert res.committed == n and sorted(rec.committed) == list(range(n))
    if preserve:
        assert rec.committed == list(range(n)) == res.commit_order
    for i, d in enumerate(deps):
        assert set(range(d + 1)) <= starts[i], (i, d)  # every txn 0..d committed first
    assert rec.store == _serial(ops)
    assert res.max_in_flight <= workers


@settings(max_examples=30, deadline=None)
@given(deps=st.lists(st.integers(0, 30), min_size=1, max_size=30).map(
    lambda xs: [min(x, i) - 1 for i, x in enumerate(xs)]),
       workers=st.integers(1, 5), seed=st.integers(0, 1000))
def test_applier_arbitrary_graphs(deps: list[int], workers: int, seed: int) -> None:
    rnd = random.Random(seed)
    txns = [BinlogTxn(gtid=f"u:{i + 1}", start=100 * i) for i in range(len(deps))]
    delays = [rnd.choice([0, 0.001]) for _ in deps]
    committed: list[int] = []
    seen: dict[int, list[int]] = {}
    lock = threading.Lock()

    def apply(txn: BinlogTxn) -> Any:
        i = txn.start // 100
        with lock:
            seen[i] = list(committed)
        time.sleep(delays[i])

        def commit() -> None:
            with lock:
                committed.append(i)
        return commit

    ParallelApplier(workers, apply, preserve_commit_order=True).run(txns, deps)
    assert committed == list(range(len(deps)))
    for i, d in enumerate(deps):
        assert len(seen[i]) >= d + 1  # in order: 0..d are the first d+1 commits


@pytest.mark.parametrize("preserve", [True, False])
def test_applier_error_stops_the_run(preserve: bool) -> None:
    ops = [[(i % 3, i)] for i in range(12)]
    txns, deps = _kv_txns(ops)
    rec = _Recorder([0.001, 0, 0.003], fail_at=5)
    app = ParallelApplier(3, rec.apply, "writeset", preserve, rollback=rec.rollback)
    with pytest.raises(ParallelApplyError) as exc:
        app.run(txns)
    err = exc.value
    assert err.index == 5 and err.gtid == "0-1-6" and err.pos == 500
    assert "0-1-6" in str(err) and "byte 500" in str(err) and "duplicate key" in str(err)
    assert isinstance(err.__cause__, RuntimeError)
    if preserve:
        assert rec.committed == [0, 1, 2, 3, 4]
    assert 5 not in rec.committed
    # transactions on key 5 % 3 after the failure never started
    assert not {8, 11} & set(rec.started)
    assert set(rec.rolled_back) <= set(range(6, 12))


def test_applier_commit_error() -> None:
    txns, deps = _kv_txns([[(1, 1)], [(2, 2)], [(3, 3)]])

    def apply(txn: BinlogTxn) -> Any:
        def commit() -> None:
            if txn.gtid == "0-1-2":
                raise OSError("disk full")
        return commit

    with pytest.raises(ParallelApplyError, match="disk full") as exc:
        ParallelApplier(2, apply).run(txns)
    assert exc.value.index == 1


# --------------------------------------------------------------- a real workload


def _workload(conn_factory: Any, threads: int, per_thread: int) -> None:
    errors: list[BaseException] = []

    def run(w: int) -> None:
        rnd = random.Random(w)
        conn = conn_factory()
        try:
            with conn.cursor() as cur:
                for n in range(per_thread):
                    r = rnd.random()
                    if r < 0.4:  # own rows: independent of the other threads
                        ids = [w * 100 + rnd.randrange(5)]
                    elif r < 0.6:  # the shared hot row
                        ids = [0]
                    else:  # shared rows, sometimes two
                        ids = sorted({rnd.randrange(1, 6) for _ in range(rnd.randrange(1, 3))})
                    cur.execute("BEGIN")
                    for i in ids:
                        cur.execute("UPDATE ps.t SET v = v + 1, w = %s WHERE id = %s",
                                    (f"{w}.{n}", i))
                    if rnd.random() < 0.2:
                        cur.execute("INSERT INTO ps.log (k, who) VALUES (%s, %s)",
                                    (f"k{w}-{n}", w))
                    cur.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            conn.close()

    ts = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_real_workload_dependencies(mysql_server: Server) -> None:
    srv = mysql_server
    srv.execute([
        "DROP DATABASE IF EXISTS ps", "CREATE DATABASE ps",
        "CREATE TABLE ps.t (id INT PRIMARY KEY, v INT NOT NULL, w VARCHAR(20))",
        "CREATE TABLE ps.log (id INT AUTO_INCREMENT PRIMARY KEY,"
        " k VARCHAR(20) NOT NULL UNIQUE, who INT)",
        "INSERT INTO ps.t VALUES " + ",".join(
            f"({i}, 0, '')" for i in [0, 1, 2, 3, 4, 5, *range(100, 105), *range(200, 205),
                                      *range(300, 305), *range(400, 405)]),
        "FLUSH BINARY LOGS",
    ])
    first = srv.binlog_files()[-1]
    _workload(srv.connect, threads=4, per_thread=40)
    srv.flush_logs()
    files = srv.binlog_files()
    files = files[files.index(first) : -1]
    conn = srv.connect()
    try:
        schemas = Schemas.from_server(conn, ["ps"])
    finally:
        conn.close()
    txns = list(read_transactions(files, schemas=schemas))
    assert len(txns) == 160 and all(t.row_based for t in txns)
    mysql_deps = dependencies(txns, "commit_order")
    mine = dependencies(txns, "writeset")

    # ground truth: every row (table, primary key) each transaction touched
    touchers: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for i, t in enumerate(txns):
        keys = {(r.table, img["id"]) for r in t.rows for img in (r.before, r.after) if img}
        for k in keys:
            touchers[k].append(i)
    pairs = 0
    for idx in touchers.values():
        for a, b in zip(idx, idx[1:], strict=False):
            pairs += 1
            assert mysql_deps[b] >= a, ("server let conflicting txns run together", a, b)
            assert mine[b] >= a, ("writeset let conflicting txns run together", a, b)
    assert pairs > 50
    # with the keys known, never more conservative than the server (which also
    # makes each file's first transaction a floor)
    assert all(m <= s for m, s in zip(mine, mysql_deps, strict=True)), (mine, mysql_deps)
    assert parallelism_report(txns).policies["commit_order"].critical_path < len(txns)
    assert parallelism_report(txns).policies["writeset"].critical_path < len(txns)

    # replaying on the parallel applier gives the serial result
    def state_after(workers: int, preserve: bool) -> dict[Any, Any]:
        state: dict[Any, Any] = {}
        lock = threading.Lock()

        def apply(txn: BinlogTxn) -> Any:
            def commit() -> None:
                with lock:
                    for r in txn.rows:
                        if r.after is not None:
                            state[(r.table, r.after["id"])] = r.after
            return commit

        ParallelApplier(workers, apply, "writeset", preserve).run(txns)
        return state

    serial = state_after(1, True)
    assert state_after(4, True) == serial == state_after(4, False)
    assert serial[("t", 0)]["v"] == sum(
        1 for t in txns for r in t.rows if r.table == "t" and r.after and r.after["id"] == 0)


# --------------------------------------------------------------------------- CLI


def test_cli_text() -> None:
    res = CliRunner().invoke(parallelism, [str(FULL_META)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "transactions: 42"
    assert "policy commit_order:" in lines and "policy writeset:" in lines
    for label in ("critical path:", "speed-up bound:", "mean parallelism:", "group sizes:"):
        assert sum(label in ln for ln in lines) == 2


def test_cli_json() -> None:
    res = CliRunner().invoke(parallelism, [str(FIXTURES / "mysql/compressed.000001"),
                                           "--json", "--policy", "commit_order"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert set(doc) == {"files", "transactions", "policies"}
    assert doc["transactions"] == 42 and list(doc["policies"]) == ["commit_order"]
    p = doc["policies"]["commit_order"]
    assert set(p) == {"transactions", "critical_path", "speedup_bound", "mean_parallelism",
                      "group_histogram", "width_histogram", "serialized"}
    assert sum(p["group_histogram"].values()) == p["critical_path"]
    assert sum(int(k) * v for k, v in p["group_histogram"].items()) == 42
    assert sum(int(k) * v for k, v in p["width_histogram"].items()) == 42
    assert sum(p["width_histogram"].values()) == p["critical_path"]
    assert p["speedup_bound"] == pytest.approx(42 / p["critical_path"], abs=1e-4)


def test_cli_several_files_and_index(tmp_path: Path) -> None:
    files = [FIXTURES / "mariadb/row.000001", FIXTURES / "mariadb/row.000002"]
    res = CliRunner().invoke(parallelism, [*map(str, files), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["transactions"] == 42


def test_cli_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.000001"
    bad.write_bytes(FULL_META.read_bytes()[:20000])
    res = CliRunner().invoke(parallelism, [str(bad)])
    assert res.exit_code == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "at byte" in err[0]
    assert "Traceback" not in res.output
    missing = CliRunner().invoke(parallelism, [str(tmp_path / "nope.000001")])
    assert missing.exit_code == 2 and "nope.000001" in missing.stderr
