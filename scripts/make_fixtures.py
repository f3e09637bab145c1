#!/usr/bin/env python3
"""Generate the fixture binlogs in fixtures/ from live MariaDB and MySQL servers.

Each workload starts a private server with its own options (binlogkit.lab),
runs a fixed SQL workload, closes the binlog with FLUSH BINARY LOGS and copies
the closed files to ``fixtures/<flavor>/<workload>.00000N``. The top-level
event types of every file are checked against what the workload promises, the
reference decoder (mariadb-binlog / MySQL's mysqlbinlog in the sid root) must
read every file, and ``fixtures/manifest.json`` records flavor, version,
options, what each file exercises and its event counts.

    python scripts/make_fixtures.py                # all workloads
    python scripts/make_fixtures.py mysql-tagged   # some of them (manifest is merged)

See fixtures/README.md for the workloads.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binlogkit.lab import Flavor, Server, run_in_sid, sid_path, sid_root, start_server

REPO = Path(__file__).resolve().parent.parent
OTHER_UUID = "11111111-2222-3333-4444-555555555555"
BIG_ROWS = 2500

EVENT_NAMES = {
    1: "START_V3", 2: "QUERY", 3: "STOP", 4: "ROTATE", 5: "INTVAR", 6: "LOAD", 8: "CREATE_FILE",
    9: "APPEND_BLOCK", 10: "EXEC_LOAD", 11: "DELETE_FILE", 12: "NEW_LOAD", 13: "RAND",
    14: "USER_VAR", 15: "FORMAT_DESCRIPTION", 16: "XID", 17: "BEGIN_LOAD_QUERY",
    18: "EXECUTE_LOAD_QUERY", 19: "TABLE_MAP", 23: "WRITE_ROWS_V1", 24: "UPDATE_ROWS_V1",
    25: "DELETE_ROWS_V1", 26: "INCIDENT", 27: "HEARTBEAT", 28: "IGNORABLE", 29: "ROWS_QUERY",
    30: "WRITE_ROWS", 31: "UPDATE_ROWS", 32: "DELETE_ROWS", 33: "GTID", 34: "ANONYMOUS_GTID",
    35: "PREVIOUS_GTIDS", 36: "TRANSACTION_CONTEXT", 37: "VIEW_CHANGE", 38: "XA_PREPARE",
    39: "PARTIAL_UPDATE_ROWS", 40: "TRANSACTION_PAYLOAD", 41: "HEARTBEAT_V2", 42: "GTID_TAGGED",
    160: "ANNOTATE_ROWS", 161: "BINLOG_CHECKPOINT", 162: "MARIADB_GTID", 163: "GTID_LIST",
    164: "START_ENCRYPTION", 165: "QUERY_COMPRESSED", 166: "WRITE_ROWS_COMPRESSED_V1",
    167: "UPDATE_ROWS_COMPRESSED_V1", 168: "DELETE_ROWS_COMPRESSED_V1",
    169: "WRITE_ROWS_COMPRESSED", 170: "UPDATE_ROWS_COMPRESSED", 171: "DELETE_ROWS_COMPRESSED",
}


# --- a session on one connection ------------------------------------------------------


class Session:
    """One client connection; session variables persist across ``sql`` calls."""

    def __init__(self, srv: Server) -> None:
        self.srv = srv
        self.flavor = srv.flavor
        self.major = int(srv.version.split(".")[0])
        self.conn = srv.connect()
        self.cur = self.conn.cursor()
        self.sql("SET SESSION time_zone = '+00:00'")

    def sql(self, *statements: str) -> None:
        for stmt in statements:
            try:
                self.cur.execute(stmt)
            except Exception as exc:
                raise RuntimeError(f"{self.flavor}: {stmt[:200]}: {exc}") from exc
            self.cur.fetchall()

    def value(self, query: str) -> Any:
        self.cur.execute(query)
        row = self.cur.fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.conn.close()


# --- building blocks ------------------------------------------------------------------

# (name, type, typical, max, min, zero) -- SQL literals
COMMON_COLUMNS: list[tuple[str, str, str, str, str, str]] = [
    ("ti", "TINYINT", "-1", "127", "-128", "0"),
    ("tiu", "TINYINT UNSIGNED", "1", "255", "0", "0"),
    ("si", "SMALLINT", "-300", "32767", "-32768", "0"),
    ("siu", "SMALLINT UNSIGNED", "300", "65535", "0", "0"),
    ("mi", "MEDIUMINT", "-70000", "8388607", "-8388608", "0"),
    ("miu", "MEDIUMINT UNSIGNED", "70000", "16777215", "0", "0"),
    ("i", "INT", "-100000", "2147483647", "-2147483648", "0"),
    ("iu", "INT UNSIGNED", "100000", "4294967295", "0", "0"),
    ("bi", "BIGINT", "-5000000000", "9223372036854775807", "-9223372036854775808", "0"),
    ("biu", "BIGINT UNSIGNED", "5000000000", "18446744073709551615", "0", "0"),
    ("d0", "DECIMAL(5,0)", "12345", "99999", "-99999", "0"),
    ("d1", "DECIMAL(10,2)", "-123.45", "99999999.99", "-99999999.99", "0.00"),
    ("d2", "DECIMAL(30,10)", "'-12345678901234567890.1234567890'",
     "'99999999999999999999.9999999999'", "'-99999999999999999999.9999999999'", "0"),
    ("d3", "DECIMAL(65,30)", "'3.141592653589793238462643383279'",
     "'" + "9" * 35 + "." + "9" * 30 + "'", "'-" + "9" * 35 + "." + "9" * 30 + "'", "0"),
    ("f", "FLOAT", "1.5", "3.40282e38", "-3.40282e38", "0"),
    ("dbl", "DOUBLE", "-2.25", "1.7976931348623157e308", "-1.7976931348623157e308", "0"),
    ("dt", "DATE", "'2024-02-29'", "'9999-12-31'", "'1000-01-01'", "'1970-01-01'"),
    ("tm", "TIME", "'12:34:56'", "'838:59:59'", "'-838:59:59'", "'00:00:00'"),
    ("tm3", "TIME(3)", "'-01:02:03.456'", "'838:59:58.999'", "'-838:59:58.999'", "'00:00:00'"),
    ("tm6", "TIME(6)", "'-00:00:01.000001'", "'838:59:58.999999'", "'-838:59:58.999999'",
     "'00:00:00'"),
    ("dtm", "DATETIME", "'2024-02-29 12:34:56'", "'9999-12-31 23:59:59'",
     "'1000-01-01 00:00:00'", "'1970-01-01 00:00:00'"),
    ("dtm1", "DATETIME(1)", "'2024-02-29 12:34:56.7'", "'9999-12-31 23:59:59.9'",
     "'1000-01-01 00:00:00.0'", "'1970-01-01 00:00:00'"),
    ("dtm4", "DATETIME(4)", "'2024-02-29 12:34:56.7891'", "'9999-12-31 23:59:59.9999'",
     "'1000-01-01 00:00:00.0001'", "'1970-01-01 00:00:00'"),
    ("dtm6", "DATETIME(6)", "'2024-02-29 12:34:56.123456'", "'9999-12-31 23:59:59.999999'",
     "'1000-01-01 00:00:00.000001'", "'1970-01-01 00:00:00'"),
    ("ts", "TIMESTAMP NULL", "'2024-02-29 12:34:56'", "'2038-01-19 03:14:07'",
     "'1970-01-01 00:00:01'", "'1970-01-01 00:00:01'"),
    ("ts2", "TIMESTAMP(2) NULL", "'2024-02-29 12:34:56.25'", "'2038-01-19 03:14:07.99'",
     "'1970-01-01 00:00:01.01'", "'1970-01-01 00:00:01'"),
    ("ts6", "TIMESTAMP(6) NULL", "'2024-02-29 12:34:56.5'", "'2038-01-19 03:14:07.999999'",
     "'1970-01-01 00:00:01.000001'", "'1970-01-01 00:00:01'"),
    ("y", "YEAR", "2024", "2155", "1901", "0"),
    ("c", "CHAR(10)", "'héllo'", "'" + "ÿ" * 10 + "'", "' '", "''"),
    ("c70", "CHAR(70)", "'ŝ✓'", "'" + "😀" * 70 + "'", "'a'", "''"),
    ("vc", "VARCHAR(300)", "'wörld ✓ 😀'", "'" + "😀" * 300 + "'", "'a'", "''"),
    ("cl", "CHAR(10) CHARACTER SET latin1", "'café'", "'ÿÿÿÿÿÿÿÿÿÿ'", "'a'", "''"),
    ("vcl", "VARCHAR(50) CHARACTER SET latin1", "'naïve'", "'" + "é" * 50 + "'", "'a'",
     "''"),
    ("cb", "CHAR(4) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", "'AbC'", "'ZZZZ'", "'a'",
     "''"),
    ("tx", "TEXT", "'text … ✓'", "REPEAT('é', 300)", "'a'", "''"),
    ("ttx", "TINYTEXT CHARACTER SET latin1", "'tiny'", "REPEAT('x', 255)", "'a'", "''"),
    ("mtx", "MEDIUMTEXT", "'medium'", "REPEAT('m', 1000)", "'a'", "''"),
    ("ltx", "LONGTEXT", "'long'", "REPEAT('l', 1000)", "'a'", "''"),
    ("bn", "BINARY(4)", "x'00010203'", "x'ffffffff'", "x'00'", "''"),
    ("vb", "VARBINARY(20)", "x'ff00ff'", "REPEAT(x'ff', 20)", "x'00'", "''"),
    ("tbl", "TINYBLOB", "x'01'", "REPEAT(x'aa', 255)", "x'00'", "''"),
    ("bl", "BLOB", "x'deadbeef'", "REPEAT(x'bb', 1000)", "x'00'", "''"),
    ("mbl", "MEDIUMBLOB", "'mb'", "REPEAT(x'cc', 1000)", "x'00'", "''"),
    ("lbl", "LONGBLOB", "'lb'", "REPEAT(x'dd', 1000)", "x'00'", "''"),
    ("e", "ENUM('a','b','c')", "'b'", "'c'", "'a'", "'a'"),
    ("e2", "ENUM(" + ",".join(f"'v{i}'" for i in range(300)) + ")", "'v7'", "'v299'", "'v0'",
     "'v0'"),
    ("s", "SET('x','y','z')", "'x,z'", "'x,y,z'", "''", "''"),
    ("s2", "SET(" + ",".join(f"'f{i}'" for i in range(20)) + ")", "'f1,f9,f17'",
     "'" + ",".join(f"f{i}" for i in range(20)) + "'", "''", "''"),
    ("b1", "BIT(1)", "b'1'", "b'1'", "b'0'", "b'0'"),
    ("b13", "BIT(13)", "b'1010101010101'", "b'1111111111111'", "b'0'", "b'0'"),
    ("b64", "BIT(64)", "b'1" + "0" * 62 + "1'", "x'ffffffffffffffff'", "b'0'", "b'0'"),
    ("g", "GEOMETRY", "ST_GeomFromText('POINT(1 2)')",
     "ST_GeomFromText('LINESTRING(0 0,1 1,2 3)')",
     "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')", "ST_GeomFromText('POINT(0 0)')"),
]
JSON_DOC = ('\'{"a": 1, "b": [true, false, null, 1.5, "x"], "c": {"d": "é", "e": 12345678901234},'
            ' "long": "' + "j" * 60 + '"}\'')
MYSQL_COLUMNS = [
    ("j", "JSON", JSON_DOC, "'[1, 2.5, \"s\", {\"k\": []}]'", "'\"scalar\"'", "'{}'"),
]
MYSQL9_COLUMNS = [
    ("v", "VECTOR(3)", "STRING_TO_VECTOR('[1.5, -2, 3]')", "STRING_TO_VECTOR('[3e38, 0, -3e38]')",
     "STRING_TO_VECTOR('[0, 0, 0]')", "STRING_TO_VECTOR('[0, 0, 0]')"),
]
MARIADB_COLUMNS = [
    ("j", "JSON", JSON_DOC, "'[1, 2.5]'", "'\"scalar\"'", "'{}'"),
    ("u", "UUID", "'123e4567-e89b-12d3-a456-426614174000'",
     "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'00000000-0000-0000-0000-000000000001'",
     "'00000000-0000-0000-0000-000000000000'"),
    ("ip", "INET6", "'2001:db8::1'", "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'",
     "'::ffff:192.0.2.1'", "'::'"),
]


def columns(s: Session) -> list[tuple[str, str, str, str, str, str]]:
    if s.flavor == "mariadb":
        return COMMON_COLUMNS + MARIADB_COLUMNS
    return COMMON_COLUMNS + MYSQL_COLUMNS + (MYSQL9_COLUMNS if s.major >= 9 else [])


def create_schema(s: Session) -> None:
    """The database and the small tables most workloads use."""
    s.sql(
        "CREATE DATABASE fx CHARACTER SET utf8mb4",
        "USE fx",
        "CREATE TABLE fx.notes (id INT AUTO_INCREMENT PRIMARY KEY, txt VARCHAR(200),"
        " n INT NOT NULL DEFAULT 0) ENGINE=InnoDB",
    )


def ddl(s: Session) -> None:
    """Assorted DDL: ALTER, indexes, RENAME, view, procedure, trigger, TRUNCATE, DROP."""
    s.sql(
        "CREATE TABLE fx.ddl_t (id INT PRIMARY KEY, a VARCHAR(10)) ENGINE=InnoDB",
        "ALTER TABLE fx.ddl_t ADD COLUMN b INT NOT NULL DEFAULT 7, ADD INDEX idx_a (a)",
        "CREATE INDEX idx_b ON fx.ddl_t (b)",
        "RENAME TABLE fx.ddl_t TO fx.ddl_t2",
        "CREATE VIEW fx.v AS SELECT id, a FROM fx.ddl_t2",
        "CREATE PROCEDURE fx.p(IN x INT) SELECT x + 1",
        "CREATE TRIGGER fx.trg BEFORE INSERT ON fx.ddl_t2 FOR EACH ROW SET NEW.b = NEW.b + 1",
        "INSERT INTO fx.ddl_t2 (id, a) VALUES (1, 'x'), (2, 'y')",
        "TRUNCATE TABLE fx.ddl_t2",
        "DROP TRIGGER fx.trg",
        "DROP PROCEDURE fx.p",
        "DROP VIEW fx.v",
        "DROP TABLE fx.ddl_t2",
        "CREATE DATABASE fx_tmp",
        "DROP DATABASE fx_tmp",
    )


def types_dml(s: Session, *, big: bool = True) -> None:
    """Table fx.types with every column type; rows: typical, max, min, zero, NULL, big."""
    cols = columns(s)
    defs = ",\n ".join(f"{n} {t}" for n, t, *_ in cols)
    s.sql(f"CREATE TABLE fx.types (id INT UNSIGNED NOT NULL PRIMARY KEY,\n {defs}\n)"
          " ENGINE=InnoDB")
    names = ", ".join(n for n, *_ in cols)
    for row_id, idx in ((1, 2), (2, 3), (3, 4), (4, 5)):
        values = ", ".join(c[idx] for c in cols)
        s.sql(f"INSERT INTO fx.types (id, {names}) VALUES ({row_id}, {values})")
    s.sql("INSERT INTO fx.types (id) VALUES (5)")  # all NULL
    if big:  # one row bigger than binlog_row_event_max_size (8 KiB)
        s.sql("INSERT INTO fx.types (id, tx, mbl, vc) VALUES "
              "(6, REPEAT('big é ', 1500), REPEAT(x'0123456789', 1000), 'big')")
    s.sql(
        "UPDATE fx.types SET i = i + 1, vc = CONCAT(vc, '+'), dtm6 = '2001-02-03 04:05:06.07',"
        " e = 'c', s = 'y', b13 = b'11' WHERE id IN (1, 3)",
        "UPDATE fx.types SET ti = 5, tx = 'was null' WHERE id = 5",
        "DELETE FROM fx.types WHERE id = 4",
    )


def multi_statement_txn(s: Session) -> None:
    s.sql(
        "BEGIN",
        "INSERT INTO fx.notes (txt, n) VALUES ('txn 1', 1), ('txn 2', 2)",
        "UPDATE fx.notes SET n = n * 10 WHERE txt LIKE 'txn%'",
        "DELETE FROM fx.notes WHERE txt = 'txn 2'",
        "COMMIT",
        "BEGIN",
        "INSERT INTO fx.notes (txt) VALUES ('rolled back')",
        "ROLLBACK",
    )


def non_transactional(s: Session) -> None:
    s.sql(
        "CREATE TABLE fx.myisam (id INT PRIMARY KEY, txt VARCHAR(20)) ENGINE=MyISAM",
        "INSERT INTO fx.myisam VALUES (1, 'non-transactional'), (2, 'engine')",
        "UPDATE fx.myisam SET txt = 'changed' WHERE id = 2",
    )


def xa(s: Session) -> None:
    """XA: two-phase commit, two-phase rollback and one-phase commit."""
    s.sql(
        "XA START 'fx-commit', 'branch-1', 7",
        "INSERT INTO fx.notes (txt) VALUES ('xa committed')",
        "XA END 'fx-commit', 'branch-1', 7",
        "XA PREPARE 'fx-commit', 'branch-1', 7",
        "XA COMMIT 'fx-commit', 'branch-1', 7",
        "XA START 'fx-rollback'",
        "INSERT INTO fx.notes (txt) VALUES ('xa rolled back')",
        "XA END 'fx-rollback'",
        "XA PREPARE 'fx-rollback'",
        "XA ROLLBACK 'fx-rollback'",
        "XA START 'fx-onephase'",
        "INSERT INTO fx.notes (txt) VALUES ('xa one phase')",
        "XA END 'fx-onephase'",
        "XA COMMIT 'fx-onephase' ONE PHASE",
    )


def large_txn(s: Session) -> None:
    """One transaction of BIG_ROWS rows (many rows events in ROW format)."""
    s.sql("SET SESSION cte_max_recursion_depth = 100000" if s.flavor == "mysql"
          else "SET SESSION max_recursive_iterations = 100000")
    s.sql(
        "CREATE TABLE fx.big (id INT PRIMARY KEY, h CHAR(32), pad VARCHAR(40)) ENGINE=InnoDB",
        "BEGIN",
        "INSERT INTO fx.big SELECT n, LEFT(SHA2(n, 256), 32), REPEAT(CHAR(65 + n % 26), 24) FROM"
        f" (WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq"
        f" WHERE n < {BIG_ROWS}) SELECT n FROM seq) AS q",
        "UPDATE fx.big SET pad = 'updated' WHERE id % 500 = 0",
        "COMMIT",
    )


def user_vars(s: Session) -> None:
    """User variables of every type used by statements (USER_VAR events in STATEMENT)."""
    s.sql(
        "CREATE TABLE fx.vars (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(50),"
        " sl VARCHAR(50) CHARACTER SET latin1, b VARBINARY(10), i BIGINT, u BIGINT UNSIGNED,"
        " r DOUBLE, d DECIMAL(20,6), n INT)",
        "SET @s = 'grüße ✓', @sl = CONVERT('café' USING latin1), @b = x'00ff10',"
        " @i = -42, @u = 18446744073709551615, @r = 2.5e-3, @d = 12345.678901, @n = NULL,"
        " @dneg = -0.5, @e = ''",
        "INSERT INTO fx.vars (s, sl, b, i, u, r, d, n) VALUES (@s, @sl, @b, @i, @u, @r, @d, @n)",
        "INSERT INTO fx.vars (s, d) VALUES (@e, @dneg)",
        "UPDATE fx.vars SET i = @i * 2, r = @r + 1 WHERE s = @s",
    )


def rand_and_intvar(s: Session) -> None:
    """RAND() (RAND events), auto-increment (INSERT_ID) and LAST_INSERT_ID() (INTVARs)."""
    s.sql(
        "CREATE TABLE fx.ai (id INT AUTO_INCREMENT PRIMARY KEY, ref INT, x DOUBLE)",
        "INSERT INTO fx.ai (ref, x) VALUES (0, RAND())",
        "INSERT INTO fx.ai (ref) VALUES (LAST_INSERT_ID())",
        "INSERT INTO fx.ai (ref, x) VALUES (LAST_INSERT_ID(), RAND()), (2, RAND())",
        "SET SESSION auto_increment_increment = 5, auto_increment_offset = 3",
        "INSERT INTO fx.ai (ref) VALUES (100), (101)",
        "SET SESSION auto_increment_increment = 1, auto_increment_offset = 1",
        "INSERT INTO fx.ai (id, ref) VALUES (1000, 1)",
    )


def session_status_vars(s: Session) -> None:
    """Statements under non-default session state (query status variables)."""
    s.sql(
        "SET SESSION time_zone = '+05:30'",
        "INSERT INTO fx.notes (txt) VALUES (CONCAT('tz ', NOW()))",
        "SET SESSION time_zone = '+00:00'",
        "SET SESSION lc_time_names = 'de_DE'",
        "INSERT INTO fx.notes (txt) VALUES (DATE_FORMAT('2024-01-01', '%W %M'))",
        "SET SESSION lc_time_names = 'en_US'",
        "SET SESSION sql_mode = 'ANSI_QUOTES,NO_AUTO_VALUE_ON_ZERO'",
        'INSERT INTO fx.notes ("txt") VALUES (\'ansi quotes\')',
        "SET SESSION sql_mode = DEFAULT",
        "SET SESSION foreign_key_checks = 0, unique_checks = 0",
        "INSERT INTO fx.notes (txt) VALUES ('no fk checks')",
        "SET SESSION foreign_key_checks = 1, unique_checks = 1",
        "SET NAMES latin1",
        "INSERT INTO fx.notes (txt) VALUES ('latin1 client')",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "INSERT INTO fx.notes (txt) VALUES ('unicode_ci client')",
        "SET NAMES utf8mb4",
    )


def temp_table(s: Session) -> None:
    s.sql(
        "CREATE TEMPORARY TABLE fx.tmp (a INT)",
        "INSERT INTO fx.tmp VALUES (1), (2)",
        "INSERT INTO fx.notes (txt) SELECT CONCAT('from tmp ', a) FROM fx.tmp",
        "DROP TEMPORARY TABLE fx.tmp",
    )


def load_data(s: Session) -> None:
    """LOAD DATA INFILE (server-side file > read_buffer_size, so APPEND_BLOCKs) and
    LOAD DATA LOCAL INFILE."""
    srv = s.srv
    server_file = srv.tmpdir / "load.tsv"
    server_file.write_text("".join(f"{i}\trow {i} {'x' * 50}\n" for i in range(1, 601)))
    local = Path(tempfile.mkdtemp(prefix="binlogkit-fx-")) / "local.csv"
    local.write_text("".join(f"{i},\"local, {i}\"\n" for i in range(1, 21)))
    if s.flavor == "mysql":
        s.sql("SET GLOBAL local_infile = 1")
    s.sql(
        "CREATE TABLE fx.loaded (id INT PRIMARY KEY, txt VARCHAR(100))",
        f"LOAD DATA INFILE '{srv.server_path(server_file)}' INTO TABLE fx.loaded",
        "CREATE TABLE fx.loaded_local (id INT PRIMARY KEY, txt VARCHAR(100))",
        f"LOAD DATA LOCAL INFILE '{local}' INTO TABLE fx.loaded_local"
        " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n'",
    )
    shutil.rmtree(local.parent)


def unsafe_for_statement(s: Session) -> None:
    """Statements MIXED format logs as rows (UUID(), LIMIT without ORDER BY, ...)."""
    s.sql(
        "INSERT INTO fx.notes (txt) VALUES (UUID())",
        "UPDATE fx.notes SET n = n + 1 LIMIT 2",
        "INSERT INTO fx.notes (txt) SELECT txt FROM fx.notes LIMIT 1",
        "INSERT INTO fx.notes (txt) VALUES (CONCAT('safe ', 1))",
    )


def json_updates(s: Session) -> None:
    """JSON modifications that MySQL can log as partial updates."""
    s.sql(
        "UPDATE fx.types SET j = JSON_SET(j, '$.a', 2, '$.new', 'x') WHERE id = 1",
        "UPDATE fx.types SET j = JSON_REPLACE(j, '$.c.d', 'ü') WHERE id = 1",
        "UPDATE fx.types SET j = JSON_REMOVE(j, '$.b[1]') WHERE id = 1",
        "UPDATE fx.types SET j = JSON_SET(j, '$[0]', 10), ti = 9 WHERE id = 2",
    )


# --- workloads ------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    flavor: str
    options: dict[str, str | None]
    exercises: list[str]
    expect: list[str]  # event type names that must appear (over all files)
    run: Callable[[Session], None]
    files: int = 1  # closed binlogs to keep
    later: list[str] | None = None  # what the files after .000001 exercise
    decoded: tuple[str, ...] | list[str] = ()  # must appear in the reference decoder's output


def w_mariadb_row(s: Session) -> None:
    create_schema(s)
    ddl(s)
    types_dml(s)
    multi_statement_txn(s)
    non_transactional(s)
    xa(s)
    s.sql(
        "SET SESSION gtid_domain_id = 2",
        "INSERT INTO fx.notes (txt) VALUES ('domain 2')",
        "SET SESSION gtid_domain_id = 0, gtid_seq_no = 100",
        "INSERT INTO fx.notes (txt) VALUES ('seq_no 100')",
    )
    large_txn(s)
    s.sql("FLUSH BINARY LOGS")  # .000002 starts with a GTID_LIST of domains 0 and 2
    s.sql(
        "INSERT INTO fx.notes (txt) VALUES ('second file')",
        "SET SESSION gtid_domain_id = 2",
        "UPDATE fx.notes SET n = 2 WHERE txt = 'domain 2'",
        "SET SESSION gtid_domain_id = 0",
    )


def w_statement(s: Session) -> None:
    """The statement-format workload, the same on both servers."""
    create_schema(s)
    ddl(s)
    types_dml(s, big=False)
    user_vars(s)
    rand_and_intvar(s)
    session_status_vars(s)
    temp_table(s)
    load_data(s)
    multi_statement_txn(s)
    non_transactional(s)
    xa(s)


def w_mixed(s: Session) -> None:
    create_schema(s)
    types_dml(s, big=False)
    user_vars(s)
    rand_and_intvar(s)
    unsafe_for_statement(s)
    temp_table(s)
    load_data(s)
    xa(s)
    if s.flavor == "mysql":
        s.sql("CREATE TABLE fx.ctas SELECT id, txt FROM fx.notes WHERE id < 3")


def w_mariadb_compressed(s: Session) -> None:
    create_schema(s)
    ddl(s)
    types_dml(s)
    xa(s)
    large_txn(s)
    s.sql("SET SESSION binlog_format = 'STATEMENT'")
    user_vars(s)
    s.sql("INSERT INTO fx.notes (txt) VALUES (REPEAT('compressible statement ', 8))")
    multi_statement_txn(s)
    s.sql("SET SESSION binlog_format = 'ROW'")


def w_mysql_row(s: Session) -> None:
    create_schema(s)
    ddl(s)
    types_dml(s)
    json_updates(s)
    multi_statement_txn(s)
    non_transactional(s)
    xa(s)
    large_txn(s)


def w_mysql_row_minimal(s: Session) -> None:
    create_schema(s)
    types_dml(s)
    json_updates(s)
    multi_statement_txn(s)
    xa(s)


def w_mysql_compressed(s: Session) -> None:
    create_schema(s)
    ddl(s)
    types_dml(s)
    json_updates(s)
    multi_statement_txn(s)
    non_transactional(s)
    xa(s)
    large_txn(s)


def w_mysql_tagged(s: Session) -> None:
    create_schema(s)
    s.sql(
        "SET gtid_next = 'AUTOMATIC:alpha'",
        "INSERT INTO fx.notes (txt) VALUES ('tag alpha')",
        "SET gtid_next = 'AUTOMATIC:beta_2'",
        "BEGIN",
        "INSERT INTO fx.notes (txt) VALUES ('tag beta_2')",
        "UPDATE fx.notes SET n = 1 WHERE txt = 'tag alpha'",
        "COMMIT",
        "SET gtid_next = 'AUTOMATIC:alpha'",
        "CREATE TABLE fx.tagged_ddl (id INT PRIMARY KEY)",
        "SET gtid_next = 'AUTOMATIC'",
        "INSERT INTO fx.notes (txt) VALUES ('untagged automatic')",
        f"SET gtid_next = '{OTHER_UUID}:gamma:10'",
        "INSERT INTO fx.notes (txt) VALUES ('specified tagged gtid')",
        f"SET gtid_next = '{OTHER_UUID}:100'",
        "INSERT INTO fx.notes (txt) VALUES ('specified untagged gtid')",
        "SET gtid_next = 'AUTOMATIC:xa_tag'",
        "XA START 'fx-tagged'",
        "INSERT INTO fx.notes (txt) VALUES ('tagged xa')",
        "XA END 'fx-tagged'",
        "XA PREPARE 'fx-tagged'",
        "XA COMMIT 'fx-tagged'",
        "SET gtid_next = 'AUTOMATIC'",
        "FLUSH BINARY LOGS",  # .000002 starts with a tagged PREVIOUS_GTIDS
        "SET gtid_next = 'AUTOMATIC:alpha'",
        "INSERT INTO fx.notes (txt) VALUES ('second file, alpha')",
        "SET gtid_next = 'AUTOMATIC'",
        "INSERT INTO fx.notes (txt) VALUES ('second file, untagged')",
    )


COMMON_EXERCISES = ["DDL", "column types", "GTIDs", "XA commit/rollback/one-phase"]
WORKLOADS = [
    Workload(
        "row", "mariadb",
        {"binlog-format": "ROW", "binlog-checksum": "CRC32",
         "binlog-annotate-row-events": "ON", "binlog-row-metadata": "FULL"},
        [*COMMON_EXERCISES, "ROW format", "checksum CRC32", "annotate rows",
         "binlog_row_metadata=FULL", "MyISAM (standalone GTID)", "GTID domains 0 and 2",
         "explicit gtid_seq_no", "large transaction", "row bigger than 8 KiB",
         "UUID/INET6/JSON columns"],
        ["MARIADB_GTID", "GTID_LIST", "BINLOG_CHECKPOINT", "ANNOTATE_ROWS", "TABLE_MAP",
         "WRITE_ROWS_V1", "UPDATE_ROWS_V1", "DELETE_ROWS_V1", "XID", "XA_PREPARE", "QUERY"],
        w_mariadb_row, files=2,
        later=["ROW format", "checksum CRC32", "annotate rows", "GTID_LIST of domains 0 and 2",
               "two BINLOG_CHECKPOINT events", "GTIDs in domains 0 and 2"],
    ),
    Workload(
        "statement-nocrc", "mariadb",
        {"binlog-format": "STATEMENT", "binlog-checksum": "NONE", "read-buffer-size": "8192"},
        [*COMMON_EXERCISES, "STATEMENT format", "checksum NONE", "user variables",
         "RAND", "INTVAR (INSERT_ID, LAST_INSERT_ID)", "LOAD DATA INFILE (+LOCAL)",
         "query status variables (time_zone, lc_time_names, sql_mode, charset)",
         "temporary table", "MyISAM"],
        ["USER_VAR", "RAND", "INTVAR", "BEGIN_LOAD_QUERY", "APPEND_BLOCK",
         "EXECUTE_LOAD_QUERY", "XA_PREPARE", "QUERY", "XID", "MARIADB_GTID"],
        w_statement,
    ),
    Workload(
        "mixed", "mariadb",
        {"binlog-format": "MIXED", "binlog-annotate-row-events": "OFF",
         "binlog-row-metadata": "MINIMAL", "binlog-row-image": "MINIMAL",
         "read-buffer-size": "8192"},
        [*COMMON_EXERCISES, "MIXED format", "unsafe statements logged as rows",
         "annotate rows OFF", "binlog_row_metadata=MINIMAL", "binlog_row_image=MINIMAL",
         "user variables", "RAND", "INTVAR", "LOAD DATA INFILE"],
        ["QUERY", "TABLE_MAP", "WRITE_ROWS_V1", "USER_VAR", "RAND", "INTVAR", "XA_PREPARE"],
        w_mixed,
    ),
    Workload(
        "compressed", "mariadb",
        {"binlog-format": "ROW", "log-bin-compress": "ON", "log-bin-compress-min-len": "10"},
        [*COMMON_EXERCISES, "log_bin_compress=ON", "QUERY_COMPRESSED",
         "compressed rows events", "large transaction", "user variables (STATEMENT)"],
        ["QUERY_COMPRESSED", "WRITE_ROWS_COMPRESSED_V1", "UPDATE_ROWS_COMPRESSED_V1",
         "DELETE_ROWS_COMPRESSED_V1", "USER_VAR", "XA_PREPARE", "ANNOTATE_ROWS"],
        w_mariadb_compressed,
    ),
    Workload(
        "row-full-metadata", "mysql",
        {"binlog-format": "ROW", "binlog-row-metadata": "FULL",
         "binlog-rows-query-log-events": "ON"},
        [*COMMON_EXERCISES, "ROW format", "checksum CRC32", "binlog_row_metadata=FULL",
         "rows query events", "JSON and VECTOR columns", "JSON updates (full images)",
         "MyISAM", "large transaction", "row bigger than 8 KiB"],
        ["GTID", "PREVIOUS_GTIDS", "ROWS_QUERY", "TABLE_MAP", "WRITE_ROWS", "UPDATE_ROWS",
         "DELETE_ROWS", "XID", "XA_PREPARE", "QUERY"],
        w_mysql_row,
    ),
    Workload(
        "row-minimal", "mysql",
        {"binlog-format": "ROW", "binlog-row-metadata": "MINIMAL",
         "binlog-row-image": "MINIMAL", "binlog-row-value-options": "PARTIAL_JSON"},
        [*COMMON_EXERCISES, "ROW format", "binlog_row_metadata=MINIMAL",
         "binlog_row_image=MINIMAL", "partial JSON updates"],
        ["GTID", "TABLE_MAP", "WRITE_ROWS", "PARTIAL_UPDATE_ROWS",
         "DELETE_ROWS", "XA_PREPARE"],
        w_mysql_row_minimal,
    ),
    Workload(
        "statement-nocrc", "mysql",
        {"binlog-format": "STATEMENT", "binlog-checksum": "NONE", "read-buffer-size": "8192"},
        [*COMMON_EXERCISES, "STATEMENT format", "checksum NONE", "user variables",
         "RAND", "INTVAR (INSERT_ID, LAST_INSERT_ID)", "LOAD DATA INFILE (+LOCAL)",
         "query status variables (time_zone, lc_time_names, sql_mode, charset)",
         "temporary table", "MyISAM"],
        ["GTID", "USER_VAR", "RAND", "INTVAR", "BEGIN_LOAD_QUERY", "APPEND_BLOCK",
         "EXECUTE_LOAD_QUERY", "XA_PREPARE", "QUERY", "XID"],
        w_statement,
    ),
    Workload(
        "mixed-anonymous", "mysql",
        {"binlog-format": "MIXED", "gtid-mode": "OFF", "enforce-gtid-consistency": "OFF",
         "read-buffer-size": "8192"},
        ["DDL", "column types", "XA commit/rollback/one-phase", "MIXED format",
         "gtid_mode=OFF (anonymous GTIDs)", "unsafe statements logged as rows",
         "CREATE TABLE ... SELECT", "user variables", "RAND (logged as rows: unsafe in MySQL)",
         "INTVAR", "LOAD DATA INFILE (logged as rows)"],
        ["ANONYMOUS_GTID", "PREVIOUS_GTIDS", "QUERY", "TABLE_MAP", "WRITE_ROWS", "USER_VAR",
         "INTVAR", "XA_PREPARE"],
        w_mixed,
    ),
    Workload(
        "compressed", "mysql",
        {"binlog-format": "ROW", "binlog-transaction-compression": "ON"},
        [*COMMON_EXERCISES, "binlog_transaction_compression=ON (zstd TRANSACTION_PAYLOAD)",
         "JSON updates", "large transaction", "MyISAM (not compressed)"],
        ["GTID", "TRANSACTION_PAYLOAD", "QUERY"],
        w_mysql_compressed,
        decoded=["XA PREPARE", "Transaction_Payload", "Write_rows", "Update_rows", "Delete_rows"],
    ),
    Workload(
        "tagged-gtids", "mysql",
        {"binlog-format": "ROW"},
        ["GTIDs", "tagged GTIDs (AUTOMATIC:tag and UUID:tag:N)", "specified untagged GTID",
         "GTIDs of two server UUIDs", "tagged XA"],
        ["GTID", "GTID_TAGGED", "PREVIOUS_GTIDS", "XA_PREPARE", "WRITE_ROWS"],
        w_mysql_tagged, files=2,
        later=["PREVIOUS_GTIDS with tags and two server UUIDs", "tagged GTID", "untagged GTID"],
    ),
]


# --- running and checking ---------------------------------------------------------------


def scan_events(path: Path) -> tuple[collections.Counter[str], bool]:
    """Top-level event type counts and whether the file is closed (flag clear, ROTATE last)."""
    data = path.read_bytes()
    if data[:4] != b"\xfebin":
        raise SystemExit(f"{path}: not a binlog")
    counts: collections.Counter[str] = collections.Counter()
    pos, last, in_use = 4, -1, True
    while pos + 19 <= len(data):
        _ts, typ, _sid, size, _next, flags = struct.unpack_from("<IBIIIH", data, pos)
        if size < 19:
            raise SystemExit(f"{path}: bad event size {size} at {pos}")
        if typ == 15:
            in_use = bool(flags & 1)
        counts[EVENT_NAMES.get(typ, f"TYPE_{typ}")] += 1
        last, pos = typ, pos + size
    if pos != len(data):
        raise SystemExit(f"{path}: trailing bytes at {pos}")
    return counts, (not in_use and last == 4)


def reference_decode(flavor: str, path: Path) -> str:
    """The server's own mysqlbinlog must read the file without error. LOAD data
    files it writes go to a temp dir (--local-load) that is removed afterwards."""
    args = ["-vv", "--base64-output=decode-rows"]
    if flavor == "mariadb":
        with tempfile.TemporaryDirectory(prefix="binlogkit-fx-") as tmp:
            res = subprocess.run(["mariadb-binlog", *args, f"--local-load={tmp}", str(path)],
                                 capture_output=True, text=True, errors="replace", check=False)
    else:
        (sid_root() / "tmp").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="binlogkit-fx-", dir=sid_root() / "tmp") as tmp:
            res = run_in_sid(["mysqlbinlog", *args, f"--local-load={sid_path(tmp)}", path],
                             capture_output=True, text=True, errors="replace")
    if res.returncode != 0 or "ERROR" in res.stderr:
        raise SystemExit(f"{path}: reference decoder failed: {res.stderr.strip()[:500]}")
    return str(res.stdout)


def run_workload(w: Workload, out: Path) -> list[dict[str, Any]]:
    flavor: Flavor = "mariadb" if w.flavor == "mariadb" else "mysql"
    with start_server(flavor, options=w.options) as srv:
        print(f"{w.flavor}/{w.name}: {srv.version} on port {srv.port}", flush=True)
        s = Session(srv)
        w.run(s)
        fmt = s.value("SELECT @@GLOBAL.binlog_format")
        checksum = s.value("SELECT @@GLOBAL.binlog_checksum")
        uuid = s.value("SELECT @@GLOBAL.server_uuid") if flavor == "mysql" else None
        s.close()
        srv.flush_logs()
        files = srv.binlog_files()[:-1]
        if len(files) != w.files:
            raise SystemExit(f"{w.flavor}/{w.name}: {len(files)} closed binlogs, "
                             f"expected {w.files}")
        (out / w.flavor).mkdir(parents=True, exist_ok=True)
        entries: list[dict[str, Any]] = []
        seen: collections.Counter[str] = collections.Counter()
        decoded = ""
        for n, f in enumerate(files):
            rel = f"{w.flavor}/{w.name}{f.suffix}"
            dest = out / rel
            shutil.copyfile(f, dest)
            counts, closed = scan_events(dest)
            if not closed:
                raise SystemExit(f"{dest}: not closed")
            decoded += reference_decode(w.flavor, dest)
            seen.update(counts)
            data = dest.read_bytes()
            entries.append({
                "file": rel,
                "flavor": w.flavor,
                "server_version": srv.version,
                "server_options": srv.options,
                "binlog_format": fmt,
                "binlog_checksum": checksum,
                "server_uuid": uuid,
                "workload": w.name,
                "exercises": w.later if n and w.later else w.exercises,
                "events": dict(sorted(counts.items())),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            })
            print(f"  {rel}: {len(data)} bytes, {sum(counts.values())} events", flush=True)
        missing = [e for e in w.expect if e not in seen]
        missing += [f"decoded {t!r}" for t in w.decoded if t not in decoded]
        if missing:
            raise SystemExit(f"{w.flavor}/{w.name}: expected events missing: {missing}")
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="FLAVOR-NAME of workloads to run (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "fixtures")
    args = ap.parse_args(argv)
    chosen = [w for w in WORKLOADS if not args.only or f"{w.flavor}-{w.name}" in args.only]
    if not chosen:
        ap.error(f"no such workload; choose from {[f'{w.flavor}-{w.name}' for w in WORKLOADS]}")
    manifest_path = args.out / "manifest.json"
    old: dict[str, dict[str, Any]] = {}
    if args.only and manifest_path.exists():
        old = {e["file"]: e for e in json.loads(manifest_path.read_text())["files"]}
    for w in chosen:
        for stale in (args.out / w.flavor).glob(f"{w.name}.0*"):
            stale.unlink()
        old = {k: v for k, v in old.items()
               if not (v["flavor"] == w.flavor and v["workload"] == w.name)}
        for entry in run_workload(w, args.out):
            old[entry["file"]] = entry
    manifest: dict[str, Any] = {
        "generator": "scripts/make_fixtures.py",
        "generated": datetime.date.today().isoformat(),
        "note": "events: counts of top-level events (not those inside TRANSACTION_PAYLOAD)",
        "files": [old[k] for k in sorted(old)],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    total = sum(e["size"] for e in manifest["files"])
    print(f"{len(manifest['files'])} files, {total} bytes; wrote {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
