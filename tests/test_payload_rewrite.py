"""TRANSACTION_PAYLOAD: inner events rebuilt, a changed payload compressed
again, and MySQL's own mysqlbinlog still reads the result."""

from __future__ import annotations

import uuid
from pathlib import Path

from binlogkit.codec.event import Event, encode_event
from binlogkit.codec.inner import build_payload, inner_events
from binlogkit.codec.types import EventType
from binlogkit.io.reader import BinlogReader
from binlogkit.io.writer import BinlogWriter
from binlogkit.lab.sid import run_in_sid


def _rows_of(path: Path) -> list[str]:
    out = run_in_sid(["mysqlbinlog", "-vv", "--base64-output=decode-rows", path],
                     check=True, capture_output=True, text=True, timeout=120).stdout
    return [line for line in out.splitlines() if line.startswith("### ")]


def test_changed_payload_is_recompressed_and_readable(server_factory, tmp_path: Path) -> None:
    server = server_factory("mysql", binlog_transaction_compression="ON",
                            binlog_row_metadata="FULL")
    db = f"pl_{uuid.uuid4().hex[:8]}"
    server.flush_logs()
    src = server.binlog_files()[-1]
    server.execute([
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(20))",
        f"INSERT INTO {db}.t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
        f"UPDATE {db}.t SET v = 'TWO' WHERE id = 2",
    ])
    server.flush_logs()

    out = tmp_path / "recompressed.000001"
    payloads = 0
    with BinlogWriter(out, fix_positions=True) as writer:
        for ev in BinlogReader(src):
            if ev.type_code == EventType.TRANSACTION_PAYLOAD:
                payloads += 1
                inner: list[Event] = list(inner_events(ev, ev.ctx))
                same = build_payload(inner, ev.ctx)
                # zstd at the server's level 3 gives the server's own bytes back
                assert same.payload == ev.body.payload
                for e in inner:
                    if e.type_code == EventType.UPDATE_ROWS_V2:
                        e.body.rows = bytes(e.body.rows).replace(b"TWO", b"Two")
                ev.body = build_payload(inner, ev.ctx)
                assert [encode_event(e) for e in inner_events(ev, ev.ctx)] == [
                    encode_event(e) for e in inner]
            writer.write(ev)
    assert payloads >= 2
    before, after = _rows_of(src), _rows_of(out)
    assert out.read_bytes() != src.read_bytes()
    assert len(before) == len(after) > 0
    assert any("'TWO'" in line for line in before)
    assert [line.replace("'TWO'", "'Two'") for line in before] == after
