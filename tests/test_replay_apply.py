"""Binlogs written by the engine, applied three ways: by binlogkit's own SQL
thread to a replica engine, by ``mysqlbinlog FILE | mysql`` (and
``mariadb-binlog | mariadb``) to a real server, and by binlogkit's SQL thread
to a real server, serially and with 4 parallel workers under COMMIT_ORDER
and WRITESET. Every path must end in the same checksums."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from replay_pipe import pipe_into

from binlogkit.cli import main
from binlogkit.lab import Server
from binlogkit.replay.apply import Applier, EngineTarget, ReplicaError
from binlogkit.replay.binlog import write_binlog
from binlogkit.replay.checksum import diff, server_checksum
from binlogkit.replay.demo import demo_rows, demo_schema, demo_workload
from binlogkit.replay.engine import Engine
from binlogkit.replay.primary import Primary
from binlogkit.replay.run import apply_files, apply_parallel, apply_serial

FORMATS = ["statement", "row", "mixed"]


def deterministic(db: str) -> list[str]:
    """Statements whose result does not depend on who runs them: with ORDER BY
    on the key, session context (RAND seeds, user variables, INSERT_ID) and
    auto-increment."""
    return [
        f"CREATE DATABASE {db}",
        f"""CREATE TABLE {db}.acct (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
              owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL,
              opened DATETIME(6) NULL, flag INT NULL, KEY idx_owner (owner))""",
        f"INSERT INTO {db}.acct (owner, balance) VALUES ('ann', 10.50), ('bob', 0), ('cy', 7)",
        "SET @bonus = 2.25",
        f"UPDATE {db}.acct SET balance = balance + @bonus WHERE owner = 'ann'",
        "BEGIN",
        f"INSERT INTO {db}.acct (owner, balance, opened) VALUES ('dee', 1.00, NOW(6))",
        f"UPDATE {db}.acct SET flag = FLOOR(RAND() * 1000) WHERE id = 2",
        "COMMIT",
        f"DELETE FROM {db}.acct WHERE balance < 8 ORDER BY id LIMIT 1",
        f"UPDATE {db}.acct SET owner = CONCAT(owner, '-x') WHERE id >= 3 ORDER BY id LIMIT 5",
        "SET @who = 'ünï'",
        f"INSERT INTO {db}.acct (owner, balance) VALUES (@who, 99.99)",
    ]


def _clock() -> Any:
    t = [1_700_000_000.0]

    def now() -> float:
        t[0] += 0.5
        return t[0]
    return now


def source_binlog(tmp: Path, sql: list[str], fmt: str, flavor: str,
                  access: str = "first") -> tuple[Engine, Path]:
    engine = Engine("source", access=access, seed=7, clock=_clock(), flavor=flavor)
    primary = Primary(engine, flavor=flavor, server_uuid=str(uuid.uuid4()),
                      domain_id=random.randrange(1, 1000))
    for s in sql:
        primary.run(s)
    path = tmp / f"{flavor}-{fmt}.000001"
    write_binlog(path, primary.transactions, fmt=fmt, flavor=flavor,  # type: ignore[arg-type]
                 server_uuid=primary.server_uuid, domain_id=primary.domain_id)
    return engine, path


def engine_replica(path: Path, flavor: str, access: str = "primary") -> Engine:
    replica = Engine("replica", access=access, seed=99, clock=_clock(), flavor=flavor)
    Applier(EngineTarget(replica)).apply_file(path)
    return replica


def server_sums(server: Server, db: str, tables: list[str], like: dict[str, Any]) -> dict[str, Any]:
    conn = server.connect()
    try:
        return {f"{db}.{t}": server_checksum(conn, db, t,
                                             boundaries=like[f"{db}.{t}"].boundaries)
                for t in tables}
    finally:
        conn.close()


def _server(request: pytest.FixtureRequest, flavor: str) -> Server:
    return request.getfixturevalue(f"{flavor}_server")  # type: ignore[no-any-return]


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_engine_binlog_through_the_servers_tools(tmp_path: Path, request: pytest.FixtureRequest,
                                                flavor: str, fmt: str) -> None:
    """``mysqlbinlog FILE | mysql`` gives the tables binlogkit's replica engine has."""
    db = f"pipe_{flavor}_{fmt}_{uuid.uuid4().hex[:6]}"
    source, path = source_binlog(tmp_path, deterministic(db), fmt, flavor)
    replica = engine_replica(path, flavor)
    want = source.checksum()
    assert diff(want, replica.checksum(boundaries={k: v.boundaries for k, v in want.items()})) \
        == []
    server = _server(request, flavor)
    pipe_into(server, path, request.getfixturevalue("sid_root") if flavor == "mysql" else None)
    assert diff(want, server_sums(server, db, ["acct"], want)) == []


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
@pytest.mark.parametrize("fmt", ["row", "mixed"])
def test_demo_binlog_through_the_servers_tools(tmp_path: Path, request: pytest.FixtureRequest,
                                              flavor: str, fmt: str) -> None:
    """The nondeterministic demo, logged as ROW or MIXED, lands on a real
    server exactly as it is on the source."""
    db = f"dpipe_{flavor}_{fmt}_{uuid.uuid4().hex[:6]}"
    source, path = source_binlog(tmp_path, demo_schema(db) + demo_rows(db) + demo_workload(db),
                                 fmt, flavor)
    want = source.checksum(chunk_size=25)
    server = _server(request, flavor)
    pipe_into(server, path, request.getfixturevalue("sid_root") if flavor == "mysql" else None)
    assert diff(want, server_sums(server, db, ["t"], want)) == []


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_binlogkit_sql_thread_on_a_server(tmp_path: Path, request: pytest.FixtureRequest,
                                          flavor: str, fmt: str) -> None:
    db = f"apply_{flavor}_{fmt}_{uuid.uuid4().hex[:6]}"
    source, path = source_binlog(tmp_path, deterministic(db), fmt, flavor)
    server = _server(request, flavor)
    report = apply_files([path], server.connect)
    assert report.stats.transactions > 0 and report.stats.skipped == 0
    want = source.checksum()
    assert diff(want, server_sums(server, db, ["acct"], want)) == []
    gtids = report.mysql_gtids if flavor == "mysql" else report.mariadb_gtids
    assert len(gtids) > 0
    # applied again: every GTID is already there, the server skips them (MySQL) /
    # binlogkit's own applier skips what it has applied
    if flavor == "mysql":
        again = apply_files([path], server.connect)
        assert again.stats.transactions == 0 and again.stats.skipped == report.stats.transactions
        assert diff(want, server_sums(server, db, ["acct"], want)) == []


