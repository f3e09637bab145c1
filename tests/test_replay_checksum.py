"""Checksums: engine vs server agreement, locating differing rows, and the
``checksum`` command on two servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from binlogkit.cli.checksum import checksum
from binlogkit.replay import sql as S
from binlogkit.replay.checksum import (
    Chunk,
    TableChecksum,
    diff,
    double_text,
    row_text,
    server_checksum,
)
from binlogkit.replay.engine import Engine

TABLE = """
CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(20), n DECIMAL(9,3), f DOUBLE, g FLOAT,
  d DATE, dt DATETIME(6), ts TIMESTAMP NULL, b VARBINARY(8), bb BINARY(3), tx TEXT,
  u BIGINT UNSIGNED, c CHAR(4));
CREATE TABLE k (a VARCHAR(10), b INT, v INT, PRIMARY KEY (a, b));
CREATE TABLE nopk (x INT, y VARCHAR(3))
"""
ROWS = """
INSERT INTO t VALUES (1, 'héllo', 1.5, 0.1, 1.1, '2024-01-02', '2024-01-02 03:04:05.123456',
  '2024-01-02 03:04:05', 'ab', 'x', 'long text', 18446744073709551615, 'c '),
  (2, '', NULL, -1e-20, NULL, NULL, NULL, NULL, '', '', '', 0, ''),
  (3, NULL, -0.001, 1e300, -3.5, '1999-12-31', '1999-12-31 23:59:59.5', NULL, NULL, NULL,
  NULL, NULL, NULL);
INSERT INTO t (id, s, f) VALUES (4, 'a#b', 123456789.125), (5, 'x', 2), (6, 'y', 3), (7, 'z', 4),
  (8, 'q', 5), (9, 'r', 6), (10, 's', 7);
