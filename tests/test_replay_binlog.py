"""binlogkit.replay.binlog: transactions written as a primary's binlog.

Every (flavor, format) file is (1) read back by binlogkit, (2) decoded by the
server's own tool (MySQL 9.7 ``mysqlbinlog -vv`` in the sid root, MariaDB
``mariadb-binlog -vv``), (3) piped through that tool into a real server, whose
tables must then hold the rows the transactions describe.

GTIDs on apply: each MySQL file gets a fresh ``server_uuid`` (uuid4), so its
``SET GTID_NEXT`` GTIDs are new to the shared ``mysql_server`` (gtid_mode=ON)
and nothing is skipped; no ``--skip-gtids``, no RESET. MariaDB files use their
own domain and server id with a fresh seq_no range (gtid_strict_mode is off).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import struct
import subprocess
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_pipe import pipe_into

from binlogkit.codec.event import encode_event
from binlogkit.codec.types import EventType as T
from binlogkit.io.reader import BinlogReader
from binlogkit.io.rows import row_events
from binlogkit.io.writer import BinlogWriter
from binlogkit.lab import Server
from binlogkit.replay.binlog import BinlogEncoder, transaction_events, write_binlog
from binlogkit.replay.model import (
    ColumnInfo,
    Context,
    Executed,
    Kind,
    RowChange,
    TableInfo,
    Transaction,
)

FORMATS = ("statement", "row", "mixed")
FLAVORS = ("mysql", "mariadb")
TS = 1_700_000_000
ROW_TYPES = {"WRITE_ROWS_V2", "UPDATE_ROWS_V2", "DELETE_ROWS_V2",
             "WRITE_ROWS_V1", "UPDATE_ROWS_V1", "DELETE_ROWS_V1"}
STMT_CONTEXT_TYPES = {"INTVAR", "RAND", "USER_VAR"}


# ---------------------------------------------------------------- the workload


def _table(db: str) -> TableInfo:
    cols = (
        ColumnInfo("id", "INT", nullable=False, auto_increment=True),
        ColumnInfo("name", "VARCHAR(32)"),
        ColumnInfo("qty", "BIGINT UNSIGNED"),
        ColumnInfo("price", "DECIMAL(10,2)"),
        ColumnInfo("score", "DOUBLE"),
        ColumnInfo("code", "CHAR(4)"),
        ColumnInfo("note", "TEXT"),
        ColumnInfo("raw", "VARBINARY(8)"),
        ColumnInfo("d", "DATE"),
        ColumnInfo("dt", "DATETIME(6)"),
        ColumnInfo("ts", "TIMESTAMP(3)"),
    )
    create = (f"CREATE TABLE {db}.items (id INT NOT NULL AUTO_INCREMENT, name VARCHAR(32),"
              " qty BIGINT UNSIGNED, price DECIMAL(10,2), score DOUBLE, code CHAR(4), note TEXT,"
              " raw VARBINARY(8), d DATE, dt DATETIME(6), ts TIMESTAMP(3) NULL,"
              " PRIMARY KEY (id), KEY k_name (name)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
    return TableInfo(db, "items", cols, primary_key=("id",), indexes={"k_name": ("name",)},
                     create_sql=create)


def _row(id_: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": id_, "name": None, "qty": None, "price": None, "score": None,
                            "code": None, "note": None, "raw": None, "d": None, "dt": None,
                            "ts": None}
    base.update(kw)
    return base


def _mysql_rand(seed1: int, seed2: int) -> float:
    """The first RAND() of a session seeded with (seed1, seed2) (both servers' my_rnd)."""
    max_value = 0x3FFFFFFF
    seed1 = (seed1 * 3 + seed2) % max_value
    return seed1 / float(max_value)


def workload(db: str) -> tuple[list[Transaction], dict[int, dict[str, Any]]]:
    """Hand-built transactions on ``db`` and the rows they leave (by id)."""
    t = _table(db)

    def ctx(**kw: Any) -> Context:
        return Context(db=db, timestamp=TS, thread_id=42, **kw)

    r1 = _row(1, name="alpha", qty=2**64 - 1, price=Decimal("12.50"), score=1.5, code="ab",
              note="héllo ✓ 😀", raw=b"\x00\x01", d="2024-01-02",
              dt="2024-01-02 03:04:05.123456", ts="2024-01-02 03:04:05.250")
    r2 = _row(2, name="beta", qty=7, price=Decimal("-0.05"), score=-2.25, code="c d",
              note="", raw=b"", d="1999-12-31", dt="1999-12-31 23:59:59.000001",
              ts="1999-12-31 23:59:59.999")
    r3 = _row(3, name=None, qty=0, price=Decimal("0.00"))
    insert = Executed(
        f"INSERT INTO {db}.items (id, name, qty, price, score, code, note, raw, d, dt, ts)"
        " VALUES (1, 'alpha', 18446744073709551615, 12.50, 1.5, 'ab', 'héllo ✓ 😀', x'0001',"
        " '2024-01-02', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.250'),"
        " (2, 'beta', 7, -0.05, -2.25, 'c d', '', x'', '1999-12-31',"
        " '1999-12-31 23:59:59.000001', '1999-12-31 23:59:59.999'),"
        " (3, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        ctx(), [RowChange(t, "insert", None, r) for r in (r1, r2, r3)])
    # auto-increment: INSERT_ID for the first, LAST_INSERT_ID + INSERT_ID for the second
    r4 = _row(4, name="auto", qty=1)
    r5 = _row(5, name="again", qty=4)
    auto1 = Executed(f"INSERT INTO {db}.items (name, qty) VALUES ('auto', 1)",
                     ctx(insert_id=4), [RowChange(t, "insert", None, r4)])
    auto2 = Executed(f"INSERT INTO {db}.items (name, qty) VALUES ('again', LAST_INSERT_ID())",
                     ctx(insert_id=5, last_insert_id=4), [RowChange(t, "insert", None, r5)])
    # RAND() seeds and user variables of every type
    seeds = (123456789, 987654321)
    uv = {"n": "vär ✓", "q": 2**64 - 2, "p": Decimal("-3.25"), "b": b"\xff\x00",
          "neg": -42, "z": None}
    r10 = _row(10, name="vär ✓", qty=2**64 - 2, price=Decimal("-3.25"),
               score=_mysql_rand(*seeds), raw=b"\xff\x00", code="-42")
    rand = Executed(
        f"INSERT INTO {db}.items (id, name, qty, price, score, raw, code, note)"
        " VALUES (10, @n, @q, @p, RAND(), @b, @neg, @z)",
        ctx(rand_seed=seeds, user_vars=uv), [RowChange(t, "insert", None, r10)])
    # UPDATE with NOW(6) (timestamp + microseconds), then an unsafe DELETE ... LIMIT
    r1u = dict(r1, name="upd", dt="2023-11-14 22:13:20.654321")
    r2u = dict(r2, name="upd", dt="2023-11-14 22:13:20.654321")
    update = Executed(
        f"UPDATE {db}.items SET name = 'upd', dt = NOW(6) WHERE id IN (1, 2)",
        ctx(usec=654321), [RowChange(t, "update", r1, r1u), RowChange(t, "update", r2, r2u)],
        rows_matched=2)
    delete = Executed(
        f"DELETE FROM {db}.items WHERE name IS NULL ORDER BY id LIMIT 1",
        ctx(), [RowChange(t, "delete", r3, None)],
        unsafe=["LIMIT without a unique ORDER BY ... (here ordered: still flagged)"])
    txns = [
        Transaction([Executed(f"CREATE DATABASE {db}", Context(timestamp=TS), ddl=True)],
                    ddl=True),
        Transaction([Executed(t.create_sql, ctx(), ddl=True)], ddl=True),
        Transaction([insert]),
        Transaction([auto1, auto2]),
        Transaction([rand]),
        Transaction([update, delete]),
    ]
    final = {1: r1u, 2: r2u, 4: r4, 5: r5, 10: r10}
    return txns, final


def _statements(txns: list[Transaction]) -> list[Executed]:
    return [s for txn in txns for s in txn.statements]


def _logged_as_rows(st_: Executed, fmt: str) -> bool:
    return not st_.ddl and (fmt == "row" or (fmt == "mixed" and bool(st_.unsafe)))


def _options(flavor: str) -> dict[str, Any]:
    if flavor == "mysql":
        return {"server_uuid": str(uuid.uuid4())}
    seq = int(uuid.uuid4().int % 1_000_000) * 100 + 1
    return {"server_id": 77, "domain_id": 7, "start_seq": seq}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """One written file per (flavor, format), each on its own database."""
    out = {}
    base = tmp_path_factory.mktemp("replay-binlog")
    for flavor in FLAVORS:
        for fmt in FORMATS:
            db = f"rb_{flavor[:2]}_{fmt[:3]}_{uuid.uuid4().hex[:8]}"
            txns, final = workload(db)
            path = base / f"{flavor}-{fmt}" / "binlog.000001"
            path.parent.mkdir()
            info = write_binlog(path, txns, fmt=fmt, flavor=flavor, timestamp=TS,
                                **_options(flavor))
            out[(flavor, fmt)] = (path, db, txns, final, info)
    return out


CASES = [(f, m) for f in FLAVORS for m in FORMATS]


# ---------------------------------------------------------------- 1. binlogkit reads it


@pytest.mark.parametrize(("flavor", "fmt"), CASES)
def test_binlogkit_reads_back(files: dict[Any, Any], flavor: str, fmt: str) -> None:
    path, db, txns, _, info = files[(flavor, fmt)]
    events = list(BinlogReader(path))
    names = [ev.type_name for ev in events]
    assert names[0] == "FORMAT_DESCRIPTION"
    if flavor == "mysql":
        assert names[1] == "PREVIOUS_GTIDS"
        assert names.count("GTID") == len(txns)
    else:
        assert names[1:3] == ["GTID_LIST", "BINLOG_CHECKPOINT"]
        assert names.count("MARIADB_GTID") == len(txns)
    assert names[-1] == "ROTATE" and events[-1].body.next_file == b"binlog.000002"
    assert names.count("XID") == sum(1 for t in txns if not t.ddl)
    assert info.events == len(events) and info.size == path.stat().st_size
    assert len(info.gtids) == len(txns)
    rows_expected = [s for s in _statements(txns) if _logged_as_rows(s, fmt)]
    has_rows = bool(ROW_TYPES & set(names))
    assert has_rows == bool(rows_expected)
    if fmt == "statement":
        assert STMT_CONTEXT_TYPES <= set(names)
    if fmt == "row":
        assert not STMT_CONTEXT_TYPES & set(names)
    if flavor == "mysql" and has_rows:
        assert {"WRITE_ROWS_V2", "ROWS_QUERY"} & set(names)
    if flavor == "mariadb" and has_rows:
        assert not {"WRITE_ROWS_V2", "UPDATE_ROWS_V2", "DELETE_ROWS_V2"} & set(names)
        assert "ANNOTATE_ROWS" in names

    # every QUERY text: BEGIN (MySQL) and each statement logged as a statement
    queries = [ev.body.query.decode() for ev in events if ev.type_name == "QUERY"]
    want = [s.sql for s in _statements(txns) if not _logged_as_rows(s, fmt)]
    assert [q for q in queries if q != "BEGIN"] == want
    # statement context events carry the context
    if fmt == "statement":
        uv = {ev.body.name.decode(): ev.body for ev in events if ev.type_name == "USER_VAR"}
        assert set(uv) == {"n", "q", "p", "b", "neg", "z"}
        assert uv["z"].is_null == 1
        assert uv["q"].value_type == 2 and uv["q"].flags == 1
        assert struct.unpack("<q", uv["neg"].value)[0] == -42
        assert uv["p"].value_type == 4 and uv["b"].charset == 63
        rands = [ev.body for ev in events if ev.type_name == "RAND"]
        assert [(r.seed1, r.seed2) for r in rands] == [(123456789, 987654321)]
        intvars = [(ev.body.subtype, ev.body.value) for ev in events
                   if ev.type_name == "INTVAR"]
        assert intvars == [(2, 4), (1, 4), (2, 5)]

    # rows decode to the RowChange images, column names included
    decoded = [(re_.schema, re_.table, r.before, r.after) for re_ in row_events(path)
               for r in re_.rows]
    expected = [(ch.table.schema, ch.table.name, ch.before, ch.after)
                for s in rows_expected for ch in s.changes]
    assert decoded == expected
    if decoded:
        assert db in {d[0] for d in decoded}


def test_ddl_and_gtid_shape() -> None:
    txns, _ = workload("rb_shape")
    mysql = transaction_events(txns[0], flavor="mysql", fmt="row",
                               server_uuid="3e11fa47-71ca-11e1-9e33-c80aa9429562",
                               start_seq=41, timestamp=TS)
    assert [e.type_name for e in mysql] == ["GTID", "QUERY"]
    assert mysql[0].body.gno == 41 and mysql[0].body.flags == 1
    assert mysql[1].flags & 0x08  # CREATE DATABASE: no USE
    maria = transaction_events(txns[0], flavor="mariadb", fmt="row", domain_id=3,
                               server_id=9, start_seq=5, timestamp=TS)
    assert [e.type_name for e in maria] == ["MARIADB_GTID", "QUERY"]
    assert maria[0].body.flags2 & 1  # standalone
    assert (maria[0].body.domain_id, maria[0].server_id, maria[0].body.seq_no) == (3, 9, 5)
    enc = BinlogEncoder(flavor="mysql", fmt="row", timestamp=TS)
    evs = enc.transaction_events(txns[2])
    assert [e.type_name for e in evs] == ["GTID", "QUERY", "ROWS_QUERY", "TABLE_MAP",
                                          "WRITE_ROWS_V2", "XID"]
    assert evs[0].body.flags == 0  # rbr_only
    total = sum(len(encode_event(e, enc.ctx)) for e in evs)
    assert evs[0].body.transaction_length == total
    explicit = Transaction(txns[2].statements, gtid="3e11fa47-71ca-11e1-9e33-c80aa9429562:77")
    assert enc.transaction_events(explicit)[0].body.gno == 77


# ---------------------------------------------------------------- 2. the servers' decoders


def _mysqlbinlog(root: Path, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (root / "tmp").mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="binlogkit-rb-", dir=root / "tmp"))
    try:
        inside = tmp / path.name
        shutil.copyfile(path, inside)
        target = "/" + inside.relative_to(root).as_posix()
        return subprocess.run(["chroot", str(root), "/usr/bin/mysqlbinlog", "--no-defaults",
                               *args, target], capture_output=True, text=True, errors="replace",
                              timeout=60, check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _mariadb_binlog() -> str:
    exe = shutil.which("mariadb-binlog")
    if exe is None:
        pytest.skip("mariadb-binlog not installed")
    return exe


def _assert_clean(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stderr
    assert "ERROR" not in run.stdout and "ERROR" not in run.stderr, run.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_mysqlbinlog_decodes(files: dict[Any, Any], sid_root: Path, fmt: str) -> None:
    path, db, _, final, _ = files[("mysql", fmt)]
    run = _mysqlbinlog(sid_root, path, "-vv")
    _assert_clean(run)
    assert "SET @@SESSION.GTID_NEXT=" in run.stdout
    if fmt != "statement":
        assert re.search(rf"### DELETE FROM `{db}`.`items`", run.stdout)
    if fmt == "row":
        assert f"### INSERT INTO `{db}`.`items`" in run.stdout
        assert "rbr_only=yes" in run.stdout
    if fmt == "statement":
        assert "SET @`q`:=18446744073709551614" in run.stdout
        assert "SET INSERT_ID=4" in run.stdout and "SET LAST_INSERT_ID=4" in run.stdout
        assert "SET @@RAND_SEED1=123456789, @@RAND_SEED2=987654321" in run.stdout
        assert "SET TIMESTAMP=1700000000.654321" in run.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_mariadb_binlog_decodes(files: dict[Any, Any], fmt: str) -> None:
    exe = _mariadb_binlog()
    path, db, _, _, _ = files[("mariadb", fmt)]
    run = subprocess.run([exe, "--no-defaults", "-vv", str(path)], capture_output=True,
                         text=True, errors="replace", timeout=60, check=False)
    _assert_clean(run)
    assert "GTID 7-77-" in run.stdout
    if fmt != "statement":
        assert f"### DELETE FROM `{db}`.`items`" in run.stdout
    if fmt == "statement":
        assert "SET @@RAND_SEED1=123456789, @@RAND_SEED2=987654321" in run.stdout
        assert "SET TIMESTAMP=1700000000.654321" in run.stdout


@pytest.mark.parametrize("fmt", FORMATS)
def test_mariadb_binlog_reads_mysql_flavor(files: dict[Any, Any], fmt: str) -> None:
    """Recorded behaviour: MariaDB's decoder also reads the MySQL-flavor files
    (it prints MySQL GTID events as ignorable/unknown comments)."""
    exe = _mariadb_binlog()
    path = files[("mysql", fmt)][0]
    run = subprocess.run([exe, "--no-defaults", "-vv", str(path)], capture_output=True,
                         text=True, errors="replace", timeout=60, check=False)
    _assert_clean(run)


# ---------------------------------------------------------------- 3. apply into real servers


def _norm(value: Any, sql_type: str) -> Any:
    """A PyMySQL value in the model's representation."""
    if isinstance(value, dt.datetime):
        m = re.search(r"\((\d)\)", sql_type)
        fsp = int(m.group(1)) if m else 0
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + ("." + f"{value.microsecond:06d}"[:fsp] if fsp else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _server_rows(srv: Server, table: TableInfo) -> dict[int, dict[str, Any]]:
    conn = srv.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT * FROM `{table.schema}`.`{table.name}` ORDER BY id")
            names = [d[0] for d in cur.description]
            types = {c.name: c.sql_type for c in table.columns}
            return {row[0]: {n: _norm(v, types[n]) for n, v in zip(names, row, strict=True)}
                    for row in cur.fetchall()}
    finally:
        conn.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_apply_mysql(files: dict[Any, Any], mysql_server: Server, sid_root: Path,
                     fmt: str) -> None:
    path, db, txns, final, info = files[("mysql", fmt)]
    pipe_into(mysql_server, path, sid_root)
    assert _server_rows(mysql_server, _table(db)) == final
    executed = mysql_server.execute("SELECT @@GLOBAL.gtid_executed")[0][0].replace("\n", "")
    assert f"{info.server_uuid}:1-{len(txns)}" in executed


@pytest.mark.parametrize("fmt", FORMATS)
def test_apply_mariadb(files: dict[Any, Any], mariadb_server: Server, fmt: str) -> None:
    path, db, txns, final, info = files[("mariadb", fmt)]
    pipe_into(mariadb_server, path)
    assert _server_rows(mariadb_server, _table(db)) == final
    pos = mariadb_server.execute("SELECT @@GLOBAL.gtid_binlog_pos")[0][0]
    assert info.gtids[-1] in pos.split(",")


# ---------------------------------------------------------------- hypothesis round trip

_RT_TABLE = TableInfo("rt", "t", (
    ColumnInfo("id", "BIGINT", nullable=False),
    ColumnInfo("u", "INT UNSIGNED"),
    ColumnInfo("s", "VARCHAR(20)"),
    ColumnInfo("c", "CHAR(3)"),
    ColumnInfo("m", "DECIMAL(9,3)"),
    ColumnInfo("f", "DOUBLE"),
    ColumnInfo("b", "VARBINARY(10)"),
    ColumnInfo("w", "DATETIME(3)"),
    ColumnInfo("ts", "TIMESTAMP"),
    ColumnInfo("e", "ENUM('x','y','z')"),
), primary_key=("id",))

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_char = _text.map(lambda s: s[:3].rstrip(" "))
_dec = st.decimals(min_value=-999999, max_value=999999, places=3, allow_nan=False,
                   allow_infinity=False)
_dt = st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond:06d}"[:3])
_ts = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2038, 1, 18)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))


