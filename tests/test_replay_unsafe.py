"""binlogkit.replay.unsafe: unit tests, and agreement with real servers that
run with binlog_format=MIXED (unsafe statement -> row events, safe statement
-> a QUERY event with its text)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from binlogkit.io.reader import BinlogReader
from binlogkit.replay.model import ColumnInfo, TableInfo
from binlogkit.replay.unsafe import (
    CODES,
    WARNING_PREFIX,
    Flavor,
    Reason,
    reason,
    tokenize,
    unsafe,
)


def _t(name: str, cols: list[str], pk: tuple[str, ...] = (), auto: str | None = None,
       indexes: dict[str, tuple[str, ...]] | None = None,
       unique: tuple[str, ...] = ()) -> TableInfo:
    return TableInfo(
        "uu", name,
        tuple(ColumnInfo(c, "INT", auto_increment=c == auto) for c in cols),
        pk, dict(indexes or {}), frozenset(unique))


# The tables the server tests create, described for unsafe().
TABLES = {
    "uu.t": _t("t", ["id", "v", "w", "limit_x"], ("id",)),
    "uu.tu": _t("tu", ["id", "u", "v"], ("id",), indexes={"u": ("u",)}, unique=("u",)),
    "uu.tu1": _t("tu1", ["id", "v"], ("id",)),
    "uu.tai": _t("tai", ["id", "v"], ("id",), auto="id"),
    "uu.tnf2": _t("tnf2", ["a", "id", "v"], ("a", "id"), auto="id"),
    "uu.tnk": _t("tnk", ["a", "v"]),
    "uu.r": _t("r", ["a", "v"]),
}
SETUP = [
    "DROP DATABASE IF EXISTS uu",
    "CREATE DATABASE uu",
    "USE uu",
    "CREATE TABLE t (id INT PRIMARY KEY, v INT, w INT, limit_x INT DEFAULT 0)",
    "CREATE TABLE tu (id INT PRIMARY KEY, u INT UNIQUE, v INT)",
    "CREATE TABLE tu1 (id INT PRIMARY KEY, v INT)",
    "CREATE TABLE tai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
    "CREATE TABLE tnf2 (a INT, id INT AUTO_INCREMENT, v INT, PRIMARY KEY (a, id)) ENGINE=MyISAM",
    "CREATE TABLE tnk (a INT, v INT)",
    "CREATE TABLE r (a DOUBLE, v INT)",
    "INSERT INTO t (id, v, w) VALUES (1, 1, 1), (2, 2, 2), (3, 3, 3)",
    "INSERT INTO tu VALUES (1, 1, 1), (2, 2, 2)",
    "INSERT INTO tu1 VALUES (1, 1)",
    "INSERT INTO tai (v) VALUES (1), (2)",
    "INSERT INTO tnf2 (a, v) VALUES (1, 1)",
    "INSERT INTO tnk VALUES (1, 1), (2, 2)",
]

SF = ["SYSTEM_FUNCTION"]
SV = ["SYSTEM_VARIABLE"]
SAME = object()  # MySQL 9.7 agrees with MariaDB 10.11
NA = None  # not valid SQL on MySQL 9.7

# (statement, reasons on MariaDB 10.11, reasons on MySQL 9.7), all measured.
CASES: list[tuple[str, list[str], Any]] = [
    # LIMIT: unsafe even with ORDER BY on the primary key; LIMIT 0 is safe on MariaDB
    ("UPDATE t SET v = v + 1 LIMIT 1", ["LIMIT"], SAME),
    ("DELETE FROM t ORDER BY id LIMIT 1", ["LIMIT"], SAME),
    ("INSERT INTO tnk SELECT id, v FROM t ORDER BY id LIMIT 2", ["LIMIT"], SAME),
    ("UPDATE t SET v = 9 WHERE id = (SELECT id FROM tu ORDER BY id LIMIT 1)", ["LIMIT"], SAME),
    ("INSERT INTO tnk SELECT id, v FROM t ORDER BY id FETCH FIRST 1 ROWS ONLY", ["LIMIT"], NA),
    ("INSERT INTO tnk SELECT id, v FROM t LIMIT 0", [], ["LIMIT"]),
    # system functions
    ("INSERT INTO r VALUES (LENGTH(UUID()), 1)", SF, SAME),
    ("INSERT INTO r VALUES (UUID_SHORT() % 7, 1)", SF, SAME),
    ("INSERT INTO r VALUES (UNIX_TIMESTAMP(SYSDATE()) * 0, 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(USER()), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(CURRENT_USER), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(SESSION_USER()), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(SYSTEM_USER()), 1)", SF, SAME),
    ("INSERT INTO r VALUES (FOUND_ROWS(), 1)", SF, SAME),
    ("INSERT INTO r VALUES (ROW_COUNT(), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(LOAD_FILE('/nonexistent')), 1)", SF, SAME),
    ("INSERT INTO r VALUES (SLEEP(0), 1)", SF, SAME),
    ("INSERT INTO r VALUES (GET_LOCK('unsafe_test', 0), RELEASE_LOCK('unsafe_test'))", SF, SAME),
    ("INSERT INTO r VALUES (IS_FREE_LOCK('x'), IS_USED_LOCK('x') IS NULL)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(VERSION()), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(RANDOM_BYTES(4)), 1)", SF, SAME),
    ("INSERT INTO r VALUES (LENGTH(CURRENT_ROLE()), 1)", SF, []),
    ("INSERT INTO r VALUES (LENGTH(SYS_GUID()), 1)", SF, NA),
    ("UPDATE t SET v = FLOOR(RAND() * 0) WHERE id = 1", SF, SAME),
    ("REPLACE INTO tu1 VALUES (1, RAND() * 0)", SF, SAME),
    ("INSERT INTO r VALUES (RAND(), 1)", [], SF),  # MariaDB: RAND is safe in INSERT
    ("INSERT INTO r SELECT RAND(), v FROM t", [], SF),
    # system variables: only the session variables a QUERY event carries are safe
    ("INSERT INTO r VALUES (@@server_id, 1)", SV, SAME),
    ("INSERT INTO r VALUES (@@global.auto_increment_increment, 1)", SV, SAME),
    ("INSERT INTO r VALUES (@@sql_mode = '', 1)", SV, SAME),
    ("INSERT INTO r VALUES (@@insert_id, 1)", SV, SAME),
    ("INSERT INTO r VALUES (@@session.auto_increment_increment, @@foreign_key_checks)", [], SAME),
    ("INSERT INTO r VALUES (@@time_zone = 'SYSTEM', @@`unique_checks`)", [], SAME),
    # statement shapes
    ("INSERT INTO tu VALUES (3, 1, 5) ON DUPLICATE KEY UPDATE v = v + 1",
     ["INSERT_TWO_KEYS"], SAME),
    ("INSERT INTO tu1 VALUES (1, 5) ON DUPLICATE KEY UPDATE v = v + 1", [], SAME),
    ("INSERT INTO tai (v) SELECT v FROM t", ["WRITE_AUTOINC_SELECT"], SAME),
    ("UPDATE tai SET v = (SELECT MAX(v) FROM t) WHERE id = 1", ["WRITE_AUTOINC_SELECT"], SAME),
    ("UPDATE tai, t SET tai.v = t.v + 10 WHERE tai.id = t.id", ["WRITE_AUTOINC_SELECT"], SAME),
    ("UPDATE t, tai SET t.v = tai.v + 10 WHERE tai.id = t.id", [], SAME),
    ("INSERT INTO tai (v) SELECT 5", [], SAME),
    ("INSERT INTO tai (v) VALUES (7)", [], SAME),
    ("INSERT INTO t (id, v) SELECT id + 100, v FROM tai", [], SAME),
    ("INSERT IGNORE INTO tu1 SELECT id, v FROM t", ["INSERT_IGNORE_SELECT"], SAME),
    ("INSERT INTO tu1 SELECT id, v FROM t ON DUPLICATE KEY UPDATE v = tu1.v + 1",
     ["INSERT_SELECT_UPDATE"], SAME),
    ("REPLACE INTO tu1 SELECT id, v FROM t", ["REPLACE_SELECT"], SAME),
    ("REPLACE INTO tai SELECT id, v + 1 FROM tai",
     ["WRITE_AUTOINC_SELECT", "REPLACE_SELECT"], SAME),
    ("REPLACE INTO tu VALUES (1, 1, 9)", [], SAME),
    ("UPDATE IGNORE t SET v = v + 1", ["UPDATE_IGNORE"], SAME),
    ("INSERT INTO tnf2 (a, v) VALUES (5, 5)", ["AUTOINC_NOT_FIRST"], SAME),
    ("UPDATE tnf2 SET v = v + 1", ["AUTOINC_NOT_FIRST"], SAME),
    ("CREATE TABLE c1 (id INT PRIMARY KEY, v INT) IGNORE SELECT id, v FROM t",
     ["CREATE_IGNORE_SELECT"], SAME),
    ("CREATE TABLE c2 (id INT PRIMARY KEY, v INT) REPLACE SELECT id, v FROM t",
     ["CREATE_REPLACE_SELECT"], SAME),
    ("CREATE TABLE c3 (id INT AUTO_INCREMENT PRIMARY KEY, v INT) SELECT v FROM t",
     ["WRITE_AUTOINC_SELECT", "CREATE_SELECT_AUTOINC"], SAME),
    ("CREATE TABLE c4 SELECT * FROM tai", [], SAME),
    ("INSERT INTO tnk SELECT COUNT(*), 1 FROM mysql.general_log", ["SYSTEM_TABLE"], SAME),
    ("INSERT INTO tnk SELECT COUNT(*), 1 FROM mysql.user", [], ["ACL_TABLE_READ_IN_DML_DDL"]),
    ("INSERT INTO tnk SELECT id, v FROM t WHERE id < 3 FOR UPDATE SKIP LOCKED",
     ["SKIP_LOCKED"], SAME),
    ("INSERT INTO tnk SELECT id, v FROM t WHERE id < 3 FOR UPDATE NOWAIT", [], ["NOWAIT"]),
    # safe controls and false-positive traps
    ("UPDATE t SET v = v + 1 WHERE id = 1", [], SAME),
    ("DELETE FROM t WHERE id = 1", [], SAME),
    ("UPDATE t SET limit_x = limit_x + 1 WHERE id = 2", [], SAME),
    ("INSERT INTO tnk VALUES (LENGTH('RAND() UUID() LIMIT 1 @@server_id'), 1)", [], SAME),
    ("INSERT INTO tnk VALUES (1, 2) /* UUID() SYSDATE() LIMIT 1 */", [], SAME),
    ("INSERT INTO tnk VALUES (NOW() > 0, CONNECTION_ID() > 0)", [], SAME),
    ("INSERT INTO tnk VALUES (LAST_INSERT_ID(), @user_var)", [], SAME),
    ("INSERT INTO tnk SELECT id, v FROM t WHERE v IN (SELECT v FROM tu)", [], SAME),
]


def _ids(cases: list[tuple[str, list[str], Any]]) -> list[str]:
    return [c[0][:60] for c in cases]


def codes(sql: str, flavor: Flavor = "mariadb", **kw: Any) -> list[str]:
    return [r.code for r in unsafe(sql, TABLES, db="uu", flavor=flavor, **kw)]


def mysql_expected(maria: list[str], mysql: Any) -> list[str] | None:
    return maria if mysql is SAME else mysql


# -- unit tests ------------------------------------------------------------


@pytest.mark.parametrize(("sql", "expected", "mysql"), CASES, ids=_ids(CASES))
def test_cases_mariadb(sql: str, expected: list[str], mysql: Any) -> None:
    assert codes(sql) == expected


@pytest.mark.parametrize(("sql", "expected", "mysql"), CASES, ids=_ids(CASES))
def test_cases_mysql(sql: str, expected: list[str], mysql: Any) -> None:
    exp = mysql_expected(expected, mysql)
    if exp is None:
        pytest.skip("not MySQL syntax")
    assert codes(sql, "mysql") == exp


def test_reason_fields() -> None:
    (r,) = unsafe("DELETE FROM t LIMIT 1")
    assert r == Reason(
        "LIMIT", "BINLOG_STMT_UNSAFE_LIMIT",
        "The statement is unsafe because it uses a LIMIT clause. This is unsafe "
        "because the set of rows included cannot be predicted", 1668)
    assert r.error_name == "ER_BINLOG_UNSAFE_LIMIT"
    assert r.warning == WARNING_PREFIX + r.message
    (m,) = unsafe("DELETE FROM t LIMIT 1", flavor="mysql")
    assert m.message.endswith("cannot be predicted.")
    assert reason("SYSTEM_FUNCTION", "mysql").message.endswith("on the replica.")
    assert "slave" in reason("SYSTEM_FUNCTION").message
    with pytest.raises(KeyError):
        reason("NOWAIT")  # MySQL only
    assert CODES[0] == "LIMIT"


def test_traps() -> None:
    assert codes("UPDATE t SET v = 1 WHERE id = 1 -- LIMIT 1\n") == []
    assert codes("UPDATE t SET v = 1 WHERE id = 1 # UUID()") == []
    assert codes("UPDATE t SET v = 'it''s RAND()' WHERE id = 1") == []
    assert codes("UPDATE t SET v = \"a \\\" UUID()\" WHERE id = 1") == []
    assert codes("UPDATE t SET `limit` = 1, `uuid` = 2, limit_x = 3 WHERE id = 1") == []
    assert codes("UPDATE t SET v = @uuid WHERE id = 1") == []
    assert codes("UPDATE t SET v = mydb.uuid() WHERE id = 1") == []  # a stored function
    assert codes("UPDATE t SET v = 1 /*! LIMIT 1 */") == ["LIMIT"]  # runs on the server
    assert codes("UPDATE t SET v = 1 /*M!100000 LIMIT 1 */") == ["LIMIT"]
    assert codes("UPDATE t SET v = uuid () WHERE id = 1") == SF


def test_udf_and_non_dml() -> None:
    assert codes("INSERT INTO tnk VALUES (udf_seven(), 1)", udfs={"UDF_SEVEN"}) == ["UDF"]
    # without udfs it is taken for a stored function, which is not looked into
    assert codes("INSERT INTO tnk VALUES (udf_seven(), 1)") == []
    for sql in ("SELECT UUID() LIMIT 1", "SET @x = UUID()", "DO SLEEP(1)", "", "  ;  ",
                "CREATE TABLE x (id INT AUTO_INCREMENT PRIMARY KEY)",
                "CREATE TABLE x LIKE tai"):
        assert unsafe(sql) == [], sql


def test_table_lookup() -> None:
    sql = "INSERT INTO tu VALUES (1, 1, 1) ON DUPLICATE KEY UPDATE v = 1"
    assert unsafe(sql) == []  # no table knowledge: no key rules
    assert [r.code for r in unsafe(sql, {"tu": TABLES["uu.tu"]})] == ["INSERT_TWO_KEYS"]
    assert [r.code for r in unsafe(sql.replace("tu", "uu.tu", 1), TABLES)] == ["INSERT_TWO_KEYS"]
    assert [r.code for r in unsafe(sql, TABLES.get, db="uu")] == ["INSERT_TWO_KEYS"]
    # a table with two UNIQUE keys and no primary key
    two = _t("w2", ["a", "b"], indexes={"a": ("a",), "b": ("b",)}, unique=("a", "b"))
    assert [r.code for r in unsafe(
        "INSERT INTO w2 VALUES (1, 2) ON DUPLICATE KEY UPDATE a = 1", {"w2": two})] \
        == ["INSERT_TWO_KEYS"]
    # AUTO_INCREMENT second in the primary key but first in another key: safe (InnoDB)
    ok = _t("nf", ["a", "id"], ("a", "id"), auto="id", indexes={"id": ("id",)})
    assert unsafe("INSERT INTO nf (a) VALUES (1)", {"nf": ok}) == []
    # a CTE name is not a table
    assert codes("WITH c AS (SELECT 1 AS v) UPDATE tai, c SET tai.v = c.v", "mysql") == []
    # unqualified SET column resolved through the table info
    assert codes("UPDATE tai, t SET w = tai.v WHERE tai.id = t.id") == []
    assert codes("UPDATE tai JOIN t ON tai.id = t.id SET tai.v = w") == ["WRITE_AUTOINC_SELECT"]


def test_tokenizer() -> None:
    toks = list(tokenize("SELECT `a``b`, 'x\\'y', @@GLOBAL.Sql_Mode, @v, 1.5e3, x->>'$.a' -- c"))
    assert [(t.kind, t.value) for t in toks] == [
        ("word", "select"), ("qword", "a`b"), ("op", ","), ("str", "'x\\'y'"), ("op", ","),
        ("sysvar", "global.sql_mode"), ("op", ","), ("uservar", "@v"), ("op", ","),
        ("num", "1.5e3"), ("op", ","), ("word", "x"), ("op", "->>"), ("str", "'$.a'")]


# -- agreement with servers in MIXED format --------------------------------

ROW_EVENTS = ("WRITE_ROWS", "UPDATE_ROWS", "DELETE_ROWS")


def _logged(server: Any, sql: str) -> tuple[int, list[str], int]:
    """Run ``sql`` after SETUP; (row events, QUERY texts) it was logged with,
    and the rows it affected."""
    conn = server.connect()
    try:
        cur = conn.cursor()
        for s in SETUP:
            cur.execute(s)
        cur.execute("SHOW BINARY LOG STATUS" if server.flavor == "mysql" else "SHOW MASTER STATUS")
        name, pos = cur.fetchone()[:2]
        affected = cur.execute(sql)
    finally:
        conn.close()
    path = next(p for p in server.binlog_files() if p.name == name)
    rows, queries = 0, []
    for ev in BinlogReader(path):
        if ev.pos < pos:
            continue
        if any(k in ev.type_name for k in ROW_EVENTS):
            rows += 1
        elif ev.type_name == "QUERY":
            text = ev.body.query
            queries.append(text.decode() if isinstance(text, bytes) else text)
    return rows, queries, affected


def _check(server: Any, sql: str, expected: list[str]) -> None:
    rows, queries, affected = _logged(server, sql)
    if expected:  # row format; a statement that changed nothing logs nothing
        assert (rows > 0 or affected == 0) and sql not in queries, (rows, queries)
    else:
        assert rows == 0 and sql in queries, (rows, queries)


@pytest.fixture(scope="module")
def mixed_mariadb(server_factory: Any) -> Any:
    return server_factory("mariadb", binlog_format="MIXED")


@pytest.fixture(scope="module")
def mixed_mysql(server_factory: Any) -> Any:
    return server_factory("mysql", binlog_format="MIXED")


@pytest.mark.parametrize(("sql", "expected", "mysql"), CASES, ids=_ids(CASES))
def test_mariadb_mixed_agrees(mixed_mariadb: Any, sql: str, expected: list[str],
                              mysql: Any) -> None:
    assert codes(sql) == expected
    _check(mixed_mariadb, sql, expected)


@pytest.mark.parametrize(("sql", "expected", "mysql"), CASES, ids=_ids(CASES))
def test_mysql_mixed_agrees(mixed_mysql: Any, sql: str, expected: list[str], mysql: Any) -> None:
    exp = mysql_expected(expected, mysql)
    if exp is None:
        pytest.skip("not MySQL syntax")
    assert codes(sql, "mysql") == exp
    _check(mixed_mysql, sql, exp)


UDF_C = r"""
typedef struct { char maybe_null; unsigned int decimals; unsigned long max_length;
                 char *ptr; char const_item; void *extension; } UDF_INIT;
