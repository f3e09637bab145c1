"""Change records (binlogkit.cdc.records / filters / formats) over the fixture
binlogs, and one live MySQL transaction."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_stream import binlog_status

from binlogkit.cdc.filters import Filter
from binlogkit.cdc.formats import (
    begin_marker,
    change_json,
    commit_marker,
    debezium_begin,
    debezium_end,
    debezium_envelope,
    plain_value,
)
from binlogkit.cdc.model import Change, Position, Source, Txn
from binlogkit.cdc.records import TxnBuilder, txns_from_files
from binlogkit.codec.columns import Schemas
from binlogkit.codec.describe import row_json
from binlogkit.codec.rowcodec import TableCodec
from binlogkit.codec.types import DELETE_ROWS, WRITE_ROWS, EventType
from binlogkit.gtid import GtidSet
from binlogkit.io.reader import BinlogReader
from binlogkit.io.rows import row_events

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*.000001"))
T = EventType
_GTID_TYPES = {T.GTID, T.GTID_TAGGED, T.ANONYMOUS_GTID, T.MARIADB_GTID}
FILE_NAME = "row-full-metadata.000001"
_CACHE: dict[tuple[str, Any], list[Txn]] = {}


def txns(name: str, filters: Filter | None = None) -> list[Txn]:
    key = (name, repr(filters))
    if key not in _CACHE:
        _CACHE[key] = list(txns_from_files([FIXTURES / name], filters=filters))
    return _CACHE[key]


def _norm(img: dict[str, Any] | None) -> Any:
    """An image comparable with ==: a partial JSON document (only its diffs
    known) cannot compare its value."""
    if img is None:
        return None
    return {k: ("json-diffs", repr(v.diffs)) if getattr(v, "known", True) is False else v
            for k, v in img.items()}


def events(name: str) -> list[Any]:
    return list(BinlogReader(FIXTURES / name))


def test_fixtures_found() -> None:
    assert len(FILES) == 10
    assert "mysql/compressed.000001" in FILES and "mariadb/row.000001" in FILES


@pytest.mark.parametrize("name", FILES)
def test_one_txn_per_gtid(name: str) -> None:
    evs = events(name)
    gtid_events = [ev for ev in evs if ev.type_code in _GTID_TYPES]
    out = txns(name)
    assert len(out) == len(gtid_events)
    starts = [ev.pos for ev in gtid_events]
    for txn, ev, start in zip(out, gtid_events, starts, strict=True):
        if ev.type_code == T.ANONYMOUS_GTID:
            assert txn.gtid is None and txn.id == f"{Path(name).name}:{start}"
        else:
            assert txn.gtid is not None and txn.id == txn.gtid
    # each transaction ends where the next one's GTID starts; the last before the ROTATE
    ends = [t.end.pos for t in out]
    assert ends[:-1] == starts[1:]
    assert ends[-1] == next(ev.pos for ev in evs if ev.type_code == T.ROTATE)
    assert all(t.end.file == Path(name).name for t in out)


@pytest.mark.parametrize("name", FILES)
def test_changes_match_row_events(name: str) -> None:
    expected = []
    for re_ in row_events(FIXTURES / name):
        code = re_.event.type_code
        op = "c" if code in WRITE_ROWS else "d" if code in DELETE_ROWS else "u"
        for row in re_.rows:
            expected.append((op, _norm(row.before), _norm(row.after), re_.schema, re_.table))
    got = [(c.op, _norm(c.before), _norm(c.after), c.source.schema, c.source.table)
           for t in txns(name) for c in t.changes]
    assert got == expected


@pytest.mark.parametrize("name", FILES)
def test_source_fields(name: str) -> None:
    flavor = name.split("/")[0]
    evs = events(name)
    offsets = {ev.pos: ev for ev in evs}
    gtid_ts = {}
    for ev in evs:
        if ev.type_code in (T.GTID, T.ANONYMOUS_GTID):
            ct = ev.body.commit_timestamp
            gtid_ts[ev.pos] = (ct.original or ct.immediate) // 1000
        elif ev.type_code == T.GTID_TAGGED:
            b = ev.body
            gtid_ts[ev.pos] = (b.original_commit_timestamp or b.immediate_commit_timestamp) \
                // 1000
    gtid_events = [ev for ev in evs if ev.type_code in _GTID_TYPES]
    for txn, gev in zip(txns(name), gtid_events, strict=True):
        if gev.pos in gtid_ts:
            assert txn.ts_ms == gtid_ts[gev.pos]
        else:  # the commit event's header time
            commit = next(ev for ev in evs if ev.pos + ev.size == txn.end.pos)
            assert txn.ts_ms == commit.timestamp * 1000
        for i, c in enumerate(txn.changes):
            s = c.source
            assert (s.flavor, s.server_id, s.file, s.row, s.gtid, s.ts_ms) == \
                (flavor, gev.server_id, Path(name).name, i, txn.gtid, txn.ts_ms)
            ev = offsets[s.pos]
            assert gev.pos < s.pos < txn.end.pos
            if "compressed" in name and flavor == "mysql":
                assert ev.type_name in ("TRANSACTION_PAYLOAD", "WRITE_ROWS_V2",
                                        "UPDATE_ROWS_V2")  # MyISAM rows are not compressed
            else:
                assert ev.type_name.endswith("ROWS") or "_ROWS_" in ev.type_name


def test_payload_rows_take_the_payload_offset() -> None:
    evs = events("mysql/compressed.000001")
    payloads = {ev.pos for ev in evs if ev.type_code == T.TRANSACTION_PAYLOAD}
    rows = [c for t in txns("mysql/compressed.000001") for c in t.changes]
    assert sum(c.source.pos in payloads for c in rows) >= 2500


def test_gtid_positions() -> None:
    out = txns("mysql/tagged-gtids.000001")
    final = GtidSet.parse(out[-1].end.gtids)
    for t in out:
        assert t.gtid is not None and t.gtid in final
        assert t.gtid in GtidSet.parse(t.end.gtids)
    assert any(":alpha:" in (t.gtid or "") for t in out)
    maria = txns("mariadb/row.000001")
    assert maria[-1].end.gtids == "0-1-102,2-1-1"
    assert maria[0].end.gtids == "0-1-1"
    # a later file goes on from its own GTID_LIST / PREVIOUS_GTIDS
    nxt = list(txns_from_files([FIXTURES / "mariadb/row.000002"]))
    assert nxt[-1].end.gtids == "0-1-103,2-1-2"
    # a checkpoint's GTIDs are the starting point
    b = TxnBuilder("mariadb", gtids="0-1-50")
    for ev in BinlogReader(FIXTURES / "mariadb/row.000002"):
        for t in b.feed(ev, file="row.000002"):
            last = t
    assert last.end.gtids == "0-1-103,2-1-2"


def test_ddl_transactions() -> None:
    out = txns("mysql/row-full-metadata.000001")
    assert out[0].ddl == [("fx", "CREATE DATABASE fx CHARACTER SET utf8mb4")]
    assert out[0].changes == []
    assert out[1].ddl[0][1].startswith("CREATE TABLE fx.notes")
    dml = [t for t in out if t.changes]
    assert all(t.ddl == [] for t in dml)
    maria = txns("mariadb/row.000001")
    assert [sql for t in maria[:17] for _, sql in t.ddl][:3] == [
        "CREATE DATABASE fx CHARACTER SET utf8mb4", out[1].ddl[0][1],
        out[2].ddl[0][1]]
    # DDL from compressed MariaDB queries too
    assert any("CREATE TABLE fx.types" in sql for t in txns("mariadb/compressed.000001")
               for _, sql in t.ddl)
    # a statement-format workload gives statements, no changes
    stmt = txns("mysql/statement-nocrc.000001")
    assert all(not t.changes for t in stmt) and any(t.ddl for t in stmt)


def test_xa() -> None:
    commit_xid = "X'66782d636f6d6d6974',X'6272616e63682d31',7"
    out = [t for t in txns("mysql/row-full-metadata.000001") if t.xa]
    assert [t.xa[0] for t in out if t.xa] == ["prepare", "commit", "prepare", "rollback",
                                              "commit-one-phase"]
    assert out[0].xa == ("prepare", commit_xid) and out[1].xa == ("commit", commit_xid)
    assert [len(t.changes) for t in out] == [1, 0, 1, 0, 1]
    maria = [t for t in txns("mariadb/row.000001") if t.xa]
    assert [t.xa for t in maria][:2] == [("prepare", commit_xid), ("commit", commit_xid)]
    assert [t.xa[0] for t in maria if t.xa] == ["prepare", "commit", "prepare", "rollback"]
    assert [len(t.changes) for t in maria] == [1, 0, 1, 0]


def test_multi_statement_transaction_order() -> None:
    out = txns("mysql/row-full-metadata.000001")
    mixed = next(t for t in out if {c.op for c in t.changes} == {"c", "u", "d"})
    assert [c.op for c in mixed.changes] == ["c", "c", "u", "u", "d"]
    assert [c.source.row for c in mixed.changes] == [0, 1, 2, 3, 4]
    assert all(c.source.query for c in mixed.changes)  # ROWS_QUERY is on in this file
    positions = [c.source.pos for c in mixed.changes]
    assert positions == sorted(positions) and len(set(positions)) == 3


# ----------------------------------------------------------------- filters


def test_filter_globs() -> None:
    f = Filter(include=["fx.no*", "other"], exclude=["fx.notes_old"])
    assert f.table_included("fx", "notes")
    assert not f.table_included("fx", "notes_old")
    assert not f.table_included("fx", "types")
    assert f.table_included("other", "anything")
    assert not f.table_included("otherdb", "x")
    assert Filter().empty and Filter().table_included("a", "b")
    assert Filter(exclude=["*.t?"]).table_included("a", "tab")
    assert not Filter(exclude=["*.t?"]).table_included("a", "t1")
    c = Filter(columns_exclude=["fx.types.d*", "*.*.secret"])
    assert c.excluded_columns("fx", "types", ["id", "d0", "dbl", "secret", "x"]) == \
        {"d0", "dbl", "secret"}
    assert c.excluded_columns("fx", "notes", ["id", "d0", "secret"]) == {"secret"}


def test_filters_on_fixture() -> None:
    name = "mysql/row-full-metadata.000001"
    everything = txns(name)
    only = txns(name, Filter(include=["fx.notes"]))
    assert [t.id for t in only] == [t.id for t in everything]  # checkpoints still move
    assert [t.end for t in only] == [t.end for t in everything]
    tables = {c.source.table for t in only for c in t.changes}
    assert tables == {"notes"}
    assert sum(len(t.changes) for t in only) == sum(
        1 for t in everything for c in t.changes if c.source.table == "notes")
    no_big = txns(name, Filter(exclude=["fx.big", "*.types"]))
    assert {c.source.table for t in no_big for c in t.changes} == \
        {c.source.table for t in everything for c in t.changes} - {"big", "types"}
    cols = txns(name, Filter(columns_exclude=["fx.types.d*", "fx.notes.txt"]))
    for t in cols:
        for c in t.changes:
            for img in (c.before, c.after):
                if img is None:
                    continue
                if c.source.table == "types":
                    assert "id" in img and not any(k.startswith("d") for k in img)
                if c.source.table == "notes":
                    assert "txt" not in img
    # rows of every other table are untouched
    assert [c for t in cols for c in t.changes if c.source.table == "big"] == \
        [c for t in everything for c in t.changes if c.source.table == "big"]


# ----------------------------------------------------------------- formats


def _codecs(name: str) -> list[tuple[Any, TableCodec]]:
    out = []
    for re_ in row_events(FIXTURES / name):
        codec = TableCodec(re_.columns)
        out.extend((row, codec) for row in re_.rows)
    return out


@pytest.mark.parametrize("name", ["mysql/row-full-metadata.000001", "mysql/row-minimal.000001",
                                  "mariadb/row.000001", "mysql/compressed.000001"])
def test_change_json_follows_the_dump_contract(name: str) -> None:
    changes = [c for t in txns(name) for c in t.changes]
    expected = _codecs(name)
    assert len(changes) == len(expected)
    for c, (row, codec) in zip(changes, expected, strict=True):
        rec = change_json(c)
        want = row_json(row, codec)
        assert rec["before"] == want["before"]
        assert rec["after"] == want["after"]
        assert rec.get("json_diffs") == want.get("json_diffs")
        assert rec["op"] == c.op and rec["source"]["row"] == c.source.row
        json.dumps(rec)


def test_partial_json_diffs() -> None:
    recs = [change_json(c) for t in txns("mysql/row-minimal.000001") for c in t.changes]
    assert any("json_diffs" in r for r in recs)


@pytest.mark.parametrize("name", FILES)
def test_everything_is_json(name: str) -> None:
    for t in txns(name):
        json.dumps(begin_marker(t))
        json.dumps(commit_marker(t))
        for i, c in enumerate(t.changes):
            json.dumps(change_json(c))
            json.dumps(debezium_envelope(c, t, i))


def test_plain_values() -> None:
    import datetime as dt

    assert plain_value(Decimal("1.50")) == "1.50"
    assert plain_value(b"\x00\x01") == "AAE="
    assert plain_value(dt.datetime(2024, 2, 29, 1, 2, 3)) == "2024-02-29 01:02:03"
    assert plain_value(dt.datetime(2024, 2, 29, 1, 2, 3, 5)) == "2024-02-29 01:02:03.000005"
    assert plain_value(dt.date(2024, 2, 29)) == "2024-02-29"
    assert plain_value(dt.timedelta(hours=-1, seconds=-2)) == "-01:00:02"
    assert plain_value(dt.timedelta(hours=30, microseconds=7)) == "30:00:00.000007"
    assert plain_value({"a", "b"}) == "a,b"
    assert plain_value((1.5, 2.0)) == [1.5, 2.0]
    src = Source("mysql", 1, "f", 4, None, 1000, "db", "t", 0, snapshot=True)
    rec = change_json(Change("r", None, {"d": Decimal("2.5"), "b": b"x"}, src))
    assert rec["after"] == {"d": "2.5", "b": "eA=="}


def test_markers() -> None:
    out = txns("mysql/row-full-metadata.000001")
    t = next(t for t in out if {c.op for c in t.changes} == {"c", "u", "d"})
    b, e = begin_marker(t), commit_marker(t)
    assert b == {"type": "begin", "id": t.id, "gtid": t.gtid, "ts_ms": t.ts_ms, "events": 5}
    assert e["type"] == "commit" and e["events"] == 5 and e["end"] == t.end.to_json()
    assert e["data_collections"] == [{"data_collection": "fx.notes", "event_count": 5}]
    xa = next(t for t in out if t.xa)
    assert begin_marker(xa)["xa"] == {"state": "prepare", "xid": xa.xa[1] if xa.xa else ""}
    assert debezium_begin(t) == {"status": "BEGIN", "id": t.id, "ts_ms": t.ts_ms,
                                 "event_count": None, "data_collections": None}
    assert debezium_end(t)["event_count"] == 5


# Debezium's MySQL connector value, as its documentation describes the
# envelope and its `source` block ("Data change events",
# https://debezium.io/documentation/reference/connectors/mysql.html):
# field -> (JSON types allowed, required non-null)
_NULL = type(None)
DEBEZIUM_SOURCE = {
    "version": ((str,), True), "connector": ((str,), True), "name": ((str,), True),
    "ts_ms": ((int,), True), "ts_us": ((int,), False), "ts_ns": ((int,), False),
    "snapshot": ((str,), False), "db": ((str,), True), "sequence": ((str,), False),
    "table": ((str,), False), "server_id": ((int,), True), "gtid": ((str,), False),
    "file": ((str,), True), "pos": ((int,), True), "row": ((int,), True),
    "thread": ((int,), False), "query": ((str,), False),
}
DEBEZIUM_ENVELOPE = {
    "before": ((dict,), False), "after": ((dict,), False), "source": ((dict,), True),
    "op": ((str,), True), "ts_ms": ((int,), False), "ts_us": ((int,), False),
    "ts_ns": ((int,), False), "transaction": ((dict,), False),
}
DEBEZIUM_TRANSACTION = {
    "id": ((str,), True), "total_order": ((int,), True),
    "data_collection_order": ((int,), True),
}


def _check(obj: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    assert set(obj) == set(schema), f"{where}: {sorted(set(obj) ^ set(schema))}"
    for k, (types, required) in schema.items():
        v = obj[k]
        if v is None:
            assert not required, f"{where}.{k} is required"
        else:
            assert isinstance(v, types) and not isinstance(v, bool), f"{where}.{k}: {v!r}"


@pytest.mark.parametrize("name", ["mysql/row-full-metadata.000001", "mariadb/row.000001",
                                  "mysql/mixed-anonymous.000001"])
def test_debezium_envelope(name: str) -> None:
    for t in txns(name):
        per_table: dict[tuple[str, str], int] = {}
        for i, c in enumerate(t.changes):
            env = debezium_envelope(c, t, i, name="srv1", now_ms=1234)
            _check(env, DEBEZIUM_ENVELOPE, "envelope")
            _check(env["source"], DEBEZIUM_SOURCE, "source")
            _check(env["transaction"], DEBEZIUM_TRANSACTION, "transaction")
            src = env["source"]
            assert src["connector"] == "mysql" and src["name"] == "srv1"
            assert src["snapshot"] in ("true", "last", "false", "incremental")
            assert env["op"] in ("c", "u", "d", "r")
            assert (env["before"] is None) == (c.op == "c")
            assert (env["after"] is None) == (c.op == "d")
            assert (src["db"], src["table"], src["pos"], src["row"], src["gtid"]) == \
                (c.source.schema, c.source.table, c.source.pos, i, t.gtid)
            key = (c.source.schema, c.source.table)
            per_table[key] = per_table.get(key, 0) + 1
            assert env["transaction"] == {"id": t.id, "total_order": i + 1,
                                          "data_collection_order": per_table[key]}
            assert env["ts_ms"] == 1234
            json.dumps(env)


def test_debezium_snapshot_records() -> None:
    src = Source("mysql", 1, "binlog.000001", 157, None, 5000, "db", "t", 0, snapshot=True)
    c = Change("r", None, {"id": 1}, src)
    txn = Txn("snapshot", [c], Position("binlog.000001", 157), snapshot=True)
    env = debezium_envelope(c, txn, snapshot_last=True)
    _check(env, DEBEZIUM_ENVELOPE, "envelope")
    _check(env["source"], DEBEZIUM_SOURCE, "source")
    assert env["source"]["snapshot"] == "last" and env["transaction"] is None
    assert debezium_envelope(c, txn)["source"]["snapshot"] == "true"


# ------------------------------------------------------------- the builder


def test_builder_state_and_discard() -> None:
    evs = events("mysql/row-full-metadata.000001")
    full = txns("mysql/row-full-metadata.000001")
    first_rows = next(i for i, ev in enumerate(evs) if ev.type_code == T.WRITE_ROWS_V2)
    next_gtid = next(i for i, ev in enumerate(evs)
                     if i > first_rows and ev.type_code == T.GTID)
    # the server no longer has an unfinished transaction (Discard): drop it
    b = TxnBuilder()
    out = [t for ev in evs[:first_rows + 1] for t in b.feed(ev, file=FILE_NAME)]
    assert b.in_transaction and len(out) == 9
    b.discard()
    assert not b.in_transaction
    out += [t for ev in evs[next_gtid:] for t in b.feed(ev, file=FILE_NAME)]
    assert [t.id for t in out] == [t.id for t in full if t.id != full[9].id]
    # events that begin inside a transaction: its rows and end are not delivered
    b2 = TxnBuilder("mysql")
    got = [t for ev in evs[first_rows - 1:] for t in b2.feed(ev, file=FILE_NAME)]
    assert b2.orphan_rows == 1
    assert [t.id for t in got] == [t.id for t in full[10:]]


def test_resume_is_taken_for_the_end() -> None:
    b = TxnBuilder("mysql")
    pos = Position("binlog.000009", 1234, "uuid:1-5")
    got = [t for ev in events("mysql/row-full-metadata.000001")
           for t in b.feed(ev, lambda: pos, file="x")]  # type: ignore[arg-type]
    assert got and all(t.end == pos for t in got)


# ---------------------------------------------------------------- live MySQL


def test_live_multi_table_transaction(mysql_server: Any) -> None:
    from binlogkit.protocol.blocking import BinlogStream
    from binlogkit.protocol.replica import Start, StreamEvent

    srv = mysql_server
    db = f"cdc_rec_{os.getpid()}"
    srv.execute([f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}",
                 f"CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(10))",
                 f"CREATE TABLE {db}.b (id INT PRIMARY KEY, amount DECIMAL(10,2))"])
    file, pos = binlog_status(srv)
    executed_before = srv.execute("SELECT @@GLOBAL.gtid_executed")[0][0].replace("\n", "")
    conn = srv.connect()
    try:
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {db}.a VALUES (1, 'x')")
        cur.execute(f"INSERT INTO {db}.b VALUES (1, 12.50)")
        cur.execute(f"UPDATE {db}.a SET v = 'y' WHERE id = 1")
        before = time.time()
        cur.execute("COMMIT")
        after = time.time()
        cur.execute("SELECT @@GLOBAL.gtid_executed")
        executed = cur.fetchone()[0].replace("\n", "")
    finally:
        conn.close()
    end_file, end_pos = binlog_status(srv)
    # the server logs minimal metadata (no column names): a schema names them
    names = Schemas.from_mapping({db: {"a": ["id", "v"], "b": ["id", "amount"]}})
    b = TxnBuilder("mysql", gtids=executed_before, schemas=names,
                   filters=Filter(include=[f"{db}.*"]))
    got: list[Txn] = []
    with BinlogStream(srv.connect, Start(file, pos), blocking=False, reconnect=False) as s:
        for item in s:
            assert isinstance(item, StreamEvent)
            got.extend(b.feed(item, lambda: s.proto.resume_point))  # type: ignore[union-attr]
    txn = next(t for t in got if t.changes)
    assert [(c.source.table, c.op) for c in txn.changes] == [("a", "c"), ("b", "c"), ("a", "u")]
    assert [c.source.row for c in txn.changes] == [0, 1, 2]
    assert txn.changes[1].after == {"id": 1, "amount": Decimal("12.50")}
    assert change_json(txn.changes[1])["after"] == {"id": 1, "amount": "12.50"}
    assert txn.changes[2].before == {"id": 1, "v": "x"}
    assert txn.changes[2].after == {"id": 1, "v": "y"}
    # the commit time, from the GTID event's microsecond timestamps
    assert int(before * 1000) - 5 <= txn.ts_ms <= int(after * 1000) + 5
    assert all(c.source.ts_ms == txn.ts_ms for c in txn.changes)
    assert txn.gtid is not None and txn.id == txn.gtid
    assert txn.gtid in GtidSet.parse(txn.end.gtids)
    assert GtidSet.parse(txn.end.gtids) == GtidSet.parse(executed)
    assert (txn.end.file, txn.end.pos) == (end_file, end_pos)
    assert all(c.source.file == file and pos <= c.source.pos < end_pos for c in txn.changes)
    assert got[-1] is txn