def _image(id_: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "id": st.just(id_),
        "u": st.none() | st.integers(0, 2**32 - 1),
        "s": st.none() | _text,
        "c": st.none() | _char,
        "m": st.none() | _dec,
        "f": st.none() | st.floats(allow_nan=False, allow_infinity=False),
        "b": st.none() | st.binary(max_size=10),
        "w": st.none() | _dt,
        "ts": st.none() | _ts,
        "e": st.none() | st.sampled_from(["x", "y", "z"]),
    })


@st.composite
def _transactions(draw: st.DrawFn) -> Transaction:
    n = draw(st.integers(1, 4))
    stmts = []
    for i in range(n):
        kind: Kind = draw(st.sampled_from(["insert", "update", "delete"]))
        before = None if kind == "insert" else draw(_image(i))
        after = None if kind == "delete" else draw(_image(i))
        uv = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                  st.none() | st.integers(-2**63, 2**64 - 1) | _text
                                  | st.floats(allow_nan=False) | st.binary(max_size=5)
                                  | _dec, max_size=2))
        ctx = Context(db="rt", timestamp=draw(st.integers(1, 2**31 - 1)),
                      usec=draw(st.integers(0, 999999)),
                      insert_id=draw(st.none() | st.integers(1, 2**64 - 1)),
                      last_insert_id=draw(st.none() | st.integers(0, 2**64 - 1)),
                      rand_seed=draw(st.none() | st.tuples(st.integers(0, 2**30),
                                                           st.integers(0, 2**30))),
                      user_vars=uv, sql_mode=draw(st.integers(0, 2**40)),
                      thread_id=draw(st.integers(0, 2**32 - 1)))
        stmts.append(Executed(f"-- statement {i} {draw(_text)}", ctx,
                              [RowChange(_RT_TABLE, kind, before, after)],
                              unsafe=draw(st.sampled_from([[], ["x"]]))))
    return Transaction(stmts)