typedef struct UDF_ARGS UDF_ARGS;
char udf_seven_init(UDF_INIT *i, UDF_ARGS *a, char *m) { (void)i; (void)a; (void)m; return 0; }
void udf_seven_deinit(UDF_INIT *i) { (void)i; }
long long udf_seven(UDF_INIT *i, UDF_ARGS *a, char *n, char *e)
{ (void)i; (void)a; (void)n; (void)e; return 7; }
"""


def test_udf_mariadb_mixed(server_factory: Any, tmp_path_factory: Any) -> None:
    """A loadable function (CREATE FUNCTION ... SONAME) makes MIXED log rows."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build a UDF")
    plugin_dir: Path = tmp_path_factory.mktemp("udf")
    src = plugin_dir / "udf_seven.c"
    src.write_text(UDF_C)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugin_dir / "udf_seven.so"), str(src)],
                   check=True)
    server = server_factory("mariadb", binlog_format="MIXED", plugin_dir=str(plugin_dir))
    server.execute("CREATE FUNCTION IF NOT EXISTS udf_seven RETURNS INTEGER SONAME 'udf_seven.so'")
    sql = "INSERT INTO tnk VALUES (udf_seven(), 1)"
    assert codes(sql, udfs={"udf_seven"}) == ["UDF"]
    _check(server, sql, ["UDF"])
    # a stored function is not a UDF: statement format
    server.execute(["CREATE DATABASE IF NOT EXISTS uf",
                    "CREATE FUNCTION IF NOT EXISTS uf.three() RETURNS INT DETERMINISTIC RETURN 3"])
    sql = "INSERT INTO tnk VALUES (uf.three(), 1)"
    assert codes(sql, udfs={"udf_seven"}) == []
    _check(server, sql, [])
