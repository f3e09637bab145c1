"""The command line, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from binlogkit.io.reader import BinlogReader

MARIADB_FILE = Path("/usr/share/mysql/mysql-test/std_data/mariadb-5.5-binlog.000001")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "binlogkit", *args],
                          capture_output=True, text=True, timeout=120)


def some_fixture() -> Path:
    files = sorted(p for p in FIXTURES.rglob("*") if p.is_file()
                   and p.read_bytes()[:4] == b"\xfebin")
    if not files:
        pytest.skip("no fixture binlogs (run scripts/make_fixtures.py)")
    return files[0]


def test_dump_jsonl_contract() -> None:
    path = some_fixture()
    res = run("dump", "--format", "jsonl", str(path))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    outer = [d for d in lines if not d.get("inner")]
    events = list(BinlogReader(path))
    assert [(d["pos"], d["next_pos"], d["type"]) for d in outer] == [
        (e.pos, e.next_pos, e.type_name) for e in events]
    for d in lines:
        assert {"pos", "next_pos", "type", "timestamp", "server_id"} <= d.keys()


def test_dump_filters(tmp_path: Path) -> None:
    path = some_fixture()
    res = run("dump", "--format", "jsonl", "--type", "query", str(path))
    types = {json.loads(line)["type"] for line in res.stdout.splitlines()}
    assert types == {"QUERY"}
    events = list(BinlogReader(path))
    mid = events[len(events) // 2].pos
    res = run("dump", "--format", "jsonl", "--start-position", str(mid), str(path))
    first = json.loads(res.stdout.splitlines()[0])
    assert first["pos"] == mid
    res = run("dump", "--format", "jsonl", "--stop-position", str(mid), str(path))
    assert all(json.loads(line)["pos"] < mid for line in res.stdout.splitlines())


def test_rewrite_without_options_is_identical(tmp_path: Path) -> None:
    path = some_fixture()
    out = tmp_path / "out.bin"
    res = run("rewrite", str(path), str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == path.read_bytes()


def test_stats_counts_events() -> None:
    path = some_fixture()
    res = run("stats", "--json", str(path))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["events"] >= len(list(BinlogReader(path)))


def _one_line_exit_2(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def test_error_missing_file(tmp_path: Path) -> None:
    line = _one_line_exit_2(run("dump", str(tmp_path / "nope.000001")))
    assert "nope.000001" in line


def test_error_not_a_binlog(tmp_path: Path) -> None:
    p = tmp_path / "text.txt"
    p.write_text("hello, world\n")
    line = _one_line_exit_2(run("dump", str(p)))
    assert "magic" in line and "at byte 0" in line


def test_error_corrupt_file(tmp_path: Path) -> None:
    data = bytearray(some_fixture().read_bytes())
    events = list(BinlogReader(bytes(data)))
    victim = events[2]
    data[victim.pos + 20] ^= 0xFF  # flip a body byte: the CRC32 no longer matches
    p = tmp_path / "corrupt.000001"
    p.write_bytes(bytes(data))
    line = _one_line_exit_2(run("dump", str(p)))
    assert f"at byte {victim.pos}" in line and str(p) in line


def test_error_truncated_closed_file(tmp_path: Path) -> None:
    data = some_fixture().read_bytes()
    events = list(BinlogReader(data))
    cut = events[-1].pos + 5
    p = tmp_path / "short.000001"
    p.write_bytes(data[:cut])
    line = _one_line_exit_2(run("stats", str(p)))
    assert f"at byte {events[-1].pos}" in line


def test_dump_schema_names_columns_the_binlog_leaves_unnamed(tmp_path: Path) -> None:
    """row-minimal was written with binlog_row_metadata=MINIMAL: no names."""
    path = FIXTURES / "mysql" / "row-minimal.000001"
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"fx": {"notes": ["id", "txt", {"name": "n"}]}}))
    plain = [json.loads(x) for x in run("dump", "--format", "jsonl", str(path)).stdout.split("\n")
             if '"table":"notes"' in x and '"rows"' in x]
    named = [json.loads(x) for x in run("dump", "--format", "jsonl", "--schema", str(schema),
                                        str(path)).stdout.split("\n")
             if '"table":"notes"' in x and '"rows"' in x]
    assert plain and len(plain) == len(named)
    for p, n in zip(plain, named, strict=True):
        for rp, rn in zip(p["rows"], n["rows"], strict=True):
            for side in ("before", "after"):
                if rp[side] is None:
                    continue
                renamed = {{"@1": "id", "@2": "txt", "@3": "n"}[k]: v for k, v in rp[side].items()}
                assert rn[side] == renamed
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    res = run("dump", "--schema", str(bad), str(path))
    assert res.returncode == 2 and "not a schema file" in res.stderr


def test_stats_counts_rows_per_table() -> None:
    """fixtures/mariadb/row.000001: fx.big got 2500 rows in one transaction (make_fixtures.py)."""
    res = run("stats", "--json", str(FIXTURES / "mariadb" / "row.000001"))
    assert res.returncode == 0, res.stderr
    tables = json.loads(res.stdout)["tables"]
    assert tables["fx.big"]["inserted"] == 2500
    for counts in tables.values():
        assert counts["events"] >= 1 and counts["bytes"] > 0
        assert counts["inserted"] + counts["updated"] + counts["deleted"] >= counts["events"]