def _same_float(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txn=_transactions(), flavor=st.sampled_from(FLAVORS), fmt=st.sampled_from(FORMATS),
       checksum=st.booleans())
def test_roundtrip_hypothesis(txn: Transaction, flavor: str, fmt: str, checksum: bool) -> None:
    enc = BinlogEncoder(flavor=flavor, fmt=fmt, checksum=checksum, timestamp=TS,
                        rows_query=True)
    buf = io.BytesIO()
    writer = BinlogWriter(buf, fix_positions=True)
    written = enc.header_events() + enc.transaction_events(txn) + enc.footer_events(None)
    for ev in written:
        writer.write(ev)
    data = buf.getvalue()
    read = list(BinlogReader(io.BytesIO(data)))
    assert [e.type_code for e in read] == [e.type_code for e in written]
    for w, r in zip(written, read, strict=True):
        assert (r.timestamp, r.server_id, r.flags) == (w.timestamp, w.server_id, w.flags)
        if r.type_code in (T.QUERY, T.INTVAR, T.RAND, T.XID, T.TABLE_MAP, T.ROWS_QUERY,
                           T.ANNOTATE_ROWS, T.MARIADB_GTID):
            for key, value in w.body.items():
                if key.startswith("_") or key in ("status_vars", "optional_metadata"):
                    continue
                assert r.body[key] == value, (r.type_name, key)
        if r.type_code == T.QUERY:
            assert [(v.code, v.value) for v in r.body.status_vars.vars] == \
                   [(v.code, v.value) for v in w.body.status_vars.vars]
        if r.type_code == T.USER_VAR:
            for key in ("name", "is_null", "value_type", "charset", "value", "flags"):
                assert r.body[key] == w.body[key]
        if r.type_code == T.GTID:
            assert r.body.transaction_length == w.body.transaction_length
            assert r.body.commit_timestamp.immediate == w.body.commit_timestamp.immediate
    stmts = [s for s in txn.statements if _logged_as_rows(s, fmt)]
    decoded = [(r.before, r.after) for re_ in row_events(data) for r in re_.rows]
    expected = [(ch.before, ch.after) for s in stmts for ch in s.changes]
    assert len(decoded) == len(expected)
    for (db_, da), (eb, ea) in zip(decoded, expected, strict=True):
        for got, want in ((db_, eb), (da, ea)):
            assert (got is None) == (want is None)
            if want is not None:
                assert got is not None
                for k, v in want.items():
                    assert _same_float(got[k], v), (k, got[k], v)