def test_dry_run_prints_the_sql(tmp_path: Path) -> None:
    _, path = source_binlog(tmp_path, deterministic("dry"), "mixed", "mysql")
    run = CliRunner().invoke(main, ["replay", str(path), "--dry-run"])
    assert run.exit_code == 0, run.output
    out = run.output
    assert "SET TIMESTAMP = " in out and "SET @`bonus` := 2.25;" in out
    assert "SET GTID_NEXT = '" in out and "BEGIN;" in out and "COMMIT;" in out
    assert "INSERT INTO `dry`.`acct`" in out or "INSERT INTO dry.acct" in out
    assert "transactions applied:" in out


def test_missing_row_is_an_error_naming_the_transaction(tmp_path: Path) -> None:
    """A row-based replica whose row is gone stops (HA_ERR_KEY_NOT_FOUND); the
    transaction is rolled back, never skipped."""
    _, path = source_binlog(tmp_path, deterministic("miss"), "row", "mysql")
    replica = Engine("replica", flavor="mysql")
    applier = Applier(EngineTarget(replica))
    s = replica.session()
    for sql in deterministic("miss")[:3]:  # schema and the first rows only
        s.execute(sql)
    s.execute("DELETE FROM miss.acct WHERE owner = 'ann'")
    with pytest.raises(ReplicaError, match=r"transaction [0-9a-f-]+:\d+"):
        applier.apply_file(path)


def test_cli_apply_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.000001"
    bad.write_bytes(b"\xfebin" + b"\x00" * 10)
    run = CliRunner().invoke(main, ["replay", str(bad), "--dry-run"])
    assert run.exit_code == 2
    assert "bad.000001" in run.output and "Traceback" not in run.output
    run = CliRunner().invoke(main, ["replay", str(bad)])
    assert run.exit_code == 2 and "--target" in run.output


# ------------------------------------------------------------------ parallel apply


def parallel_workload(db: str, n: int = 60) -> list[str]:
    """Transactions on disjoint rows (independent), on a hot row (conflicting),
    and inserts and deletes, in a seeded order."""
    rnd = random.Random(5)
    sql = [f"CREATE DATABASE {db}",
           f"CREATE TABLE {db}.kv (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))",
           f"INSERT INTO {db}.kv (id, v) VALUES " + ", ".join(f"({i}, 0)" for i in range(1, 41))]
    for i in range(n):
        k = rnd.randrange(1, 41)
        choice = rnd.random()
        if choice < 0.3:
            body = [f"UPDATE {db}.kv SET v = v + 1 WHERE id = 1"]  # the hot row
        elif choice < 0.7:
            body = [f"UPDATE {db}.kv SET v = v * 2 + {i} WHERE id = {k}",
                    f"UPDATE {db}.kv SET note = 't{i}' WHERE id = {(k % 40) + 1}"]
        elif choice < 0.85:
            body = [f"INSERT INTO {db}.kv (id, v) VALUES ({100 + i}, {i})"]
        else:
            body = [f"DELETE FROM {db}.kv WHERE id = {100 + rnd.randrange(0, i + 1)}"]
        sql += ["BEGIN", *body, "COMMIT"]
    return sql


def test_parallel_apply_equals_serial_on_the_engine(tmp_path: Path) -> None:
    source, path = source_binlog(tmp_path, parallel_workload("par"), "row", "mysql")
    want = source.checksum(chunk_size=10)
    serial = Engine("serial", flavor="mysql")
    apply_serial([path], EngineTarget(serial))
    assert diff(want, serial.checksum(boundaries={k: v.boundaries for k, v in want.items()})) \
        == []
    for policy in ("commit_order", "writeset"):
        eng = Engine(policy, flavor="mysql")
        report = apply_parallel([path], lambda e=eng: EngineTarget(e, shared=True), workers=4,
                                policy=policy)
        assert report.stats.transactions == len(report.mysql_gtids)
        got = eng.checksum(boundaries={k: v.boundaries for k, v in want.items()})
        assert diff(want, got) == [], policy


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_parallel_apply_equals_serial_on_a_server(tmp_path: Path, request: pytest.FixtureRequest,
                                                  flavor: str) -> None:
    db = f"par_{flavor}_{uuid.uuid4().hex[:6]}"
    source, path = source_binlog(tmp_path, parallel_workload(db), "row", "mysql")
    want = source.checksum(chunk_size=10)
    server = _server(request, flavor)
    for policy in ("commit_order", "writeset"):
        server.execute(f"DROP DATABASE IF EXISTS {db}")
        report = apply_files([path], server.connect, gtids=False, workers=4, policy=policy)
        assert report.workers == 4
        assert diff(want, server_sums(server, db, ["kv"], want)) == [], policy
