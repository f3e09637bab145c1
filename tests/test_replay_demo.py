"""The drift demo: STATEMENT diverges (rows differ, located by the chunk
checksums), ROW and MIXED do not, on the embedded engine and on real
MariaDB and MySQL replication pairs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from binlogkit.cli import main
from binlogkit.lab import unavailable_reason
from binlogkit.replay.checksum import Chunk
from binlogkit.replay.demo import FormatResult, run_demo


def _in_range(key: list[Any], chunk: dict[str, Any]) -> bool:
    lo, hi = chunk["lo"], chunk["hi"]
    return (lo is None or key >= lo) and (hi is None or key < hi)


def _check(results: list[FormatResult]) -> None:
    by = {r.fmt: r for r in results}
    stmt = by["statement"]
    assert stmt.diverged_rows > 0
    assert stmt.source_checksum != stmt.replica_checksum
    assert stmt.chunks, "the checksums must locate the difference"
    for row in stmt.rows:  # every differing row lies in a differing chunk
        assert any(_in_range(row["key"], c) for c in stmt.chunks), row["key"]
    changed = {c for row in stmt.rows for c in row["columns"]}
    assert {"touched", "token", "score"} <= changed  # SYSDATE(6), UUID(), RAND() row order
    assert any(r["source"] is None or r["replica"] is None for r in stmt.rows)  # LIMIT
    assert "noted" not in changed  # NOW() replicates through the event timestamp
    for fmt in ("row", "mixed"):
        assert by[fmt].diverged_rows == 0, by[fmt].rows
        assert by[fmt].source_checksum == by[fmt].replica_checksum
        assert by[fmt].chunks == []


@pytest.mark.parametrize("flavor", ["mysql", "mariadb"])
def test_embedded_demo(flavor: str, tmp_path: Any) -> None:
    results = run_demo(tmp_path, flavor=flavor)
    _check(results)
    assert len({r.source_checksum for r in results}) == 1  # seeded: the same source each time
    by = {r.fmt: r for r in results}
    assert by["statement"].row_events == 0
    assert by["row"].statement_events == 2  # CREATE DATABASE, CREATE TABLE
    # MIXED: the safe INSERTs and NOW() stay statements, the unsafe ones become rows
    assert by["mixed"].statement_events > 2 and by["mixed"].row_events > 0
    assert all(r.binlog and r.binlog.startswith(str(tmp_path)) for r in results)


def test_demo_cli_json(tmp_path: Any) -> None:
    run = CliRunner().invoke(main, ["replay", "demo", "--json", "--write-binlogs",
                                    str(tmp_path)])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    assert set(out["formats"]) == {"statement", "row", "mixed"}
    assert out["formats"]["statement"]["diverged_rows"] > 0
    assert out["formats"]["row"]["diverged_rows"] == out["formats"]["mixed"]["diverged_rows"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "demo-mixed.000001", "demo-row.000001", "demo-statement.000001"]


def test_demo_cli_text() -> None:
    run = CliRunner().invoke(main, ["replay", "demo"])
    assert run.exit_code == 0, run.output
    lines = run.output.splitlines()
    table = {ln.split()[0]: ln.split() for ln in lines
             if ln.split() and ln.split()[0] in ("statement", "row", "mixed")}
    assert int(table["statement"][3]) > 0
    assert table["row"][3] == table["mixed"][3] == "0"
    assert table["row"][1] == table["row"][2]


@pytest.mark.server
@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_demo_on_real_servers(flavor: str) -> None:
    reason = unavailable_reason(flavor)  # type: ignore[arg-type]
    if reason:
        pytest.skip(reason)
    from binlogkit.replay.servers_demo import run_server_demo  # noqa: PLC0415

    _check(run_server_demo(flavor))


def test_chunk_type_is_what_the_demo_reads() -> None:
    assert {"lo", "hi", "count", "crc"} <= set(Chunk.__dataclass_fields__)