# ---------------------------------------------------------------- large statements, two tables


@pytest.mark.parametrize("flavor", FLAVORS)
def test_large_statement_and_two_tables(tmp_path: Path, flavor: str,
                                        request: pytest.FixtureRequest) -> None:
    """A statement's rows are split into events of about 8 KiB (STMT_END_F on the
    last only); a statement on two tables maps both before its rows; a table whose
    definition changes gets a new table id."""
    t = _table("big")
    other = TableInfo("big", "log", (ColumnInfo("k", "INT", nullable=False),
                                     ColumnInfo("v", "VARCHAR(10)")), primary_key=("k",))
    rows = [_row(i, name=f"n{i}", note="x" * 100) for i in range(1, 301)]
    big = Executed("INSERT INTO big.items SELECT ...", Context(db="big", timestamp=TS),
                   [RowChange(t, "insert", None, r) for r in rows])
    two = Executed("UPDATE big.items, big.log SET ...", Context(db="big", timestamp=TS),
                   [RowChange(t, "update", rows[0], dict(rows[0], name="z")),
                    RowChange(other, "insert", None, {"k": 1, "v": "a"})])
    altered = TableInfo("big", "log", (*other.columns, ColumnInfo("w", "INT")),
                        primary_key=("k",))
    after_alter = Executed("INSERT INTO big.log VALUES (2, 'b', 3)",
                           Context(db="big", timestamp=TS),
                           [RowChange(altered, "insert", None, {"k": 2, "v": "b", "w": 3})])
    path = tmp_path / "binlog.000001"
    write_binlog(path, [Transaction([big, two]), Transaction([after_alter])], fmt="row",
                 flavor=flavor, timestamp=TS)
    events = list(BinlogReader(path))
    writes = [e for e in events if e.type_name.startswith("WRITE_ROWS")]
    assert len(writes) > 3
    assert all(len(e.body.rows) <= 8192 for e in writes)
    first_stmt = writes[:-2]
    assert [bool(e.body.flags & 1) for e in first_stmt] == [False] * (len(first_stmt) - 1) + [True]
    maps = [(e.body.table, e.body.table_id) for e in events if e.type_name == "TABLE_MAP"]
    assert [m[0] for m in maps] == [b"items", b"items", b"log", b"log"]
    assert maps[2][1] != maps[3][1]
    decoded = [(r.before, r.after) for re_ in row_events(path) for r in re_.rows]
    assert decoded == [(ch.before, ch.after) for s in (big, two, after_alter)
                       for ch in s.changes]
    if flavor == "mariadb":
        exe = _mariadb_binlog()
        run = subprocess.run([exe, "--no-defaults", "-vv", str(path)], capture_output=True,
                             text=True, errors="replace", timeout=60, check=False)
    else:
        run = _mysqlbinlog(request.getfixturevalue("sid_root"), path, "-vv")
    _assert_clean(run)
    assert run.stdout.count("### INSERT INTO `big`.`items`") == 300
    assert run.stdout.count("### INSERT INTO `big`.`log`") == 2