INSERT INTO k VALUES ('b', 1, 1), ('A', 2, 2), ('a', 1, 3), ('c', 0, 4);
INSERT INTO nopk VALUES (1, 'a'), (1, 'a'), (NULL, NULL)
"""


def engine_with_rows(db: str) -> Engine:
    e = Engine(clock=lambda: 1_700_000_000.0)
    s = e.session()
    s.execute(f"CREATE DATABASE {db}")
    s.execute(f"USE {db}")
    for stmt in S.split_statements(TABLE + ";" + ROWS):
        s.execute(stmt)
    return e


def test_row_text_is_concat_ws_with_null_flags() -> None:
    assert row_text([1, None, "a", b"\x00", 1.5]) == b"1#a#\x00#1.5#01000"
    assert row_text([None]) == b"1"
    assert double_text(1e15) == "1e15" and double_text(1e14) == "100000000000000"
    assert double_text(1.1, single=True) == "1.1"


def test_diff_locates_changed_missing_and_extra_rows() -> None:
    a = engine_with_rows("d")
    b = engine_with_rows("d")
    sb = b.session("d")
    sb.execute("UPDATE t SET s = 'changed' WHERE id = 2")
    sb.execute("DELETE FROM t WHERE id = 9")
    sb.execute("INSERT INTO t (id) VALUES (100)")
    ca = a.checksum(["d.t"], chunk_size=3)["d.t"]
    assert [c.lo for c in ca.chunks] == [None, (4,), (7,), (10,)]
    cb = b.checksum(["d.t"], chunk_size=3, boundaries={"d.t": ca.boundaries})["d.t"]
    found = diff(ca, cb)
    assert [(d.lo, d.hi, d.count_a, d.count_b) for d in found] == [
        (None, (4,), 3, 3), ((7,), (10,), 3, 2), ((10,), None, 1, 2)]
    assert str(found[1]).startswith("d.t: (7) <= PK < (10): rows 3 vs 2, crc ")
    # other boundaries: one whole-table difference (counts / XOR of all rows)
    whole = diff(ca, b.checksum(["d.t"], chunk_size=2)["d.t"])
    assert [(d.lo, d.hi, d.count_a, d.count_b) for d in whole] == [(None, None, 10, 10)]
    assert diff(a.checksum(), engine_with_rows("d").checksum(chunk_size=4)) == []
    sb.execute("DROP TABLE nopk")
    assert [str(d) for d in diff(a.checksum(), b.checksum()) if d.missing] == [
        "d.nopk: table missing on B"]
    assert diff(ca, a.checksum(["d.t"], chunk_size=3, boundaries={"d.t": ca.boundaries})[
        "d.t"]) == []


def test_tables_without_pk_and_composite_pk() -> None:
    e = engine_with_rows("d")
    sums = e.checksum(chunk_size=2)
    assert sums["d.nopk"].chunks == (sums["d.nopk"].chunks[0],)
    assert sums["d.nopk"].count == 3
    k = sums["d.k"]
    assert k.count == 4 and [c.lo for c in k.chunks] == [None, ("b", 1)]
    empty = TableChecksum("x.y", (Chunk(None, None, 0, 0),))
    assert empty.boundaries == [] and empty.count == 0


# --- servers ------------------------------------------------------------------------


@pytest.fixture(params=["mariadb", "mysql"])
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"{request.param}_server")


def load(server: Any, db: str) -> None:
    stmts = [f"CREATE DATABASE {db}", f"USE {db}", "SET time_zone = '+00:00'"]
    server.execute(stmts + S.split_statements(TABLE + ";" + ROWS))


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"ck_{uuid.uuid4().hex[:10]}"
    yield name
    for flavor in ("mariadb", "mysql"):
        if f"{flavor}_server" in request.fixturenames:
            request.getfixturevalue(f"{flavor}_server").execute(
                f"DROP DATABASE IF EXISTS {name}")


def test_engine_and_server_checksums_agree(server: Any, db_name: str,
                                           request: pytest.FixtureRequest) -> None:
    request.fixturenames.append(f"{server.flavor}_server")
    load(server, db_name)
    e = engine_with_rows(db_name)
    conn = server.connect()
    try:
        for table in ("t", "k", "nopk"):
            mine = e.checksum([f"{db_name}.{table}"], chunk_size=3)[f"{db_name}.{table}"]
            theirs = server_checksum(conn, db_name, table, chunk_size=3)
            assert theirs == mine, table
        with pytest.raises(KeyError):
            server_checksum(conn, db_name, "nope")
    finally:
        conn.close()


def test_cli_compares_two_servers(mariadb_server: Any, mysql_server: Any,
                                  db_name: str) -> None:
    for srv in (mariadb_server, mysql_server):
        load(srv, db_name)
    urls = [mariadb_server.url, mysql_server.url]
    tables = f"--tables={db_name}.t,{db_name}.k,{db_name}.nopk"
    runner = CliRunner()
    res = runner.invoke(checksum, [*urls, tables, "--chunk-size", "3", "--no-defaults"])
    assert res.exit_code == 0, res.output
    assert res.output == "3 tables equal\n"
    mysql_server.execute([f"DELETE FROM {db_name}.t WHERE id = 5",
                          f"UPDATE {db_name}.k SET v = 9 WHERE a = 'c'"])
    res = runner.invoke(checksum, [*urls, tables, "--chunk-size", "3", "--no-defaults"])
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{db_name}.t: (4) <= PK < (7): rows 3 vs 2, crc ")
    assert lines[1].startswith(f"{db_name}.k: PK >= ('c', 0): rows 1 vs 1, crc ")
    assert lines[-1] == "2 of 3 tables differ (2 ranges)"
    res = runner.invoke(checksum, [*urls, f"--tables={db_name}.t,{db_name}.missing",
                                   "--no-defaults"])
    assert res.exit_code == 2 and "no such table on either server" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(checksum, [urls[0], "mysql://root@127.0.0.1:1", "--no-defaults",
                                   "--connect-timeout", "2"])
    assert res.exit_code == 2 and "cannot connect" in res.output
    res = runner.invoke(checksum, [*urls, "--tables=nodot", "--no-defaults"])
    assert res.exit_code == 2 and "expected db.table" in res.output
